// Package faultproxy is a TCP proxy for fault tests: it stands between a
// client and one server (a builder's sshd) and, on request, cuts the
// network (nothing passes either way until Heal, as when a link drops
// packets), slows it (each chunk waits), or resets every open connection.
// It is the harness's own, in place of iptables on the test machine.
package faultproxy

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// Mode is what the proxy does to the traffic.
type Mode int

// The modes.
const (
	// Pass forwards everything at once.
	Pass Mode = iota
	// Cut forwards nothing, either way, on open and new connections, until
	// Heal: what passes then is what was held.
	Cut
	// Slow forwards each chunk after the delay given to SetSlow.
	Slow
)

// String names m.
func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Cut:
		return "cut"
	case Slow:
		return "slow"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Proxy forwards the connections it accepts on its address to its target.
// Its methods are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	mode   Mode
	delay  time.Duration
	healed chan struct{} // closed when the proxy leaves Cut
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Start listens on listen (host:port, port 0 for a free one) and forwards
// to target.
func Start(listen, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{ln: ln, target: target, healed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.healed)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Mode is the proxy's current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Cut stops all traffic, on open and new connections, until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode != Cut {
		p.healed = make(chan struct{})
	}
	p.mode = Cut
}

// SetSlow delays every chunk forwarded, either way, by d until Heal.
func (p *Proxy) SetSlow(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == Cut {
		close(p.healed)
	}
	p.mode, p.delay = Slow, d
}

// Heal forwards everything again at once (what a cut held goes through).
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == Cut {
		close(p.healed)
	}
	p.mode, p.delay = Pass, 0
}

// Reset closes every open connection (both sides see it end); new ones
// are accepted as before.
func (p *Proxy) Reset() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // an RST, as a reset is
		}
		_ = c.Close()
		n++
	}
	return n / 2
}

// Open is how many client connections are open through the proxy.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	if p.mode == Cut {
		close(p.healed)
		p.mode = Pass
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.Reset()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// track adds c to the open connections, unless the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer client.Close()
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	// A cut network does not even let the connection through.
	p.gate()
	server, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		return
	}
	defer server.Close()
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, client); done <- struct{}{} }()
	go func() { p.pipe(client, server); done <- struct{}{} }()
	<-done
	// One side ended: end the other, as a proxy does.
	_ = client.Close()
	_ = server.Close()
	<-done
}

// gate waits while the proxy is cut and returns the delay of Slow.
func (p *Proxy) gate() time.Duration {
	for {
		p.mu.Lock()
		mode, delay, healed := p.mode, p.delay, p.healed
		p.mu.Unlock()
		if mode != Cut {
			return delay
		}
		<-healed
	}
}

// pipe copies from src to dst, chunk by chunk, through the gate.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := p.gate(); d > 0 {
				time.Sleep(d)
			}
			p.gate() // cut while sleeping
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
