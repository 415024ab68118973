package commands

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/state"
)

// awayStore is a state store that refuses the writes that end things
// (closing a journal record, recording a job's end) while away is set, as
// a store whose PostgreSQL restarts does.
type awayStore struct {
	*state.Store
	away atomic.Bool
}

var errStoreAway = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

func (s *awayStore) Done(ctx context.Context, id int64) error {
	if s.away.Load() {
		return errStoreAway
	}
	return s.Store.Done(ctx, id)
}

func (s *awayStore) FinishJob(ctx context.Context, id int64, result string, finished time.Time) error {
	if s.away.Load() {
		return errStoreAway
	}
	return s.Store.FinishJob(ctx, id, result, finished)
}

// TestStoreAwayWhileJobEnds: a job that stops and starts a service while
// the store goes away leaves no journal record open and no job unfinished
// in the store once the store is back.
func TestStoreAwayWhileJobEnds(t *testing.T) {
	defer func(every time.Duration) { storeRetryEvery = every }(storeRetryEvery)
	storeRetryEvery = 20 * time.Millisecond
	ctx := context.Background()
	fl := &fakeFleet{}
	st, err := state.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	away := &awayStore{Store: st}
	d := New(Deps{Config: journalConfig(), DB: &fakeDB{}, Fleet: fl, ACL: fakeACL{}, State: away})
	defer d.Close()
	c := jobCall(d, "restart", &recorder{})
	c.StartJob([]string{"b1"}, func(ctx context.Context, c *Call) error {
		stopped, err := d.stopServices(ctx, fl, c, "b1", []string{"kojid"})
		if err != nil {
			return err
		}
		away.away.Store(true) // the store restarts now
		return d.startServices(fl, c, "b1", stopped)
	})
	waitJob(t, d, "1")
	if open, _ := st.OpenEntries(ctx, ""); len(open) != 1 {
		t.Fatalf("open while the store is away: %+v, want kojid's record", open)
	}
	away.away.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		open, err := st.OpenEntries(ctx, "")
		jobs, jerr := st.RecentJobs(ctx, 5)
		if err == nil && jerr == nil && len(open) == 0 && len(jobs) == 1 && !jobs[0].Finished.IsZero() {
			if jobs[0].Result != string(JobDone) {
				t.Errorf("job recorded as %q, want done", jobs[0].Result)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("once the store is back: open %+v (%v), jobs %+v (%v); want none open and the job finished", open, err, jobs, jerr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
