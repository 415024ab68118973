package commands

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/messaging"
)

// fakeBus records what is published.
type fakeBus struct {
	mu   sync.Mutex
	msgs []messaging.Message
}

func (b *fakeBus) Publish(m messaging.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, m)
}

func (b *fakeBus) taken() []messaging.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.msgs
	b.msgs = nil
	return out
}

// TestAnnounce: a command that changes something is published once, with
// its caller, host, outcome and lines (before and after); a read-only
// command, a denied one and a usage error are not; an outage draft is
// published as a draft.
func TestAnnounce(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	bus := &fakeBus{}
	d := New(Deps{DB: &fakeDB{hosts: testHosts(now)}, ACL: fakeACL{members: map[string]bool{"alice": true}},
		Now: func() time.Time { return now }, Bus: bus})
	defer d.Close()

	for _, quiet := range []string{"hosts", "host ppc3", "whoami", "capacity ppc3 two"} {
		run(d, "alice", quiet)
	}
	run(d, "bob", "capacity ppc3 2")
	if got := bus.taken(); len(got) != 0 {
		t.Fatalf("read-only, usage errors and refusals published %+v", got)
	}

	run(d, "alice", "capacity ppc3 2")
	got := bus.taken()
	if len(got) != 1 {
		t.Fatalf("capacity published %d messages, want 1: %+v", len(got), got)
	}
	m := got[0]
	body, ok := m.Body.(messaging.Command)
	if !ok || m.Topic != "capacity" || m.Schema != messaging.SchemaCommand || m.Severity != messaging.Info ||
		len(m.Users) != 1 || m.Users[0] != "alice" {
		t.Fatalf("capacity message = %+v", m)
	}
	if body.Agent != "alice" || body.Host != "ppc3" || body.Outcome != "ok" || body.Transport != "irc" ||
		body.Place != "#fedora-admin" || body.Args != "ppc3 2" || !strings.Contains(strings.Join(body.Lines, "\n"), "capacity 4 → 2") {
		t.Fatalf("capacity body = %+v", body)
	}

	run(d, "alice", "capacity nosuchhost 2")
	if got := bus.taken(); len(got) != 1 || got[0].Body.(messaging.Command).Outcome != "error" || got[0].Severity != messaging.Warning {
		t.Fatalf("a failed capacity published %+v, want one error", got)
	}

	run(d, "alice", "outage draft koji database maintenance")
	got = bus.taken()
	if len(got) != 1 || got[0].Schema != messaging.SchemaOutage || got[0].Topic != "outage.draft" {
		t.Fatalf("outage draft published %+v, want one draft", got)
	}
	if o := got[0].Body.(messaging.Outage); o.Service != "koji" || o.Subject == "" || !strings.Contains(o.Body, "database maintenance") {
		t.Fatalf("draft body = %+v", o)
	}
}
