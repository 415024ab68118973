package kojiapi

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/kojiapi/xmlrpc"
)

// oldHub answers as a hub older than Koji 1.33, whose hosts carry no
// update_ts: the check-in is getLastHostUpdate(id, ts=True). With
// withTS it answers as a current hub (update_ts in the hosts), logs in
// (sslLogin) and edits ppc3's capacity (getHost, editHost), recording the
// session of every call.
type oldHub struct {
	mu       sync.Mutex
	calls    []string
	sessions []string
	withTS   bool
	capacity float64
}

func (o *oldHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m := methodRE.FindSubmatch(body)
	if m == nil {
		http.Error(w, "no method", http.StatusBadRequest)
		return
	}
	method := string(m[1])
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, method)
	o.sessions = append(o.sessions, r.Header.Get("Koji-Session-Id"))
	if o.capacity == 0 {
		o.capacity = 2
	}
	host := func(id int64, name string) map[string]any {
		h := map[string]any{"id": id, "name": name, "arches": "ppc64", "capacity": 2.0, "task_load": 0.5,
			"ready": true, "enabled": true, "description": nil, "comment": nil, "user_id": id + 10}
		if id == 2 {
			h["capacity"] = o.capacity
		}
		if o.withTS {
			h["update_ts"] = 1764000000.25
		}
		return h
	}
	var answer any
	switch {
	case method == "sslLogin" && o.withTS:
		answer = map[string]any{"session-id": int64(7), "session-key": "key", "header-auth": true}
	case method == "getHost" && o.withTS:
		answer = host(2, "ppc3.fedora.redhat.com")
	case method == "editHost" && o.withTS:
		o.capacity = 5
		answer = true
	case method == "listHosts":
		answer = []any{host(2, "ppc3.fedora.redhat.com"), host(1, "ppc2.fedora.redhat.com")}
	case method == "getLastHostUpdate" && strings.Contains(string(body), "<name>ts</name>"):
		if strings.Contains(string(body), "<int>2</int>") {
			answer = 1764000000.25 // ppc3 checked in
		} else {
			answer = nil // ppc2 never did
		}
	default:
		http.Error(w, "unexpected "+method, http.StatusBadRequest)
		return
	}
	doc, _ := xmlrpc.EncodeResponse(answer)
	_, _ = w.Write(doc)
}

// TestFarmOldHubCheckins: on a hub whose hosts carry no update_ts, the
// Farm asks getLastHostUpdate(id, ts=True) for each, and computes the age
// against its clock.
func TestFarmOldHubCheckins(t *testing.T) {
	o := &oldHub{}
	srv := httptest.NewServer(o)
	t.Cleanup(srv.Close)
	c, err := New(Options{URL: srv.URL + "/kojihub", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	checkin := time.Unix(1764000000, 250_000_000).UTC()
	now := checkin.Add(90 * time.Second)
	f := NewFarm(c, FarmOptions{Now: func() time.Time { return now }})
	hosts, err := f.Hosts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 2 || hosts[0].Name != "ppc2.fedora.redhat.com" || hosts[1].Name != "ppc3.fedora.redhat.com" {
		t.Fatalf("Hosts = %+v", hosts)
	}
	if h := hosts[1]; !h.LastCheckin.Equal(checkin) || h.CheckinAge != 90*time.Second {
		t.Errorf("ppc3: checked in %v, age %v; want %v, 1m30s", h.LastCheckin, h.CheckinAge, checkin)
	}
	if h := hosts[0]; !h.LastCheckin.IsZero() || h.CheckinAge != 0 {
		t.Errorf("ppc2 never checked in: %v, age %v", h.LastCheckin, h.CheckinAge)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if got := strings.Join(o.calls, " "); got != "listHosts getLastHostUpdate getLastHostUpdate" {
		t.Errorf("calls: %s", got)
	}
}

// TestFarmKeepsSessionAndConnection: commands through the Farm log in
// once and reuse the session and the connection: each `hosts` or `host`
// is one listHosts, a capacity change getHost, editHost, getHost; every
// call after the login carries the same session, over one TCP connection.
func TestFarmKeepsSessionAndConnection(t *testing.T) {
	o := &oldHub{withTS: true}
	srv := httptest.NewUnstartedServer(o)
	var conns sync.Map
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Store(c.RemoteAddr().String(), true)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca, cert := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem")
	if err := os.WriteFile(ca, pemOf(srv.Certificate().Raw), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cert, testClientPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{URL: srv.URL + "/kojihub", CAFile: ca, Auth: AuthCertificate, CertFile: cert, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	f := NewFarm(c, FarmOptions{})
	ctx := context.Background()
	for range 3 {
		if _, err := f.Hosts(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if before, after, err := f.SetCapacity(ctx, "ppc3.fedora.redhat.com", 5); err != nil || before.Capacity != 2 || after.Capacity != 5 {
		t.Fatalf("SetCapacity: %v → %v, %v", before.Capacity, after.Capacity, err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if got, want := strings.Join(o.calls, " "), "sslLogin listHosts listHosts listHosts getHost editHost getHost"; got != want {
		t.Errorf("calls: %s\nwant:  %s", got, want)
	}
	for i, s := range o.sessions[1:] {
		if s != "7" {
			t.Errorf("call %d (%s) in session %q, want 7", i+1, o.calls[i+1], s)
		}
	}
	n := 0
	conns.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Errorf("%d connections, want 1 kept alive", n)
	}
}
