package state

import (
	"context"
	"testing"
	"time"
)

// A cancel request written by one handle reaches the handle that runs the
// job, once; never another handle, nor a finished job.
func TestCancelRequests(t *testing.T) {
	contract(t, testCancelRequests)
}

func testCancelRequests(t *testing.T, loc string) {
	ctx := context.Background()
	dir := loc
	run, exec, other := open(t, dir), open(t, dir), open(t, dir)
	defer run.Close()
	defer exec.Close()
	defer other.Close()
	id, err := run.NewJob(ctx, JobRecord{Owner: "alice", Command: "cleanup b1", Place: "#ops"})
	if err != nil {
		t.Fatal(err)
	}
	done, err := run.NewJob(ctx, JobRecord{Owner: "alice", Command: "restart builders b2", Place: "#ops"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.FinishJob(ctx, done, "done", time.Time{}); err != nil {
		t.Fatal(err)
	}

	st, ok, err := exec.JobStatus(ctx, id)
	if err != nil || !ok {
		t.Fatalf("JobStatus: %v %v", ok, err)
	}
	if st.Here || !st.Alive || st.Result != "" || st.Command != "cleanup b1" || st.Owner != "alice" {
		t.Errorf("JobStatus from another handle: %+v", st)
	}
	if st, _, _ := run.JobStatus(ctx, id); !st.Here || !st.Alive {
		t.Errorf("JobStatus from its own handle: %+v", st)
	}
	if _, ok, err := exec.JobStatus(ctx, 999); ok || err != nil {
		t.Errorf("JobStatus of no job: %v %v", ok, err)
	}

	if got, err := run.TakeCancelRequests(ctx); err != nil || len(got) != 0 {
		t.Fatalf("requests before any: %+v %v", got, err)
	}
	for range 2 {
		if err := exec.RequestCancel(ctx, id, "bob", "exec"); err != nil {
			t.Fatal(err)
		}
	}
	if err := exec.RequestCancel(ctx, done, "bob", "exec"); err != nil {
		t.Fatal(err)
	}
	if got, err := other.TakeCancelRequests(ctx); err != nil || len(got) != 0 {
		t.Errorf("another handle took %+v %v", got, err)
	}
	got, err := run.TakeCancelRequests(ctx)
	if err != nil || len(got) != 1 || got[0].Job != id || got[0].By != "bob" || got[0].Place != "exec" || got[0].Requested.IsZero() {
		t.Fatalf("requests: %+v %v", got, err)
	}
	if again, err := run.TakeCancelRequests(ctx); err != nil || len(again) != 0 {
		t.Errorf("a request taken twice: %+v %v", again, err)
	}

	// The process that runs it dies: the job's status says so.
	run.abandon()
	if st, _, _ := exec.JobStatus(ctx, id); st.Alive {
		t.Errorf("JobStatus of a dead process's job: %+v", st)
	}
}
