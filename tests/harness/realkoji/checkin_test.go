package realkoji

import (
	"context"
	"testing"
	"time"
)

// TestSeedCheckIn: a seeded host that asks for it checks in as itself
// (host.updateHost in its exclusive session): the hub then reports it
// ready, with the task load given and a check-in time; one that does not
// has none.
func TestSeedCheckIn(t *testing.T) {
	ctx := context.Background()
	if err := hub.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	if _, err := hub.Seed(ctx, Seed{Hosts: []SeedHost{
		{Name: "ppc3.example.org", Arches: "ppc64", Capacity: 4, CheckIn: true, TaskLoad: 1.5},
		{Name: "silent.example.org", Arches: "x86_64"},
	}}); err != nil {
		t.Fatal(err)
	}
	anon := hub.Anonymous()
	h, err := anon.Struct(ctx, "getHost", "ppc3.example.org")
	if err != nil {
		t.Fatal(err)
	}
	if h["ready"] != true || h["task_load"] != 1.5 || h["capacity"] != 4.0 {
		t.Errorf("getHost after the check-in: %v", h)
	}
	if last, err := hub.LastCheckin(ctx, anon, "ppc3.example.org"); err != nil || last.Before(before) {
		t.Errorf("check-in %v (%v), want after %v", last, err, before)
	}
	if last, err := hub.LastCheckin(ctx, anon, "silent.example.org"); err != nil || !last.IsZero() {
		t.Errorf("the host that did not check in: %v %v", last, err)
	}
	// A later check-in through a kept session moves it on.
	c, err := hub.HostSession(ctx, "ppc3.example.org")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Logout(context.Background()) }()
	first, _ := hub.LastCheckin(ctx, anon, "ppc3.example.org")
	time.Sleep(20 * time.Millisecond)
	if _, err := c.Call(ctx, "host.updateHost", 0.5, true); err != nil {
		t.Fatal(err)
	}
	if last, err := hub.LastCheckin(ctx, anon, "ppc3.example.org"); err != nil || !last.After(first) {
		t.Errorf("check-in %v after %v (%v)", last, first, err)
	}
}
