package web

import (
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestHealthzHub: a hub that does not answer is "koji-hub: down", beside
// the database's own line, without the error's text; its pings are cached
// apart from the database's.
func TestHealthzHub(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, hub := &fakeDB{}, &fakeDB{}
		s := New(Options{DB: db, Hub: hub})
		if body := expectText(t, s, "/healthz", http.StatusOK); body != "ok\n" {
			t.Fatalf("healthz body %q", body)
		}
		hub.setErr(errors.New("the Koji hub is not answering: dial tcp 192.0.2.9:443"))
		time.Sleep(HealthCacheTTL)
		if body := expectText(t, s, "/healthz", http.StatusServiceUnavailable); body != "koji-hub: down\n" {
			t.Fatalf("healthz body %q, want only \"koji-hub: down\"", body)
		}
		db.setErr(errors.New("down"))
		time.Sleep(HealthCacheTTL)
		if body := expectText(t, s, "/healthz", http.StatusServiceUnavailable); body != "koji-db: down\nkoji-hub: down\n" {
			t.Fatalf("healthz body %q", body)
		}
		if db.count() != 3 || hub.count() != 3 {
			t.Errorf("pings: database %d, hub %d; want 3 each", db.count(), hub.count())
		}
		hub.setErr(nil)
		db.setErr(nil)
		time.Sleep(HealthCacheTTL)
		if body := expectText(t, s, "/healthz", http.StatusOK); body != "ok\n" {
			t.Fatalf("healthz body %q", body)
		}
	})
}
