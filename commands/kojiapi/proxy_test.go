package kojiapi

import (
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tcpProxy forwards TCP connections to the hub, TLS untouched, and can
// break them: cut the answer to the next request short, or hang.
type tcpProxy struct {
	t      *testing.T
	ln     net.Listener
	target string
	// cutNext is how many coming connections get their answer cut: the
	// proxy waits for the hub to send its whole answer (Apache closes the
	// connection after one request), then passes only half of it on and
	// closes; the hub has run the call.
	cutNext atomic.Int32
	// hang makes new connections accepted and never answered.
	hang atomic.Bool
	cuts atomic.Int32
	// conns counts the connections accepted.
	conns atomic.Int32
	wg    sync.WaitGroup
}

// newProxy starts a proxy to the host of hubURL and returns it with the
// URL to give the client (the same host name, the proxy's port).
func newProxy(t *testing.T, hubURL string) (*tcpProxy, string) {
	t.Helper()
	u, err := url.Parse(hubURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, ln: ln, target: "127.0.0.1:" + u.Port()}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	u.Host = u.Hostname() + ":" + port
	return p, u.String()
}

func (p *tcpProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *tcpProxy) handle(c net.Conn) {
	defer c.Close()
	p.conns.Add(1)
	if p.hang.Load() {
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		_, _ = io.Copy(io.Discard, c)
		return
	}
	h, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer h.Close()
	cut := false
	if n := p.cutNext.Load(); n > 0 && p.cutNext.CompareAndSwap(n, n-1) {
		cut = true
	}
	// requestSent is closed once the client has sent a TLS record big
	// enough to be an HTTP request (handshake messages are smaller).
	requestSent := make(chan struct{})
	go func() {
		var once sync.Once
		_ = copyRecords(h, c, func(typ byte, n int) {
			if typ == 23 && n > 200 {
				once.Do(func() { close(requestSent) })
			}
		})
		if hc, ok := h.(*net.TCPConn); ok {
			_ = hc.CloseWrite()
		}
	}()
	if !cut {
		_, _ = io.Copy(c, h)
		return
	}
	// Forward the handshake as it comes; after the request, keep what
	// the hub sends until it closes, then pass on half of it.
	var held []byte
	_ = copyRecordsUntil(c, h, requestSent, &held)
	_, _ = c.Write(held[:len(held)/2])
	p.cuts.Add(1)
}

// readRecord reads one TLS record (5-byte header and body).
func readRecord(r io.Reader) ([]byte, error) {
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[3:5]))
	rec := make([]byte, 5+n)
	copy(rec, hdr)
	if _, err := io.ReadFull(r, rec[5:]); err != nil {
		return nil, err
	}
	return rec, nil
}

// copyRecords copies TLS records from src to dst, telling seen of each.
func copyRecords(dst io.Writer, src io.Reader, seen func(typ byte, n int)) error {
	for {
		rec, err := readRecord(src)
		if err != nil {
			return err
		}
		seen(rec[0], len(rec)-5)
		if _, err := dst.Write(rec); err != nil {
			return err
		}
	}
}

// copyRecordsUntil copies TLS records from src to dst until after is
// closed, and from then on appends them to held, until src ends.
func copyRecordsUntil(dst io.Writer, src io.Reader, after <-chan struct{}, held *[]byte) error {
	for {
		rec, err := readRecord(src)
		if err != nil {
			return err
		}
		select {
		case <-after:
			*held = append(*held, rec...)
			continue
		default:
		}
		if _, err := dst.Write(rec); err != nil {
			return err
		}
	}
}
