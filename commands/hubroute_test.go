package commands

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/kojidb"
)

// hostsOnly is a KojiHosts that is not a KojiDB, as the hub is.
type hostsOnly struct{ *fakeDB }

// TestHostsGoThroughTheHub: with Deps.Hub set, every host read and change
// goes through it and none through the database, whose only use left is
// `connections`; without a database, `connections` says it needs koji.db.
func TestHostsGoThroughTheHub(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, withDB := range []bool{true, false} {
		hub := &fakeDB{hosts: testHosts(now)}
		db := &fakeDB{hosts: testHosts(now), down: true, backends: []kojidb.Backend{{PID: 7, User: "koji", State: "idle"}}}
		deps := Deps{Hub: hostsOnly{hub}, ACL: fakeACL{members: map[string]bool{"alice": true}}, Now: func() time.Time { return now }}
		if withDB {
			deps.DB = db
		}
		d := New(deps)
		for _, c := range []struct{ text, want string }{
			{"hosts", "4 hosts, 3 enabled, 1 ready"},
			{"host ppc3", "ppc3.fedora.redhat.com: enabled, ready"},
			{"capacity ppc3 2", "ppc3.fedora.redhat.com capacity 4 → 2"},
			{"disable ppc3 bad fan", "ppc3.fedora.redhat.com disabled"},
			{"enable ppc3", "ppc3.fedora.redhat.com enabled"},
		} {
			if got := run(d, "alice", c.text); !strings.Contains(got, c.want) || strings.Contains(got, "error:") {
				t.Errorf("db %v: %q: %q, want %q", withDB, c.text, got, c.want)
			}
		}
		if hub.sets != 3 || db.sets != 0 {
			t.Errorf("db %v: %d writes through the hub, %d through the database; want 3 and 0", withDB, hub.sets, db.sets)
		}
		got := run(d, "alice", "connections")
		if withDB && !strings.Contains(got, "koji backends") {
			t.Errorf("connections with koji.db: %q", got)
		}
		if !withDB && got != "error: connections needs koji.db (the Koji database's connections are not in the hub's API); koji.db.dsn is not set, nothing was done" {
			t.Errorf("connections without koji.db: %q", got)
		}
		d.Close()
	}
}

// guardHub is a hub whose ActiveBuildroots says buildroot 1001 is active,
// recording the hosts asked.
type guardHub struct {
	hostsOnly
	mu    sync.Mutex
	asked []string
}

func (g *guardHub) ActiveBuildroots(_ context.Context, host string) ([]int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked = append(g.asked, host)
	return []int64{1001}, nil
}

// TestCleanupGuardThroughTheHub: with the hub, the clean-up's
// active-buildroot guard asks it (listBuildroots), never the database, and
// keeps what it says is active.
func TestCleanupGuardThroughTheHub(t *testing.T) {
	b := &fakeBuilder{names: []string{"f40-build-1001-55", "f40-build-1002-55"}}
	d, _ := cleanupDispatcher(t, b)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	hub := &guardHub{hostsOnly: hostsOnly{&fakeDB{hosts: testHosts(now)}}}
	d.deps.Hub = hub
	d.deps.DB = &fakeDB{down: true}
	out := run(d, "alice", "cleanup ppc3 --dry-run")
	if !slices.Equal(hub.asked, []string{"ppc3.fedora.redhat.com"}) {
		t.Errorf("the hub was asked for the active buildroots of %q; reply:\n%s", hub.asked, out)
	}
	if !strings.Contains(out, "active in Koji") || strings.Contains(out, "error:") {
		t.Errorf("reply:\n%s", out)
	}
}

// TestHostLinksToWebUI: with koji.weburl, `host` links the host's page on
// the hub's web UI; without it, no link.
func TestHostLinksToWebUI(t *testing.T) {
	d, _ := newTestDispatcher(t)
	defer d.Close()
	if got := run(d, "alice", "host ppc3"); strings.Contains(got, "hostinfo") {
		t.Errorf("without koji.weburl: %q", got)
	}
	d.deps.Config.Koji.WebURL = "https://koji.example.org/koji/"
	got := run(d, "alice", "host ppc3")
	if !strings.HasPrefix(got, "ppc3.fedora.redhat.com: enabled") || !strings.HasSuffix(got, "; Koji: https://koji.example.org/koji/hostinfo?hostID=1") {
		t.Errorf("with koji.weburl: %q", got)
	}
}
