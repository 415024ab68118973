package commands

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/state"
)

// A job started in a private message is listed, by jobs and by jobs --all,
// only to its owner and only in private: in a channel neither its command
// nor its owner shows.
func TestPrivateJobsStayPrivate(t *testing.T) {
	for _, withStore := range []bool{false, true} {
		name := "memory"
		if withStore {
			name = "store"
		}
		t.Run(name, func(t *testing.T) {
			deps := Deps{Config: journalConfig(), DB: &fakeDB{}, ACL: fakeACL{members: map[string]bool{"alice": true, "carol": true}}}
			if withStore {
				st, err := state.Open(context.Background(), t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				deps.State = st
			}
			d := New(deps)
			release := make(chan struct{})
			t.Cleanup(func() { close(release); d.Close() })
			hold := func(ctx context.Context, c *Call) error {
				select {
				case <-release:
				case <-ctx.Done():
				}
				return nil
			}
			secret := jobCall(d, "cleanup", &recorder{})
			secret.Req.Place, secret.Req.Account, secret.FASUser = "", "carol", "carol"
			secret.Parsed.Args["builder"] = []string{"b1"}
			if err := secret.StartJob([]string{"b1"}, hold); err != nil {
				t.Fatal(err)
			}
			public := jobCall(d, "restart", &recorder{})
			if err := public.StartJob([]string{"b2"}, hold); err != nil {
				t.Fatal(err)
			}
			// A second job on the private job's host is refused without
			// naming its command or owner, but to its owner in private.
			err := jobCall(d, "restart", &recorder{}).StartJob([]string{"b1"}, hold)
			if err == nil || !strings.Contains(err.Error(), "b1 is busy with job 1 (started in a private message ") ||
				strings.Contains(err.Error(), "carol") || strings.Contains(err.Error(), "cleanup") {
				t.Errorf("a job on the private job's host: %v", err)
			}
			again := jobCall(d, "restart", &recorder{})
			again.Req.Place, again.Req.Account, again.FASUser = "", "carol", "carol"
			if err := again.StartJob([]string{"b1"}, hold); err == nil || !strings.Contains(err.Error(), "(cleanup b1, by carol, ") {
				t.Errorf("its owner's second job on its host: %v", err)
			}
			for _, tc := range []struct {
				who, place, text string
				private          bool
			}{
				{"alice", "#ops", "jobs", false},
				{"carol", "#ops", "jobs", false},
				{"alice", "", "jobs", false},
				{"carol", "", "jobs", true},
				{"alice", "#ops", "jobs --all", false},
				{"carol", "#ops", "jobs --all", false},
				{"alice", "", "jobs --all", false},
				{"carol", "", "jobs --all", true},
			} {
				got := say(d, tc.who, tc.place, tc.text)
				if !strings.Contains(got, "restart") {
					t.Errorf("%s in %q, %s: the channel's job is not listed:\n%s", tc.who, tc.place, tc.text, got)
				}
				shown := strings.Contains(got, "cleanup") || strings.Contains(got, "carol") || strings.Contains(got, "private message")
				if shown != tc.private {
					t.Errorf("%s in %q, %s: private job shown %v, want %v:\n%s", tc.who, tc.place, tc.text, shown, tc.private, got)
				}
			}
		})
	}
}

// `cancel <job>` of a job that another process runs (two dispatchers on
// one state store, as `exec` beside `run`) says so and asks that process,
// which cancels the job as if its own caller had asked: the job restores
// what it stopped and its caller is told. Someone who may not run the
// job's command may not cancel it.
func TestCancelAcrossProcesses(t *testing.T) {
	old := cancelPoll
	t.Cleanup(func() { cancelPoll = old }) // after the dispatchers' Close
	cancelPoll = 20 * time.Millisecond
	ctx := context.Background()
	dir := t.TempDir()
	newProc := func(fl Fleet) *Dispatcher {
		st, err := state.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		d := New(Deps{Config: journalConfig(), DB: &fakeDB{}, Fleet: fl, ACL: fakeACL{members: map[string]bool{"alice": true}}, State: st})
		t.Cleanup(func() { d.Close(); st.Close() })
		return d
	}
	fl := &fakeFleet{}
	run, exec := newProc(fl), newProc(&fakeFleet{})

	out := &recorder{}
	c := jobCall(run, "cleanup", out)
	c.Parsed.Args["builder"] = []string{"b1"}
	stopped := make(chan struct{})
	if err := c.StartJob([]string{"b1"}, func(ctx context.Context, c *Call) (err error) {
		s, err := run.stopServices(ctx, fl, c, "b1", []string{"kojid"})
		defer func() {
			if serr := run.startServices(fl, c, "b1", s); serr != nil {
				err = serr
			}
		}()
		close(stopped)
		<-ctx.Done()
		return ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	<-stopped

	if got := say(exec, "bob", "exec", "cancel 1"); !strings.HasPrefix(got, "denied:") {
		t.Errorf("bob cancels: %q", got)
	}
	if got := say(exec, "alice", "exec", "cancel 2"); !strings.HasPrefix(got, "error: no job 2") {
		t.Errorf("cancel of no job: %q", got)
	}
	got := say(exec, "alice", "exec", "cancel 1")
	if !strings.Contains(got, "job 1 (cleanup b1) runs in another kojibot process (kojibot run, pid ") ||
		!strings.Contains(got, "asked it to cancel the job") {
		t.Fatalf("cancel from the other process: %q", got)
	}
	j := waitJob(t, run, "1")
	if j.Result() != "cancelled" {
		t.Errorf("job result %q, want cancelled", j.Result())
	}
	if fl.isStopped("b1", "kojid") {
		t.Error("kojid left stopped")
	}
	text := out.all()
	for _, want := range []string{"cancelling job 1 (cleanup b1): alice asked for it (in exec, to another kojibot process)", "job 1 cancelled after "} {
		if !strings.Contains(text, want) {
			t.Errorf("the job's caller was not told %q:\n%s", want, text)
		}
	}
	if got := say(exec, "alice", "exec", "cancel 1"); !strings.Contains(got, "job 1 is not running (cancelled)") {
		t.Errorf("cancel of an ended job: %q", got)
	}
}

// progressRecorder is an output that tells progress from other replies.
type progressRecorder struct {
	sent, progress []string
}

func (p *progressRecorder) Send(m reply.Message) { p.sent = append(p.sent, m.String()) }

func (p *progressRecorder) SendProgress(jobID string, m reply.Message) {
	p.progress = append(p.progress, jobID+" "+m.String())
}

// TestJobOutputProgress: a job's replies reach a ProgressOutput as the
// job's progress, and any other output through Send; the job's log keeps
// them either way.
func TestJobOutputProgress(t *testing.T) {
	p := &progressRecorder{}
	j := &Job{ID: "7"}
	out := jobOutput{out: p, job: j}
	out.Send(reply.Text(Info, "stopped kojid"))
	out.Send(reply.Text(Error, "deleting x failed\nOperation not permitted"))
	if want := []string{"7 stopped kojid", "7 error: deleting x failed\nOperation not permitted"}; !reflect.DeepEqual(p.progress, want) || len(p.sent) != 0 {
		t.Errorf("progress %q, sent %q; want progress %q and nothing sent", p.progress, p.sent, want)
	}
	if want := []string{"stopped kojid", "error: deleting x failed", "Operation not permitted"}; !reflect.DeepEqual(j.Log(), want) {
		t.Errorf("log %q, want %q", j.Log(), want)
	}
	r := &recorder{}
	jobOutput{out: r, job: &Job{ID: "8"}}.Send(reply.Text(Info, "plain"))
	if got := r.all(); got != "plain" {
		t.Errorf("plain output got %q, want the line through Send", got)
	}
}

// jobs and jobs --all name the process that runs each job (host:pid).
func TestJobsNameTheirProcess(t *testing.T) {
	st, err := state.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d := New(Deps{Config: journalConfig(), DB: &fakeDB{}, ACL: fakeACL{members: map[string]bool{"alice": true}}, State: st})
	release := make(chan struct{})
	t.Cleanup(func() { close(release); d.Close() })
	hold := func(ctx context.Context, c *Call) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	if err := jobCall(d, "restart", &recorder{}).StartJob([]string{"b2"}, hold); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"jobs", "jobs --all"} {
		if got := say(d, "alice", "#ops", text); !strings.Contains(got, "process") || !strings.Contains(got, state.Holder()) {
			t.Errorf("%s does not name the job's process %s:\n%s", text, state.Holder(), got)
		}
	}
}
