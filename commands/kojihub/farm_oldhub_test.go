package kojihub

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// oldHub answers as a hub older than Koji 1.33, whose hosts carry no
// update_ts: the check-in is getLastHostUpdate(id, ts=True).
type oldHub struct {
	mu    sync.Mutex
	calls []string
}

var oldHubMethod = regexp.MustCompile(`<methodName>([^<]*)</methodName>`)

func (o *oldHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m := oldHubMethod.FindSubmatch(body)
	if m == nil {
		http.Error(w, "no method", http.StatusBadRequest)
		return
	}
	method := string(m[1])
	o.mu.Lock()
	o.calls = append(o.calls, method)
	o.mu.Unlock()
	host := func(id int64, name string) map[string]any {
		return map[string]any{"id": id, "name": name, "arches": "ppc64", "capacity": 2.0, "task_load": 0.5,
			"ready": true, "enabled": true, "description": nil, "comment": nil, "user_id": id + 10}
	}
	var answer any
	switch {
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
	doc, _ := encodeResponse(answer)
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
