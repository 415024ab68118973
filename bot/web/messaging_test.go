package web

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeMessaging struct{ up atomic.Bool }

func (f *fakeMessaging) Up() (bool, string) { return f.up.Load(), "broker refused" }

// TestHealthzMessaging: a broker that is away is named "messaging: down"
// beside the other checks, never with its error; back, /healthz is ok.
func TestHealthzMessaging(t *testing.T) {
	irc := &fakeIRC{}
	irc.up.Store(true)
	m := &fakeMessaging{}
	s := New(Options{IRC: irc, Messaging: m})
	if body := expectText(t, s, "/healthz", http.StatusOK); body != "ok\nmessaging: down\n" {
		t.Fatalf("healthz body %q, want ok, then \"messaging: down\"", body)
	}
	irc.up.Store(false)
	if body := expectText(t, s, "/healthz", http.StatusServiceUnavailable); body != "irc: disconnected\nmessaging: down\n" {
		t.Fatalf("healthz body %q, want both", body)
	}
	irc.up.Store(true)
	m.up.Store(true)
	expectText(t, s, "/healthz", http.StatusOK, "ok")
}

// TestMessagingDroppedMetric: drops are counted under their name.
func TestMessagingDroppedMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	drop := NewMessagingDropped(reg)
	drop(2)
	drop(1)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP kojibot_messaging_dropped_total Messages for the message bus dropped from the outbox (messaging.queue_limit passed, or not queued).
# TYPE kojibot_messaging_dropped_total counter
kojibot_messaging_dropped_total 3
`), MetricMessagesDropped); err != nil {
		t.Fatal(err)
	}
}
