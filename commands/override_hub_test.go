package commands

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/kojiapi"
)

// fakeTagger is a hub's tagBuild: each build gets a task, which ends as
// outcome says (never, when missing); cancelled records cancelTask.
type fakeTagger struct {
	mu        sync.Mutex
	next      int64
	refuse    map[string]error
	outcome   map[string]kojiapi.TaskOutcome
	tasks     map[int64]string
	cancelled []int64
}

func (f *fakeTagger) TagBuild(_ context.Context, tag, nvr string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refuse[nvr]; err != nil {
		return 0, err
	}
	f.next++
	if f.tasks == nil {
		f.tasks = map[int64]string{}
	}
	f.tasks[f.next] = nvr
	return f.next, nil
}

func (f *fakeTagger) WaitTask(ctx context.Context, id int64, _ time.Duration) (kojiapi.TaskOutcome, error) {
	f.mu.Lock()
	out, ok := f.outcome[f.tasks[id]]
	f.mu.Unlock()
	if ok {
		return out, nil
	}
	<-ctx.Done()
	return kojiapi.TaskOutcome{}, ctx.Err()
}

func (f *fakeTagger) CancelTask(_ context.Context, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, id)
	return nil
}

func (f *fakeTagger) TaskURL(id int64) string {
	return fmt.Sprintf("https://koji.example.org/koji/taskinfo?taskID=%d", id)
}

// overrideDispatcher is a dispatcher whose override goes through t, with
// no SSH configured.
func overrideDispatcher(t *testing.T, tg *fakeTagger) *Dispatcher {
	t.Helper()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	return New(Deps{Hub: hostsOnly{&fakeDB{hosts: testHosts(now)}}, Tagger: tg,
		ACL: fakeACL{members: map[string]bool{"alice": true}}, Now: func() time.Time { return now }})
}

// TestOverrideThroughTagger: each build is one tagBuild task, its link
// said; the outcome names the tagged and the failed builds with Koji's
// reason; a refused tagBuild is said in the documented words.
func TestOverrideThroughTagger(t *testing.T) {
	tg := &fakeTagger{
		refuse: map[string]error{"baz-3-1": &kojiapi.PermissionError{Perm: "tag", Fault: &kojiapi.Fault{Code: kojiapi.FaultActionNotAllowed, String: "policy violation"}}},
		outcome: map[string]kojiapi.TaskOutcome{
			"foo-1.0-1": {State: kojiapi.TaskClosed},
			"bar-2.1-3": {State: kojiapi.TaskFailed, Reason: "build bar-2.1-3 already tagged (dist-f41-override)"},
		},
	}
	d := overrideDispatcher(t, tg)
	defer d.Close()
	r := &recorder{}
	d.Handle(context.Background(), Request{Account: "alice", Nick: "alice", Text: "override f41 foo-1.0-1 bar-2.1-3 baz-3-1"}, r)
	d.Wait()
	got := r.all()
	for _, want := range []string{
		"tagging foo-1.0-1 into dist-f41-override: Koji task 1 https://koji.example.org/koji/taskinfo?taskID=1",
		"tagging bar-2.1-3 into dist-f41-override: Koji task 2 https://koji.example.org/koji/taskinfo?taskID=2",
		"tagged into dist-f41-override: foo-1.0-1 (task 1)",
		"not tagged into dist-f41-override: baz-3-1: kojibot's Koji user lacks the tag permission (Koji: policy violation); nothing was changed; bar-2.1-3: Koji task 2 failed: build bar-2.1-3 already tagged (dist-f41-override)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("replies lack %q:\n%s", want, got)
		}
	}
	if len(tg.cancelled) != 0 {
		t.Errorf("tasks cancelled: %v", tg.cancelled)
	}
	// One build refused: the reply is the refusal itself.
	r = &recorder{}
	d.Handle(context.Background(), Request{Account: "alice", Nick: "alice", Text: "override f41 baz-3-1"}, r)
	d.Wait()
	if got := r.all(); !strings.Contains(got, "failed after 0s: kojibot's Koji user lacks the tag permission (Koji: policy violation); nothing was changed") {
		t.Errorf("one refused build:\n%s", got)
	}
}

// TestOverrideCancelAndShutdown: `cancel` of a waiting override cancels
// its Koji tasks; kojibot shutting down leaves them to Koji and says so.
func TestOverrideCancelAndShutdown(t *testing.T) {
	for _, shutdown := range []bool{false, true} {
		tg := &fakeTagger{}
		d := overrideDispatcher(t, tg)
		r := &recorder{}
		d.Handle(context.Background(), Request{Account: "alice", Nick: "alice", Text: "override f41 foo-1.0-1 bar-2.1-3"}, r)
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(r.all(), "Koji task 2") && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if shutdown {
			d.Close()
		} else {
			run(d, "alice", "cancel 1")
			d.Wait()
		}
		got := r.all()
		tg.mu.Lock()
		cancelled := fmt.Sprint(tg.cancelled)
		tg.mu.Unlock()
		switch {
		case shutdown && (cancelled != "[]" || !strings.Contains(got, "kojibot is shutting down: Koji task 1 (foo-1.0-1) goes on without it")):
			t.Errorf("shutdown: cancelled %s; replies:\n%s", cancelled, got)
		case !shutdown && (cancelled != "[1 2]" || !strings.Contains(got, "cancelled Koji task 2 (bar-2.1-3)") || !strings.Contains(got, "job 1 cancelled")):
			t.Errorf("cancel: cancelled %s; replies:\n%s", cancelled, got)
		}
		if !shutdown {
			d.Close()
		}
	}
}
