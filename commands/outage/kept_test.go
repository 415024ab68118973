package outage

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/state"
)

// eachDrafts runs test against a Store (in memory) and a Kept (in a
// state store of its own), both keeping max drafts, on a clock that
// moves a minute at each reading.
func eachDrafts(t *testing.T, max int, test func(t *testing.T, s Drafts)) {
	clock := func() func() time.Time {
		at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
		return func() time.Time { at = at.Add(time.Minute); return at }
	}
	t.Run("memory", func(t *testing.T) { test(t, NewStore(max, clock())) })
	t.Run("kept", func(t *testing.T) { test(t, NewKept(openState(t, t.TempDir()), max, clock(), nil)) })
}

// openState opens the state store in dir until the test ends.
func openState(t *testing.T, dir string) *state.Store {
	t.Helper()
	st, err := state.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestKeptSurvivesRestart: drafts kept in the state store are seen, whole,
// by another process of the store and after a restart; ids go on from
// where they were.
func TestKeptSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	first, err := state.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	a := NewKept(first, 0, nil, nil)
	other := NewKept(openState(t, dir), 0, nil, nil)
	d := planned
	d.Start = d.Start.In(time.FixedZone("X", 3600))
	d.Duration = 90 * time.Minute
	d.Unaffected, d.TicketURL = []string{"bodhi"}, "https://pagure.io/fedora-infrastructure/issue/1"
	d.Created = time.Date(2026, 11, 1, 8, 30, 0, 123, time.UTC)
	kept, err := a.New(d)
	if err != nil {
		t.Fatal(err)
	}
	if kept.ID != "o1" || kept.Token == "" {
		t.Fatalf("New = %s / %q", kept.ID, kept.Token)
	}
	second, err := other.New(unplanned)
	if err != nil || second.ID != "o2" {
		t.Fatalf("another process's draft: %s, %v", second.ID, err)
	}
	for name, got := range map[string]func() (Draft, bool, error){
		"Get":     func() (Draft, bool, error) { return other.Get("o1") },
		"ByToken": func() (Draft, bool, error) { return other.ByToken(kept.Token) },
	} {
		if g, ok, err := got(); !ok || err != nil || !reflect.DeepEqual(g, kept) {
			t.Errorf("%s in another process = %+v, %v, %v; want %+v", name, g, ok, err, kept)
		}
	}
	first.Close()
	again := NewKept(openState(t, dir), 0, nil, nil)
	var ids []string
	list, err := again.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range list {
		ids = append(ids, d.ID)
	}
	if fmt.Sprint(ids) != "[o2 o1]" {
		t.Fatalf("after a restart, List = %v, want [o2 o1]", ids)
	}
	if g, ok, _ := again.Get("O1"); !ok || !reflect.DeepEqual(g, kept) {
		t.Errorf("after a restart, Get = %+v, %v; want %+v", g, ok, kept)
	}
	if third, err := again.New(unplanned); err != nil || third.ID != "o3" {
		t.Errorf("the next id after a restart: %s, %v", third.ID, err)
	}
	for _, bad := range []string{"o0", "o01", "1", "ox", "o-1", ""} {
		if _, ok, err := again.Get(bad); ok || err != nil {
			t.Errorf("Get(%q) found a draft", bad)
		}
	}
}

// TestKeptStoreAway: a store that cannot be read is an error, never "no
// such draft" (an operator would think the draft gone).
func TestKeptStoreAway(t *testing.T) {
	st, err := state.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k := NewKept(st, 0, nil, nil)
	d, err := k.New(planned)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := k.List(); err == nil {
		t.Error("List on a closed store: no error")
	}
	if _, ok, err := k.Get(d.ID); ok || err == nil {
		t.Errorf("Get on a closed store = %v, %v; want an error", ok, err)
	}
	if _, ok, err := k.ByToken(d.Token); ok || err == nil {
		t.Errorf("ByToken on a closed store = %v, %v; want an error", ok, err)
	}
}
