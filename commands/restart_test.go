package commands

import (
	"reflect"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/kojidb"
)

// TestSortCheckins: restart all's choice of builders, without servers. A
// builder whose one Koji host checked in since the hub restart is left
// alone, one that did not (or never checked in) is restarted, and one
// that maps to no Koji host or to several is never restarted on a guess,
// the same rule the clean-up's buildroot guard follows.
func TestSortCheckins(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	host := func(name string, age time.Duration) kojidb.Host {
		h := kojidb.Host{Name: name}
		if age >= 0 {
			h.LastCheckin, h.CheckinAge = now.Add(-age), age
		}
		return h
	}
	hosts := []kojidb.Host{
		host("xenbuilder1.fedora.redhat.com", 5*time.Second), // back
		host("xenbuilder2.fedora.redhat.com", time.Hour),     // silent
		host("xenbuilder3.fedora.redhat.com", -1),            // never checked in
		host("ppc9.fedora.redhat.com", 5*time.Second),        // two hosts share the label ppc9
		host("ppc9.phx2.fedoraproject.org", 5*time.Second),
		host("exact.example.org", 2*time.Minute), // matched by its full name
		host("exact.other.org", 5*time.Second),
	}
	builders := []string{"xenbuilder1", "xenbuilder2", "xenbuilder3", "ppc9", "exact.example.org", "nokoji"}
	got := sortCheckins(builders, hosts, time.Minute)
	want := checkins{
		back:      []string{"xenbuilder1"},
		silent:    []string{"xenbuilder2", "xenbuilder3", "exact.example.org"},
		unknown:   []string{"nokoji"},
		ambiguous: []ambiguousBuilder{{builder: "ppc9", hosts: []string{"ppc9.fedora.redhat.com", "ppc9.phx2.fedoraproject.org"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sortCheckins =\n%+v\nwant\n%+v", got, want)
	}
	// The clean-up's guard follows the same rule.
	if names := kojiMatches("ppc9", hosts); len(names) != 2 {
		t.Errorf("kojiMatches(ppc9) = %v, want the two hosts", names)
	}
}
