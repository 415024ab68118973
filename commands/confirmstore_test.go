package commands

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/commands/state"
)

// storedConfirmDispatchers are two dispatchers over one state store and
// one Koji database, as a bot before and after a restart (or a leader and
// the replica that takes over) are.
func storedConfirmDispatchers(t *testing.T) (before, after *Dispatcher, db *fakeDB, st *state.Store) {
	t.Helper()
	st, err := state.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db = &fakeDB{hosts: testHosts(time.Now()), backends: []kojidb.Backend{
		{PID: 11, User: "koji", State: "idle"}, {PID: 12, User: "koji", State: "idle"}, {PID: 13, User: "postgres", State: "active"}}}
	acl := fakeACL{members: map[string]bool{"alice": true, "carol": true}}
	before = New(Deps{DB: db, ACL: acl, State: st})
	after = New(Deps{DB: db, ACL: acl, State: st})
	t.Cleanup(before.Close)
	t.Cleanup(after.Close)
	return before, after, db, st
}

// askToken asks for "connections kill" on d and returns the token.
func askToken(t *testing.T, d *Dispatcher) string {
	t.Helper()
	got := say(d, "alice", "#fedora-admin", "connections kill --older 40m")
	m := reConfirmToken.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("reply %q, want a confirm: with a token", got)
	}
	return m[1]
}

// TestConfirmAfterRestart: a confirmation asked of one dispatcher is
// confirmed on another over the same store: the plan, made again, is
// the same, so the action runs there, once; the first dispatcher, which
// still holds the action, refuses the token afterwards.
func TestConfirmAfterRestart(t *testing.T) {
	before, after, db, _ := storedConfirmDispatchers(t)
	token := askToken(t, before)
	if got := say(after, "alice", "#fedora-admin", "confirm "+token); !strings.Contains(got, "2 found, 2 terminated, 0 left") {
		t.Fatalf("confirm on the new dispatcher: %q", got)
	}
	for _, d := range []*Dispatcher{before, after} {
		if got := say(d, "alice", "#fedora-admin", "confirm "+token); !strings.HasPrefix(got, "error: no pending action has token") {
			t.Errorf("a used token must not work twice: %q", got)
		}
	}
	if db.sets != 1 || len(db.backends) != 1 {
		t.Errorf("%d terminations, backends left %v; want one, leaving postgres's", db.sets, db.backends)
	}
}

// TestConfirmAfterRestartPlanChanged: when the plan made again differs
// from the one the caller was shown, nothing runs, and the caller gets
// the new plan with a new token, saying so.
func TestConfirmAfterRestartPlanChanged(t *testing.T) {
	before, after, db, _ := storedConfirmDispatchers(t)
	token := askToken(t, before)
	db.mu.Lock()
	db.backends = append(db.backends, kojidb.Backend{PID: 14, User: "koji", State: "idle"})
	db.mu.Unlock()
	got := say(after, "alice", "#fedora-admin", "confirm "+token)
	m := reConfirmToken.FindStringSubmatch(got)
	if !strings.HasPrefix(got, "confirm: "+PlanChanged) || !strings.Contains(got, "pids 11, 12, 14") || m == nil || m[1] == token {
		t.Fatalf("confirm of a changed plan: %q, want the new plan with a new token", got)
	}
	if db.sets != 0 {
		t.Fatal("a changed plan ran")
	}
	if got := say(after, "alice", "#fedora-admin", "confirm "+m[1]); !strings.Contains(got, "3 found, 3 terminated, 0 left") {
		t.Fatalf("confirming the new plan: %q", got)
	}
	if got := say(before, "alice", "#fedora-admin", "confirm "+token); !strings.HasPrefix(got, "error:") {
		t.Errorf("the old token after the plan changed: %q", got)
	}
	if db.sets != 1 {
		t.Errorf("%d terminations, want 1", db.sets)
	}
}

// TestConfirmStoredDenied: another account, or another place, is denied
// and the confirmation stays in the store for its owner.
func TestConfirmStoredDenied(t *testing.T) {
	before, after, db, st := storedConfirmDispatchers(t)
	token := askToken(t, before)
	if got := say(after, "carol", "#fedora-admin", "confirm "+token); !strings.HasPrefix(got, "denied:") || !strings.Contains(got, "another account") {
		t.Errorf("another account's confirm: %q", got)
	}
	if got := say(before, "alice", "#elsewhere", "confirm "+token); !strings.HasPrefix(got, "denied:") {
		t.Errorf("confirm from another place: %q", got)
	}
	if _, ok, err := st.Confirmation(context.Background(), token); !ok || err != nil {
		t.Fatalf("the confirmation left the store after a denial: %v, %v", ok, err)
	}
	if got := say(before, "alice", "#fedora-admin", "confirm "+token); !strings.Contains(got, "2 terminated") {
		t.Errorf("its owner's confirm: %q", got)
	}
	if db.sets != 1 {
		t.Errorf("%d terminations, want 1", db.sets)
	}
}

// TestConfirmStoredRace: the same token confirmed at once on two
// dispatchers, several times each: the action runs once.
func TestConfirmStoredRace(t *testing.T) {
	before, after, db, _ := storedConfirmDispatchers(t)
	token := askToken(t, before)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var replies []string
	for i := range 8 {
		d := before
		if i%2 == 1 {
			d = after
		}
		wg.Go(func() {
			got := say(d, "alice", "#fedora-admin", "confirm "+token)
			mu.Lock()
			replies = append(replies, got)
			mu.Unlock()
		})
	}
	wg.Wait()
	ran := 0
	for _, r := range replies {
		switch {
		case strings.Contains(r, "terminated"):
			ran++
		case !strings.HasPrefix(r, "error: no pending action has token"):
			t.Errorf("unexpected reply %q", r)
		}
	}
	if ran != 1 || db.sets != 1 {
		t.Fatalf("%d confirmations ran, %d terminations; want exactly 1: %q", ran, db.sets, replies)
	}
}

// TestCleanupPlanKey: a clean-up plan made again later, its entries older
// and grown, is the same plan; one that deletes another entry is not.
func TestCleanupPlanKey(t *testing.T) {
	t0 := time.Now().Add(-48 * time.Hour)
	mk := func(age time.Duration, size uint64, paths ...string) string {
		p := &cleanupPlan{Builder: "bvm1", Services: []string{"kojid"}, Older: 24 * time.Hour}
		for _, path := range paths {
			p.Delete = append(p.Delete, &entry{Path: path, Kind: "dir", Bytes: size, Mtime: t0.Add(-age)})
		}
		return planDigest(p.message(false), p.key())
	}
	a := mk(0, 1<<20, "/var/lib/mock/a", "/var/lib/mock/b")
	if b := mk(3*time.Hour, 2<<20, "/var/lib/mock/b", "/var/lib/mock/a"); a != b {
		t.Error("the same entries, older and larger, make another plan")
	}
	if c := mk(0, 1<<20, "/var/lib/mock/a", "/var/lib/mock/c"); a == c {
		t.Error("another entry to delete makes the same plan")
	}
}
