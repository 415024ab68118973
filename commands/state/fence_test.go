package state

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// cutLeader terminates l's lock connection, as a partition would, and
// waits until l knows it.
func cutLeader(t *testing.T, ctx context.Context, l *Leader) {
	t.Helper()
	admin, err := pgx.Connect(ctx, cluster.AdminDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, l.Backend()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("the leader did not notice its lock connection was cut")
	}
}

// leadSoon makes s lead within 10 s, and binds it.
func leadSoon(t *testing.T, ctx context.Context, s *Store, holder string) *Leader {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		l, ok, err := s.TryLead(ctx, holder)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			s.Bind(l)
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never led", holder)
		}
	}
}

// TestStoreWritesFenced: every write of a store bound to a leader whose
// term has ended (journal records and their closing, job records and
// their end, the orphans' claim, cancel requests taken, sync tokens) is
// refused with ErrFenced and changes nothing, while the new leader's
// store writes; an unbound store (exec) writes whatever the term.
func TestStoreWritesFenced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	loc := pgOnly(t)
	a, b, exec := open(t, loc), open(t, loc), open(t, loc)
	defer a.Close()
	defer b.Close()
	defer exec.Close()
	la := leadSoon(t, ctx, a, "a")
	defer la.Resign()
	entry := Entry{Host: "bvm1", Kind: KindService, Name: "kojid", Job: "1", Owner: "alice"}
	rec, err := a.Record(ctx, entry)
	if err != nil {
		t.Fatalf("the leader's journal record: %v", err)
	}
	job, err := a.NewJob(ctx, JobRecord{Owner: "alice", Command: "cleanup bvm1", Place: "#ops"})
	if err != nil {
		t.Fatalf("the leader's job record: %v", err)
	}
	if err := exec.RequestCancel(ctx, job, "bob", "#ops"); err != nil {
		t.Fatal(err)
	}
	cutLeader(t, ctx, la)
	lb := leadSoon(t, ctx, b, "b")
	defer lb.Resign()

	fenced := map[string]error{}
	_, fenced["Record"] = a.Record(ctx, entry)
	fenced["Done"] = a.Done(ctx, rec)
	_, fenced["NewJob"] = a.NewJob(ctx, JobRecord{Owner: "alice", Command: "restart bvm1", Place: "#ops"})
	fenced["FinishJob"] = a.FinishJob(ctx, job, "done", time.Time{})
	_, _, fenced["Claim"] = a.Claim(ctx)
	_, fenced["TakeCancelRequests"] = a.TakeCancelRequests(ctx)
	fenced["Put"] = a.Put(ctx, "sync", "old")
	for name, err := range fenced {
		if !errors.Is(err, ErrFenced) {
			t.Errorf("the old leader's %s: %v, want ErrFenced", name, err)
		}
	}
	// Nothing of it was written.
	st, err := b.status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Open) != 1 || st.Open[0].ID != rec {
		t.Errorf("open records after the fenced writes: %+v, want only %d", st.Open, rec)
	}
	jobs, err := b.RecentJobs(ctx, 10)
	if err != nil || len(jobs) != 1 || jobs[0].Result != "" {
		t.Errorf("jobs after the fenced writes: %+v %v, want job %d alone and running", jobs, err, job)
	}
	if _, ok, _ := b.Get(ctx, "sync"); ok {
		t.Error("the old leader's sync token was written")
	}
	// The new leader writes, and so does an exec, which takes no term.
	if err := b.Put(ctx, "sync", "new"); err != nil {
		t.Errorf("the new leader's Put: %v", err)
	}
	if _, err := b.Record(ctx, entry); err != nil {
		t.Errorf("the new leader's Record: %v", err)
	}
	if _, err := exec.Record(ctx, entry); err != nil {
		t.Errorf("an exec's Record: %v", err)
	}
	if err := exec.Done(ctx, rec); err != nil {
		t.Errorf("an exec's Done: %v", err)
	}
}

// TestInspect: the status names the leader, the standbys (each with its
// holder) and the open journal records, and writes nothing.
func TestInspect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	loc := pgOnly(t)
	a, b := open(t, loc), open(t, loc)
	defer a.Close()
	defer b.Close()
	if err := b.SetRole(ctx, RoleStandby); err != nil {
		t.Fatal(err)
	}
	l := leadSoon(t, ctx, a, Holder())
	defer l.Resign()
	if err := a.SetRole(ctx, RoleLeader); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Record(ctx, Entry{Host: "bvm1", Kind: KindService, Name: "kojid", Job: "7", Owner: "alice"}); err != nil {
		t.Fatal(err)
	}
	st, err := Inspect(ctx, "", loc)
	if err != nil {
		t.Fatal(err)
	}
	if st.Leader == nil || !st.Leader.Held || st.Leader.Term != l.Term || st.Leader.Holder != Holder() {
		t.Errorf("leader: %+v, want term %d held by %s", st.Leader, l.Term, Holder())
	}
	if sb := st.Standbys(); len(sb) != 1 || sb[0].Holder != Holder() || !strings.Contains(sb[0].Holder, ":") {
		t.Errorf("standbys: %+v", sb)
	}
	if len(st.Open) != 1 || st.Open[0].Name != "kojid" {
		t.Errorf("open records: %+v", st.Open)
	}
	l.Resign()
	if st, err = Inspect(ctx, "", loc); err != nil || st.Leader == nil || st.Leader.Held {
		t.Errorf("after the leader resigned: %+v %v, want a leader not held", st.Leader, err)
	}
}

// TestJobHolder: each job record names the process that runs it.
func TestJobHolder(t *testing.T) { contract(t, testJobHolder) }

func testJobHolder(t *testing.T, loc string) {
	ctx := context.Background()
	s := open(t, loc)
	defer s.Close()
	id, err := s.NewJob(ctx, JobRecord{Owner: "alice", Command: "memory bvm1", Place: "#ops"})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := s.RecentJobs(ctx, 1)
	if err != nil || len(jobs) != 1 || jobs[0].Holder != Holder() {
		t.Fatalf("jobs: %+v %v, want holder %s", jobs, err, Holder())
	}
	st, ok, err := s.JobStatus(ctx, id)
	if err != nil || !ok || st.Holder != Holder() {
		t.Errorf("job status: %+v %v %v", st, ok, err)
	}
	if !isDSN(loc) {
		got, err := Inspect(ctx, loc, "")
		if err != nil || len(got.Processes) != 1 || got.Processes[0].Holder != Holder() || got.Leader != nil {
			t.Errorf("SQLite status: %+v %v", got, err)
		}
	}
}
