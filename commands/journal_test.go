package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/state"
	"github.com/fedora-infra/kojibot/config"
)

func journalConfig() *config.Config {
	cfg := config.Default()
	cfg.Hosts = map[string]config.Host{
		"b1": {Address: "127.0.0.2:22", Services: []string{"kojid", "plague-builder"}},
		"b2": {Address: "127.0.0.3:22", Services: []string{"kojid"}},
	}
	return cfg
}

// jobCall is a call of spec name by alice in #ops, as the dispatcher makes it.
func jobCall(d *Dispatcher, name string, out Output) *Call {
	spec := d.catalogue.Spec(name)
	return &Call{Parsed: &Parsed{Spec: spec, Args: map[string][]string{}, Flags: map[string]string{}},
		Req: Request{Account: "alice", Place: "#ops"}, FASUser: "alice", out: out, d: d, ctx: context.Background(),
		Log: d.deps.Log}
}

func waitJob(t *testing.T, d *Dispatcher, id string) *Job {
	t.Helper()
	j, ok := d.Job(id)
	if !ok {
		t.Fatalf("no job %s", id)
	}
	select {
	case <-j.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("job %s did not end", id)
	}
	return j
}

// A panic in a job, after it stopped services, fails that job with an
// internal error, logs the stack, starts the services again and leaves
// the dispatcher working; with a store, the journal is left clean.
func TestJobPanicRestoresServices(t *testing.T) {
	for _, withStore := range []bool{false, true} {
		name := "memory"
		if withStore {
			name = "store"
		}
		t.Run(name, func(t *testing.T) {
			fl := &fakeFleet{}
			logs := &logBuffer{}
			deps := Deps{Config: journalConfig(), DB: &fakeDB{}, Fleet: fl, ACL: fakeACL{},
				Log: slog.New(slog.NewJSONHandler(logs, nil))}
			var st *state.Store
			if withStore {
				var err error
				if st, err = state.Open(context.Background(), t.TempDir()); err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				deps.State = st
			}
			d := New(deps)
			defer d.Close()
			out := &recorder{}
			c := jobCall(d, "cleanup", out)
			if err := c.StartJob([]string{"b1"}, func(ctx context.Context, c *Call) error {
				if _, err := d.stopServices(ctx, fl, c, "b1", []string{"kojid", "plague-builder"}); err != nil {
					return err
				}
				if !fl.isStopped("b1", "kojid") {
					t.Error("kojid was not stopped before the panic")
				}
				var m map[string]int
				m["boom"]++ // a nil map write: a real runtime panic
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			j := waitJob(t, d, "1")
			if r := j.Result(); r != "failed: internal error" {
				t.Errorf("result %q, want failed: internal error", r)
			}
			for _, s := range []string{"kojid", "plague-builder"} {
				if fl.isStopped("b1", s) {
					t.Errorf("%s left stopped after the panic", s)
				}
			}
			got := out.all()
			for _, want := range []string{"b1: stopped kojid, plague-builder", "b1: started kojid, plague-builder again", "error: job 1 (cleanup) failed", "internal error"} {
				if !strings.Contains(got, want) {
					t.Errorf("replies lack %q:\n%s", want, got)
				}
			}
			if !strings.Contains(logs.String(), "job panicked") || !strings.Contains(logs.String(), "runtime/debug.Stack") {
				t.Errorf("the panic was not logged with its stack:\n%s", logs.String())
			}
			if withStore {
				if open, _ := st.OpenEntries(context.Background(), ""); len(open) != 0 {
					t.Errorf("journal still open: %+v", open)
				}
				if jobs, _ := st.RecentJobs(context.Background(), 5); len(jobs) != 1 || jobs[0].Result != "failed: internal error" {
					t.Errorf("job record: %+v", jobs)
				}
			}
			// The process goes on: the host is free and the next job runs.
			c = jobCall(d, "cleanup", out)
			if err := c.StartJob([]string{"b1"}, func(ctx context.Context, c *Call) error { return nil }); err != nil {
				t.Fatalf("after the panic: %v", err)
			}
			if r := waitJob(t, d, "2").Result(); r != "done" {
				t.Errorf("next job: %q", r)
			}
		})
	}
}

// Journal records are written before a stop and closed after the start;
// a job that ends with a service still down (a restart cut short) starts
// it again.
func TestJournalAroundJobs(t *testing.T) {
	ctx := context.Background()
	fl := &fakeFleet{}
	st, err := state.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := New(Deps{Config: journalConfig(), DB: &fakeDB{}, Fleet: fl, ACL: fakeACL{}, State: st})
	defer d.Close()
	out := &recorder{}
	inside := make(chan []state.Entry, 1)
	c := jobCall(d, "cleanup", out)
	c.StartJob([]string{"b1"}, func(ctx context.Context, c *Call) (err error) {
		stopped, err := d.stopServices(ctx, fl, c, "b1", []string{"kojid"})
		if err != nil {
			return err
		}
		if err := d.journalOpen(c, "b1", state.KindMount, "/var/lib/mock/x/proc"); err != nil {
			return err
		}
		if err := d.journalOpen(c, "b1", state.KindMount, "/var/lib/mock/x/dev"); err != nil {
			return err
		}
		open, _ := st.OpenEntries(ctx, c.Job.ID)
		inside <- open
		return d.startServices(fl, c, "b1", stopped)
	})
	waitJob(t, d, "1")
	open := <-inside
	// kojid, and only the mount being unmounted: the one before is dealt with.
	if len(open) != 2 || open[0].Name != "kojid" || open[0].Kind != state.KindService || open[0].Job != "1" || open[0].Owner != "alice" ||
		open[1].Name != "/var/lib/mock/x/dev" {
		t.Errorf("open during the job: %+v", open)
	}
	if left, _ := st.OpenEntries(ctx, ""); len(left) != 0 {
		t.Errorf("open after the job: %+v", left)
	}

	// A restart whose service does not come back is recorded open and
	// retried when the job ends; still broken, it stays open for the next launch.
	fl.breakService("b2", "kojid")
	c = jobCall(d, "restart", out)
	c.StartJob([]string{"b2"}, func(ctx context.Context, c *Call) error { return d.restartBuilders(ctx, fl, c, []string{"b2"}) })
	if r := waitJob(t, d, "2").Result(); !strings.HasPrefix(r, "failed") {
		t.Errorf("restart of a broken service: %q", r)
	}
	if fl.count("b2 start kojid") != 1 {
		t.Errorf("the broken service was not retried once at the job's end: %q", fl.allCalls())
	}
	if left, _ := st.OpenEntries(ctx, ""); len(left) != 1 || left[0].Host != "b2" {
		t.Errorf("open after a failed restart: %+v", left)
	}
}

// Recover starts what dead processes left stopped, with retries, reports
// mounts, leaves a live process's records alone, and says what it did.
func TestRecover(t *testing.T) {
	ctx := context.Background()
	saved := recoverWait
	recoverWait = time.Millisecond
	defer func() { recoverWait = saved }()
	dir := t.TempDir()

	dead, err := state.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []state.Entry{
		{Host: "b1", Kind: state.KindService, Name: "kojid", Job: "4", Owner: "alice"},
		{Host: "b1", Kind: state.KindService, Name: "plague-builder", Job: "4", Owner: "alice"},
		{Host: "b1", Kind: state.KindMount, Name: "/var/lib/mock/x/proc", Job: "4", Owner: "alice"},
		{Host: "b2", Kind: state.KindService, Name: "kojid", Job: "5", Owner: "carol"},
	} {
		if _, err := dead.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	dead.Close() // gone with its records open, as after a shutdown that ran out of time
	live, err := state.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	live.Record(ctx, state.Entry{Host: "b2", Kind: state.KindService, Name: "kojid", Job: "9", Owner: "bob"})

	st, err := state.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fl := &fakeFleet{}
	fl.stop("b1", "kojid")
	fl.stop("b1", "plague-builder")
	fl.stop("b2", "kojid")
	fl.breakService("b1", "plague-builder")
	d := New(Deps{Config: journalConfig(), DB: &fakeDB{}, Fleet: fl, ACL: fakeACL{}, State: st})
	defer d.Close()
	r, err := d.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Restored) != 2 || r.Restored[0].Name != "kojid" || r.Restored[0].Host != "b1" || r.Restored[1].Host != "b2" {
		t.Errorf("restored: %+v", r.Restored)
	}
	if len(r.Failed) != 1 || r.Failed[0].Entry.Name != "plague-builder" {
		t.Errorf("failed: %+v", r.Failed)
	}
	if n := fl.count("b1 start plague-builder"); n != recoverTries {
		t.Errorf("%d tries of the broken service, want %d", n, recoverTries)
	}
	if len(r.Mounts) != 1 || r.Mounts[0].Name != "/var/lib/mock/x/proc" {
		t.Errorf("mounts: %+v", r.Mounts)
	}
	text := strings.Join(r.Lines(), "\n")
	for _, want := range []string{"listed 3 services", "started again: kojid on b1 (job 4 by alice), kojid on b2 (job 5 by carol)",
		"could not start", "plague-builder on b1", "/var/lib/mock/x/proc on b1"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if fl.isStopped("b1", "kojid") || fl.isStopped("b2", "kojid") {
		t.Error("services left stopped")
	}
	// The failed one stays open for the next launch; the live process's
	// record was never touched.
	if open, _ := st.OpenEntries(ctx, ""); len(open) != 1 || open[0].Name != "plague-builder" {
		t.Errorf("still open: %+v", open)
	}
	if open, _ := live.OpenEntries(ctx, ""); len(open) != 1 || open[0].Job != "9" {
		t.Errorf("the live process's records: %+v", open)
	}
	if again, _ := d.Recover(ctx); !again.Empty() || again.Lines() != nil {
		t.Errorf("second recovery: %+v", again)
	}
	if (Recovery{}).Lines() != nil {
		t.Error("an empty recovery has lines")
	}
	// Without a store there is nothing to recover.
	if r, err := New(Deps{Config: journalConfig(), DB: &fakeDB{}, ACL: fakeACL{}}).Recover(ctx); err != nil || !r.Empty() {
		t.Errorf("no store: %+v %v", r, err)
	}
}

// Job ids come from the store and never repeat across restarts; jobs --all
// lists the earlier process's jobs too.
func TestJobIDsAndJobsAll(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	run := func(want string) *Dispatcher {
		st, err := state.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		d := New(Deps{Config: journalConfig(), DB: &fakeDB{}, Fleet: &fakeFleet{}, ACL: fakeACL{members: map[string]bool{"alice": true}}, State: st})
		t.Cleanup(d.Close)
		out := &recorder{}
		c := jobCall(d, "restart", out)
		if err := c.StartJob([]string{"b1"}, func(ctx context.Context, c *Call) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.all(), "job "+want+" started") {
			t.Errorf("want job %s: %q", want, out.all())
		}
		j := waitJob(t, d, want)
		if len(j.Token) < 22 || strings.ContainsAny(j.Token, "+/=") {
			t.Errorf("token %q is not 128 bits of URL-safe base64", j.Token)
		}
		if got, ok := d.JobByToken(j.Token); !ok || got != j {
			t.Error("JobByToken does not find the job")
		}
		return d
	}
	run("1")
	run("2")
	d := run("3")
	rows := tableOf(t, sayMessages(d, "alice", "#ops", "jobs --all")).Rows
	if len(rows) != 3 || rows[0][0] != "3" || rows[1][0] != "2" || rows[2][0] != "1" {
		t.Fatalf("jobs --all is not the 3 jobs newest first: %q", rows)
	}
	if !slices.Equal(rows[0][1:4], []string{"restart", "alice", "#ops"}) || !strings.HasPrefix(rows[0][4], "done after ") {
		t.Errorf("jobs --all row %q", rows[0])
	}
	if got := say(d, "alice", "#ops", "jobs"); got != "no jobs running" {
		t.Errorf("jobs: %q", got)
	}
	// Without a store, --all lists this process's jobs.
	m := New(Deps{Config: journalConfig(), DB: &fakeDB{}, ACL: fakeACL{}})
	defer m.Close()
	jobCall(m, "restart", &recorder{}).StartJob([]string{"b1"}, func(ctx context.Context, c *Call) error { return errors.New("no") })
	waitJob(t, m, "1")
	if rows := tableOf(t, sayMessages(m, "alice", "#ops", "jobs --all")).Rows; len(rows) != 1 ||
		!slices.Equal(rows[0][:4], []string{"1", "restart", "alice", "#ops"}) || !strings.HasPrefix(rows[0][4], "failed: no") {
		t.Errorf("jobs --all without a store: %q", rows)
	}
}

// Shutdown cancels the running jobs and waits for them to restore what
// they stopped; a job that does not end in time is returned.
func TestShutdown(t *testing.T) {
	fl := &fakeFleet{}
	d := New(Deps{Config: journalConfig(), DB: &fakeDB{}, Fleet: fl, ACL: fakeACL{}})
	stopped := make(chan struct{})
	c := jobCall(d, "cleanup", &recorder{})
	c.StartJob([]string{"b1"}, func(ctx context.Context, c *Call) (err error) {
		s, err := d.stopServices(ctx, fl, c, "b1", []string{"kojid"})
		defer func() {
			if serr := d.startServices(fl, c, "b1", s); serr != nil {
				err = serr
			}
		}()
		close(stopped)
		<-ctx.Done()
		return ctx.Err()
	})
	<-stopped
	if left := d.Shutdown(10 * time.Second); len(left) != 0 {
		t.Errorf("jobs left: %d", len(left))
	}
	if fl.isStopped("b1", "kojid") {
		t.Error("kojid left stopped after Shutdown")
	}
	if err := jobCall(d, "cleanup", &recorder{}).StartJob([]string{"b2"}, func(context.Context, *Call) error { return nil }); err == nil ||
		!strings.Contains(err.Error(), "shutting down") {
		t.Errorf("a job started after Shutdown: %v", err)
	}

	hung := New(Deps{Config: journalConfig(), DB: &fakeDB{}, Fleet: fl, ACL: fakeACL{}})
	release := make(chan struct{})
	jobCall(hung, "cleanup", &recorder{}).StartJob([]string{"b1"}, func(ctx context.Context, c *Call) error { <-release; return nil })
	if left := hung.Shutdown(50 * time.Millisecond); len(left) != 1 {
		t.Errorf("a hung job was not reported: %d", len(left))
	}
	close(release)
	hung.Wait()
}

// TestMatrixPlaceNamed: jobs, jobs --all and the audit show a Matrix room
// by its alias with its id, not by the id alone.
func TestMatrixPlaceNamed(t *testing.T) {
	ctx := context.Background()
	st, err := state.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var audit logBuffer
	d := New(Deps{Config: journalConfig(), DB: &fakeDB{}, Fleet: &fakeFleet{}, ACL: fakeACL{members: map[string]bool{"alice": true}},
		State: st, Audit: slog.New(slog.NewJSONHandler(&audit, nil))})
	t.Cleanup(d.Close)
	req := Request{Account: "@alice:fedora.im", Nick: "@alice:fedora.im", Place: "matrix:!abc:fedora.im", PlaceName: "#admin:fedora.im"}
	c := jobCall(d, "restart", &recorder{})
	c.Req = req
	release := make(chan struct{})
	if err := c.StartJob([]string{"b1"}, func(ctx context.Context, c *Call) error { <-release; return nil }); err != nil {
		t.Fatal(err)
	}
	const want = "#admin:fedora.im (!abc:fedora.im)"
	list := func(text string) []string {
		r := &recorder{}
		q := req
		q.Text = text
		d.Handle(ctx, q, r)
		r.mu.Lock()
		defer r.mu.Unlock()
		return tableOf(t, r.messages).Rows[0]
	}
	if row := list("jobs"); row[3] != want {
		t.Errorf("jobs: where %q, want %q", row[3], want)
	}
	close(release)
	waitJob(t, d, "1")
	if row := list("jobs --all"); row[3] != want {
		t.Errorf("jobs --all: where %q, want %q", row[3], want)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(audit.String(), `"msg":"job result"`) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	records := 0
	for _, line := range strings.Split(strings.TrimSpace(audit.String()), "\n") {
		if !strings.Contains(line, `"place":"matrix:!abc:fedora.im"`) || !strings.Contains(line, `"place_name":"#admin:fedora.im"`) {
			t.Errorf("audit record without the room's id and alias: %s", line)
		}
		records++
	}
	if records < 5 { // two commands (decision, result) and the job's result
		t.Errorf("%d audit records, want at least 5:\n%s", records, audit.String())
	}
}

// Recovery starts only a host's configured services: a journal record
// naming anything else (written by whoever can write the store) is
// reported and closed, never started.
func TestRecoverOnlyConfiguredServices(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dead, err := state.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []state.Entry{
		{Host: "b1", Kind: state.KindService, Name: "kojid", Job: "4", Owner: "alice"},
		{Host: "b1", Kind: state.KindService, Name: "sshd", Job: "4", Owner: "alice"},
		{Host: "b2", Kind: state.KindService, Name: "plague-builder", Job: "5", Owner: "carol"},
	} {
		if _, err := dead.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	dead.Close()
	st, err := state.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fl := &fakeFleet{}
	d := New(Deps{Config: journalConfig(), DB: &fakeDB{}, Fleet: fl, ACL: fakeACL{}, State: st})
	defer d.Close()
	r, err := d.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := fl.count("b1 start sshd") + fl.count("b2 start plague-builder"); n != 0 {
		t.Errorf("started %d services that are not configured for their host: %q", n, fl.allCalls())
	}
	if fl.count("b1 start kojid") != 1 || len(r.Restored) != 1 || r.Restored[0].Name != "kojid" {
		t.Errorf("restored %+v, calls %q", r.Restored, fl.allCalls())
	}
	if len(r.Refused) != 2 {
		t.Errorf("refused %+v", r.Refused)
	}
	text := strings.Join(r.Lines(), "\n")
	if !strings.Contains(text, "not started, not among the host's configured services (hosts.<host>.services): sshd on b1 (job 4 by alice), plague-builder on b2 (job 5 by carol)") {
		t.Errorf("report:\n%s", text)
	}
	if open, _ := st.OpenEntries(ctx, ""); len(open) != 0 {
		t.Errorf("still open: %+v", open)
	}
}

// Recover tells of the jobs a process now gone left unfinished: their
// callers never got a result. A job that ended, and one of a live
// process, are not named; a second recovery names nothing.
func TestRecoverSaysInterruptedJobs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dead, err := state.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cleanup, err := dead.NewJob(ctx, state.JobRecord{Owner: "alice", Command: "cleanup b1", Place: "#ops", Started: now})
	if err != nil {
		t.Fatal(err)
	}
	ended, err := dead.NewJob(ctx, state.JobRecord{Owner: "alice", Command: "restart builders b2", Place: "#ops", Started: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := dead.FinishJob(ctx, ended, "done", now); err != nil {
		t.Fatal(err)
	}
	dead.Close()
	live, err := state.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, err := live.NewJob(ctx, state.JobRecord{Owner: "bob", Command: "reboot b2", Place: "#ops", Started: now}); err != nil {
		t.Fatal(err)
	}

	st, err := state.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := New(Deps{Config: journalConfig(), DB: &fakeDB{}, Fleet: &fakeFleet{}, ACL: fakeACL{}, State: st})
	defer d.Close()
	r, err := d.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Interrupted) != 1 || r.Interrupted[0].ID != cleanup {
		t.Fatalf("interrupted: %+v, want job %d alone", r.Interrupted, cleanup)
	}
	want := fmt.Sprintf("recovery: interrupted, kojibot stopped before they ended (run them again if still needed): job %d (cleanup b1) by alice", cleanup)
	if lines := r.Lines(); len(lines) != 1 || lines[0] != want {
		t.Errorf("lines %q, want %q", lines, want)
	}
	if again, _ := d.Recover(ctx); !again.Empty() {
		t.Errorf("second recovery: %+v", again)
	}
}

// A service a job could not start again at its end (its builder away) is
// started once it can be, while the process runs: its record is closed and
// the job's place told; it is not left for the next launch.
func TestRestoreLater(t *testing.T) {
	defer func(every time.Duration) { restoreRetryEvery = every }(restoreRetryEvery)
	restoreRetryEvery = 20 * time.Millisecond
	ctx := context.Background()
	fl := &fakeFleet{}
	st, err := state.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := New(Deps{Config: journalConfig(), DB: &fakeDB{}, Fleet: fl, ACL: fakeACL{}, State: st})
	defer d.Close()
	out := &recorder{}
	c := jobCall(d, "cleanup", out)
	c.StartJob([]string{"b1"}, func(ctx context.Context, c *Call) error {
		stopped, err := d.stopServices(ctx, fl, c, "b1", []string{"kojid"})
		if err != nil {
			return err
		}
		fl.breakService("b1", "kojid") // the builder goes away
		return d.startServices(fl, c, "b1", stopped)
	})
	waitJob(t, d, "1")
	if open, _ := st.OpenEntries(ctx, ""); len(open) != 1 || open[0].Name != "kojid" {
		t.Fatalf("open after the job: %+v, want kojid's record", open)
	}
	fl.mu.Lock()
	delete(fl.broken, "b1/kojid") // it is back
	fl.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		open, _ := st.OpenEntries(ctx, "")
		if len(open) == 0 && !fl.isStopped("b1", "kojid") && strings.Contains(out.all(), "b1: started kojid again (it would not start when job 1 ended)") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kojid not restored once b1 is back: open %+v, stopped %v, said:\n%s", open, fl.isStopped("b1", "kojid"), out.all())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
