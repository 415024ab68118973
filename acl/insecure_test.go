package acl

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestFASJSONOnlyHTTPSOrLoopback: a FASJSON URL of plain http is accepted
// on loopback only, and a redirect from there to plain http on another host
// is not followed: the question and its credentials never leave in the
// clear.
func TestFASJSONOnlyHTTPSOrLoopback(t *testing.T) {
	for _, u := range []string{"http://fasjson.example.org", "HTTP://192.0.2.1:8080/fasjson"} {
		_, err := New(fasjsonConfig(u), Options{})
		if err == nil || !strings.Contains(err.Error(), "acl.fasjson_url") || !strings.Contains(err.Error(), "https") {
			t.Errorf("New with %s: %v, want a refusal asking for https", u, err)
		}
	}
	for _, u := range []string{"http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1", "https://fasjson.example.org"} {
		if _, err := New(fasjsonConfig(u), Options{}); err != nil {
			t.Errorf("New with %s: %v", u, err)
		}
	}

	// The loopback server sends every request to plain http elsewhere; the
	// address is TEST-NET-1, so a request that left would hang, not pass.
	var elsewhere atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://192.0.2.1"+r.URL.RequestURI(), http.StatusFound)
	}))
	defer srv.Close()
	var seen []string
	base := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		seen = append(seen, r.URL.Host)
		if r.URL.Host != strings.TrimPrefix(srv.URL, "http://") {
			elsewhere.Add(1)
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	c := mustNew(t, fasjsonConfig(srv.URL), Options{HTTPClient: base})
	d := c.Authorize(context.Background(), Caller{FASUser: "alice"}, "capacity", false)
	check(t, "redirect to http elsewhere", d, want{reason: []string{"FASJSON unavailable: ", "refused: not https"}})
	if elsewhere.Load() != 0 {
		t.Errorf("a request left for another host over http: %v", seen)
	}
	if base.CheckRedirect != nil {
		t.Error("New changed the caller's client")
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
