package commands

import (
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/messaging"
)

// TestAnnounce: a command that changes something is published once, with
// its caller, host, outcome and lines (before and after); a read-only
// command, a denied one and a usage error are not; an outage draft is
// published as a draft.
func TestAnnounce(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	bus := &messaging.Recorder{}
	d := New(Deps{DB: &fakeDB{hosts: testHosts(now)}, ACL: fakeACL{members: map[string]bool{"alice": true}},
		Now: func() time.Time { return now }, Bus: bus})
	defer d.Close()

	for _, quiet := range []string{"hosts", "host ppc3", "whoami", "capacity ppc3 two"} {
		run(d, "alice", quiet)
	}
	run(d, "bob", "capacity ppc3 2")
	if got := bus.Take(); len(got) != 0 {
		t.Fatalf("read-only, usage errors and refusals published %+v", got)
	}

	run(d, "alice", "capacity ppc3 2")
	got := bus.Take()
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
	if got := bus.Take(); len(got) != 1 || got[0].Body.(messaging.Command).Outcome != "error" || got[0].Severity != messaging.Warning {
		t.Fatalf("a failed capacity published %+v, want one error", got)
	}

	run(d, "alice", "outage draft koji database maintenance")
	got = bus.Take()
	if len(got) != 1 || got[0].Schema != messaging.SchemaOutage || got[0].Topic != "outage.draft" {
		t.Fatalf("outage draft published %+v, want one draft", got)
	}
	if o := got[0].Body.(messaging.Outage); o.Service != "koji" || o.Subject == "" || !strings.Contains(o.Body, "database maintenance") {
		t.Fatalf("draft body = %+v", o)
	}
}

// TestAnnounceCleanup: a confirmed clean-up is published once, when its
// job ends, with the job id and its log (what was removed, the bytes
// freed); a dry run is not published.
func TestAnnounceCleanup(t *testing.T) {
	b := &fakeBuilder{names: []string{"f40-build-1-1", "f40-build-2-1"}}
	d, _ := cleanupDispatcher(t, b)
	bus := &messaging.Recorder{}
	d.deps.Bus = bus
	runConfirmed(d, "cleanup ppc3 --dry-run")
	if got := bus.Take(); len(got) != 0 {
		t.Fatalf("a dry run published %+v", got)
	}
	runConfirmed(d, "cleanup ppc3")
	got := bus.Take()
	if len(got) != 1 {
		t.Fatalf("cleanup published %d messages, want 1: %+v", len(got), got)
	}
	body := got[0].Body.(messaging.Command)
	lines := strings.Join(body.Lines, "\n")
	if got[0].Topic != "cleanup" || body.Job == "" || body.Host != "ppc3" || body.Outcome != "ok" || body.Agent != "alice" ||
		!strings.Contains(lines, "removed 2 entries, freed ") {
		t.Fatalf("cleanup message %+v", body)
	}
}
