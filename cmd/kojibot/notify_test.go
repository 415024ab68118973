package main

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sentStates records what a systemdNotifier sends.
type sentStates struct {
	mu     sync.Mutex
	states []string
}

func (s *sentStates) send(state string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states = append(s.states, state)
	return true, nil
}

func (s *sentStates) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.states)
}

// waitFor polls until cond holds of the states sent, or fails the test.
func (s *sentStates) waitFor(t *testing.T, what string, cond func([]string) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond(s.all()) {
		if time.Now().After(deadline) {
			t.Fatalf("never saw %s; sent %q", what, s.all())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func count(states []string, prefix string) int {
	n := 0
	for _, s := range states {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func TestSystemdNotifierLifecycle(t *testing.T) {
	var sent sentStates
	n := &systemdNotifier{send: sent.send, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var up atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.run(ctx, up.Load, "irc.example.org") }()

	sent.waitFor(t, "STATUS=connecting", func(s []string) bool { return count(s, "STATUS=connecting") == 1 })
	time.Sleep(3 * readyPoll)
	if got := sent.all(); count(got, "READY=1") != 0 {
		t.Fatalf("READY before the bot is on IRC: %q", got)
	}
	up.Store(true)
	sent.waitFor(t, "READY=1", func(s []string) bool { return count(s, "READY=1") == 1 })
	// A reconnect changes STATUS but is no second READY.
	up.Store(false)
	sent.waitFor(t, "STATUS=connecting again", func(s []string) bool { return count(s, "STATUS=connecting") == 2 })
	up.Store(true)
	sent.waitFor(t, "STATUS=connected again", func(s []string) bool { return count(s, "STATUS=connected") == 1 })
	cancel()
	<-done
	got := sent.all()
	if count(got, "READY=1") != 1 {
		t.Errorf("READY=1 sent %d times, want once: %q", count(got, "READY=1"), got)
	}
	if last := got[len(got)-1]; !strings.HasPrefix(last, "STOPPING=1") {
		t.Errorf("last message %q, want STOPPING=1", last)
	}
	if count(got, "WATCHDOG=1") != 0 {
		t.Errorf("watchdog pings without WatchdogSec: %q", got)
	}
}

func TestSystemdNotifierWatchdog(t *testing.T) {
	var sent sentStates
	n := &systemdNotifier{send: sent.send, watchdog: 100 * time.Millisecond, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.run(ctx, func() bool { return false }, "irc.example.org") }()
	// Pings go on while the bot is still connecting: IRC being down is
	// the bot's to handle, not a reason for systemd to kill it.
	sent.waitFor(t, "4 watchdog pings", func(s []string) bool { return count(s, "WATCHDOG=1") >= 4 })
	cancel()
	<-done
}
