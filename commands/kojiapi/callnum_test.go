package kojiapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/kojiapi/xmlrpc"
)

// fakeHub is a small stand-in for the hub that records the session
// headers of every call (Koji 1.35.3 ignores the call number, so the
// real hub cannot show it) and can lose an answer or a session.
type fakeHub struct {
	mu       sync.Mutex
	calls    []fakeCall
	sessions int
	// loseNext hijacks and closes the connection of the next calls after
	// reading them: the answer is lost.
	loseNext int
	// expireNext answers the next calls with AuthExpired.
	expireNext int
	// conns counts the connections clients opened.
	conns int
}

type fakeCall struct {
	method           string
	session, callnum string
}

var methodRE = regexp.MustCompile(`<methodName>([^<]*)</methodName>`)

func (f *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m := methodRE.FindSubmatch(body)
	if m == nil {
		http.Error(w, "no method", http.StatusBadRequest)
		return
	}
	method := string(m[1])
	f.mu.Lock()
	f.calls = append(f.calls, fakeCall{method, r.Header.Get("Koji-Session-Id"), r.Header.Get("Koji-Session-Callnum")})
	var answer any
	var fault *Fault
	switch {
	case method == "sslLogin":
		f.sessions++
		answer = map[string]any{"session-id": int64(f.sessions), "session-key": "key", "header-auth": true}
	case f.loseNext > 0:
		f.loseNext--
		f.mu.Unlock()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	case f.expireNext > 0:
		f.expireNext--
		fault = &Fault{Code: FaultAuthExpired, String: "session has expired"}
	default:
		answer = int64(len(f.calls))
	}
	f.mu.Unlock()
	w.Header().Set("Koji-Version", "1.35.3")
	if fault != nil {
		fmt.Fprintf(w, `<?xml version='1.0'?><methodResponse><fault><value><struct><member><name>faultCode</name><value><int>%d</int></value></member><member><name>faultString</name><value><string>%s</string></value></member></struct></value></fault></methodResponse>`, fault.Code, fault.String)
		return
	}
	doc, _ := xmlrpc.EncodeResponse(answer)
	_, _ = w.Write(doc)
}

func (f *fakeHub) recorded() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.calls...)
}

// newFakeHub starts a fakeHub over TLS and returns it with a client
// logging in to it by certificate.
func newFakeHub(t *testing.T) (*fakeHub, *Client) {
	t.Helper()
	f := &fakeHub{}
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			f.mu.Lock()
			f.conns++
			f.mu.Unlock()
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pemOf(srv.Certificate().Raw), 0o644); err != nil {
		t.Fatal(err)
	}
	cert := filepath.Join(dir, "client.pem")
	if err := os.WriteFile(cert, testClientPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{URL: srv.URL + "/kojihub", CAFile: ca, Auth: AuthCertificate, CertFile: cert, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return f, c
}

// TestCallnums: the call number of a session starts at 0 and grows by
// one per call; a call whose answer was lost is sent again with a new
// number, never its old one; a new session starts again at 0.
func TestCallnums(t *testing.T) {
	f, c := newFakeHub(t)
	ctx := context.Background()
	for range 3 {
		if _, err := c.Call(ctx, "getHost", "x"); err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	f.loseNext = 1
	f.mu.Unlock()
	if _, err := c.Call(ctx, "getHost", "x"); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.expireNext = 1
	f.mu.Unlock()
	if _, err := c.Call(ctx, "getHost", "x"); err != nil {
		t.Fatal(err)
	}
	want := []fakeCall{
		{"sslLogin", "", ""},
		{"getHost", "1", "0"}, {"getHost", "1", "1"}, {"getHost", "1", "2"},
		{"getHost", "1", "3"}, // answer lost
		{"getHost", "1", "4"}, // asked again, a new number
		{"getHost", "1", "5"}, // AuthExpired
		{"sslLogin", "", ""},
		{"getHost", "2", "0"},
	}
	got := f.recorded()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("calls\n%v\nwant\n%v", got, want)
	}
	if c.HubVersion() != "1.35.3" {
		t.Errorf("HubVersion() = %q", c.HubVersion())
	}
}

// TestCallnumsConcurrent: calls made at once on one session reach the
// hub one at a time, their numbers in order.
func TestCallnumsConcurrent(t *testing.T) {
	f, c := newFakeHub(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if _, err := c.Call(context.Background(), "getHost", "x"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := 0
	for _, call := range f.recorded() {
		if call.method != "getHost" {
			continue
		}
		if call.callnum != strconv.Itoa(n) {
			t.Fatalf("call %d reached the hub with callnum %s", n, call.callnum)
		}
		n++
	}
}

// TestWriteLostNoCheck: a write whose answer was lost, without a check,
// is not sent again.
func TestWriteLostNoCheck(t *testing.T) {
	f, c := newFakeHub(t)
	f.loseNext = 1
	_, err := c.CallWrite(context.Background(), nil, "editHost", "x", Kwargs{"capacity": 2.0})
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("got %v, want ErrOutcomeUnknown", err)
	}
	sent := 0
	for _, call := range f.recorded() {
		if call.method == "editHost" {
			sent++
		}
	}
	if sent != 1 {
		t.Fatalf("sent %d times, want once", sent)
	}
}

func pemOf(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// testClientPEM is a self-signed client certificate and its key, PEM.
func testClientPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: botUser},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return append(pemOf(der), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})...)
}

// TestKeepAlive: calls reuse one kept-alive connection.
func TestKeepAlive(t *testing.T) {
	f, c := newFakeHub(t)
	for range 5 {
		if _, err := c.Call(context.Background(), "getHost", "x"); err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns != 1 {
		t.Fatalf("6 exchanges (a login, 5 calls) opened %d connections, want 1", f.conns)
	}
}
