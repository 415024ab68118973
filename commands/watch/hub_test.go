package watch

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fedora-infra/kojibot/commands/kojidb"
)

// hostsOnly is a HostReader that is not a FarmDB, as the hub is.
type hostsOnly struct{ *fakeDB }

func (h hostsOnly) Hosts(ctx context.Context) ([]kojidb.Host, error) { return h.fakeDB.Hosts(ctx) }

// TestStaleThroughTheHub: with Hub set, the stale check reads the hosts
// through it and never through the database; with no database (a hub-only
// configuration) the connections check is off and the stale check runs.
func TestStaleThroughTheHub(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, withDB := range []bool{true, false} {
			hub := &fakeDB{ownAge: true}
			hub.setHosts(kojidb.Host{Name: "ppc3.fedora.redhat.com", Enabled: true, LastCheckin: t0.Add(-14 * time.Minute)})
			db := &fakeDB{ownAge: true, conns: 95, max: 100}
			db.setHosts(kojidb.Host{Name: "db-only.fedora.redhat.com", Enabled: true})
			ch, metrics := &channel{}, &observer{}
			deps := Deps{Hub: hostsOnly{hub}, Notify: ch.Notify, Metrics: metrics}
			if withDB {
				deps.DB = db
			}
			w := New(testConfig(), deps)
			w.CheckOnce(t.Context())
			got := ch.take()
			want := []string{"ALERT stale builder: ppc3.fedora.redhat.com last checked in 14m ago (stale after 10m)"}
			if withDB {
				want = append(want, "ALERT connections: koji holds 95 of 100 connections (95%, threshold 80%)")
			}
			if len(got) != len(want) {
				t.Fatalf("db %v: notified %q, want %q", withDB, got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("db %v: notified %q, want %q", withDB, got[i], want[i])
				}
			}
			if db.hostsCalled != 0 || hub.hostsCalled != 1 {
				t.Errorf("db %v: hosts read %d times from the database, %d from the hub; want 0 and 1", withDB, db.hostsCalled, hub.hostsCalled)
			}
			if n := metrics.ran[KindConnections+"/"+ResultFailing]; withDB != (n == 1) {
				t.Errorf("db %v: connections check ran %d times", withDB, n)
			}
			if !withDB && len(db.roles) != 0 {
				t.Errorf("hub-only: ConnectionCount called for %q", db.roles)
			}
		}
	})
}
