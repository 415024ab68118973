package commands

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fedora-infra/kojibot/commands/kojidb"
)

// TestKojiUserMayNotEditHosts: when kojidb refuses a write because
// koji.user may not edit hosts, the reply is exactly the documented one,
// without the reason (which is for the log).
func TestKojiUserMayNotEditHosts(t *testing.T) {
	const want = "error: koji.user kojibot may not edit hosts (needs the host or admin permission)"
	for _, text := range []string{"capacity ppc3 2", "disable ppc3 broken disk", "enable x86-01.iad2.fedoraproject.org"} {
		d, db := newTestDispatcher(t)
		db.deny = &kojidb.PermissionError{User: "kojibot", Reason: "the user is blocked (users.status 1)"}
		got := strings.TrimSpace(run(d, "alice", text))
		if !strings.HasSuffix(got, want) || strings.Contains(got, "blocked") {
			t.Errorf("%q: reply %q, want %q", text, got, want)
		}
		if h := db.hosts[0]; h.Capacity != 4 || !h.Enabled || db.hosts[3].Enabled {
			t.Errorf("%q: refused write changed %+v", text, db.hosts)
		}
	}
}

// TestDisableAlreadyDisabled: disabling a disabled host with a reason
// updates its comment (Koji's editHost); without a reason nothing changes.
func TestDisableAlreadyDisabled(t *testing.T) {
	d, db := newTestDispatcher(t)
	db.hosts[3].Comment = "old reason"
	got := run(d, "alice", "disable x86-01.iad2.fedoraproject.org noisy fan")
	if !strings.Contains(got, "already disabled; comment: noisy fan (alice via kojibot)") {
		t.Errorf("reply %q", got)
	}
	if c := db.hosts[3].Comment; c != "noisy fan (alice via kojibot)" {
		t.Errorf("comment %q", c)
	}
	got = run(d, "alice", "disable x86-01.iad2.fedoraproject.org")
	if !strings.Contains(got, "already disabled; nothing changed") || db.hosts[3].Comment != "noisy fan (alice via kojibot)" {
		t.Errorf("disable without a reason: %q, comment %q", got, db.hosts[3].Comment)
	}
}

// TestHostsTable: hosts decides a table, not text: a column per fact,
// a row per host, in the database's order.
func TestHostsTable(t *testing.T) {
	d, _ := newTestDispatcher(t)
	ms := sayMessages(d, "alice", "#fedora-admin", "hosts ppc*")
	table := tableOf(t, ms)
	if got := ms[0].Lines; len(got) != 1 || got[0] != "2 hosts, 2 enabled, 1 ready" {
		t.Errorf("headline %q", got)
	}
	var names []string
	for _, c := range table.Columns {
		names = append(names, c.Name)
	}
	if want := "host enabled ready load capacity checked in"; strings.Join(names, " ") != want {
		t.Errorf("columns %q, want %q", names, want)
	}
	want := [][]string{{"ppc3.fedora.redhat.com", "yes", "yes", "1.5", "4", "2m ago"}, {"ppc2.fedora.redhat.com", "yes", "no", "0", "2", "never"}}
	if fmt.Sprint(table.Rows) != fmt.Sprint(want) {
		t.Errorf("rows %q, want %q", table.Rows, want)
	}
}
