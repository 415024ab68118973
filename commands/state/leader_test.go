package state

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgOnly is a new PostgreSQL store for the leadership tests, which need
// the server (there is no leadership on SQLite).
func pgOnly(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL (make unit's -short; CI runs it)")
	}
	if cluster == nil {
		t.Fatal("these tests need PostgreSQL, which TestMain did not start")
	}
	return newPostgres(t)
}

// TestLeadershipOneAtATime: one process leads at a time; when it resigns
// another leads, in a later term; terms only go up.
func TestLeadershipOneAtATime(t *testing.T) {
	ctx := context.Background()
	loc := pgOnly(t)
	a, b := open(t, loc), open(t, loc)
	defer a.Close()
	defer b.Close()
	if term, err := a.Term(ctx); term != 0 || err != nil {
		t.Fatalf("term before any leader: %d %v", term, err)
	}
	la, ok, err := a.TryLead(ctx, "a")
	if err != nil || !ok || la.Term != 1 {
		t.Fatalf("a leads: %v %v %+v, want term 1", ok, err, la)
	}
	if _, ok, err := b.TryLead(ctx, "b"); ok || err != nil {
		t.Fatalf("b leads beside a: %v %v", ok, err)
	}
	la.Resign()
	lb, ok, err := b.TryLead(ctx, "b")
	if err != nil || !ok || lb.Term != 2 {
		t.Fatalf("b after a resigned: %v %v, want term 2", ok, err)
	}
	if _, ok, _ := a.TryLead(ctx, "a"); ok {
		t.Fatal("a leads again beside b")
	}
	lb.Resign()
	la, ok, err = a.TryLead(ctx, "a")
	if err != nil || !ok || la.Term != 3 {
		t.Fatalf("a again: %v %v, want term 3", ok, err)
	}
	defer la.Resign()
	if term, err := b.Term(ctx); term != 3 || err != nil {
		t.Errorf("term seen by b: %d %v, want 3", term, err)
	}
}

// TestLeadershipFencing: a leader whose lock connection is cut learns it
// (Lost), another process leads in a later term, and the old leader's
// writes are refused (ErrFenced) while the new leader's are made.
func TestLeadershipFencing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	loc := pgOnly(t)
	a, b := open(t, loc), open(t, loc)
	defer a.Close()
	defer b.Close()
	la, ok, err := a.TryLead(ctx, "a")
	if err != nil || !ok {
		t.Fatalf("a leads: %v %v", ok, err)
	}
	defer la.Resign()
	put := func(key string) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO kv (key, value) VALUES ($1, 'x')`, key)
			return err
		}
	}
	if err := la.Write(ctx, put("a1")); err != nil {
		t.Fatalf("the leader's write: %v", err)
	}
	// Cut a's lock connection, as a partition or a restarted backend would.
	admin, err := pgx.Connect(ctx, cluster.AdminDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, la.Backend()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-la.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("the leader did not notice its lock connection was cut")
	}
	var lb *Leader
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if lb, ok, err = b.TryLead(ctx, "b"); err != nil || ok || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !ok || lb.Term <= la.Term {
		t.Fatalf("b after a lost its lock: %v %v, want a later term than %d", ok, err, la.Term)
	}
	defer lb.Resign()
	if err := la.Write(ctx, put("a2")); !errors.Is(err, ErrFenced) {
		t.Errorf("the old leader's write: %v, want ErrFenced", err)
	}
	if err := lb.Write(ctx, put("b1")); err != nil {
		t.Errorf("the new leader's write: %v", err)
	}
	for key, want := range map[string]bool{"a1": true, "a2": false, "b1": true} {
		if _, ok, err := b.Get(ctx, key); ok != want || err != nil {
			t.Errorf("%s written: %v (%v), want %v", key, ok, err, want)
		}
	}
}

// TestLeadershipNeedsPostgreSQL: the SQLite store elects no leader.
func TestLeadershipNeedsPostgreSQL(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	if _, _, err := s.TryLead(context.Background(), "a"); !errors.Is(err, ErrNoLeadership) {
		t.Errorf("TryLead on SQLite: %v, want ErrNoLeadership", err)
	}
}
