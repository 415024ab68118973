package watch

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/fedora-infra/kojibot/commands/messaging"
)

// TestAlertsOnTheBus: every alert, reminder and clear that goes out is
// published once, with its check and text; a full shared mount's outage
// draft is published too.
func TestAlertsOnTheBus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil, "xenbuilder2")
		r.check(0)
		r.disk.set("xenbuilder2", "/var/lib/mock", 93)
		r.check(5 * time.Minute)
		for range 72 {
			r.check(5 * time.Minute)
		}
		r.disk.set("xenbuilder2", "/var/lib/mock", 71)
		r.check(time.Hour)
		var states []string
		for _, m := range r.bus.Take() {
			a := m.Body.(messaging.Alert)
			if m.Schema != messaging.SchemaAlert || m.Topic != "watch."+a.State || a.Check != "disk:xenbuilder2:/var/lib/mock" || a.Text == "" {
				t.Errorf("message %+v", m)
			}
			states = append(states, a.State)
		}
		if len(states) != 3 || states[0] != "alert" || states[1] != "reminder" || states[2] != "clear" {
			t.Fatalf("published %q, want alert, reminder, clear", states)
		}

		r.disk.set("koji-hub", "/mnt/koji", 93.5)
		r.check(time.Minute)
		got := r.bus.Take()
		if len(got) != 2 || got[0].Schema != messaging.SchemaOutage || got[1].Schema != messaging.SchemaAlert {
			t.Fatalf("a full shared mount published %+v, want its draft then its alert", got)
		}
		if o := got[0].Body.(messaging.Outage); o.ID != "o1" || o.Subject == "" || o.URL == "" {
			t.Fatalf("draft body %+v", o)
		}
	})
}
