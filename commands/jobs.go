package commands

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/acl"
)

// maxJobLog bounds the lines a job keeps for /jobs/<id>.
const maxJobLog = 5000

// maxFinishedJobs bounds how many finished jobs are remembered.
const maxFinishedJobs = 200

// Job is a long action (clean-up, restart, reboot, override) running in the
// background with an id, its progress and a way to cancel it.
type Job struct {
	ID      string
	Owner   string // FAS user (or account) who started it
	Place   string
	Command string // the normalised command
	Hosts   []string

	spec    *Spec
	Started time.Time

	mu       sync.Mutex
	finished time.Time
	result   string
	log      []string
	cancel   context.CancelFunc
	done     chan struct{}
}

// Log returns the job's whole output so far.
func (j *Job) Log() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.log...)
}

// Result returns "running", "done", "failed: ..." or "cancelled".
func (j *Job) Result() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.result == "" {
		return "running"
	}
	return j.result
}

// Done is closed when the job has finished.
func (j *Job) Done() <-chan struct{} { return j.done }

func (j *Job) append(line string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.log) < maxJobLog {
		j.log = append(j.log, line)
	}
}

// jobTable tracks running and recent jobs and the one-job-per-host lock.
type jobTable struct {
	mu       sync.Mutex
	next     int
	jobs     map[string]*Job
	finished []string
	byHost   map[string]*Job
	wg       sync.WaitGroup
	base     context.Context
	now      func() time.Time
}

func newJobTable(base context.Context, now func() time.Time) *jobTable {
	return &jobTable{jobs: map[string]*Job{}, byHost: map[string]*Job{}, base: base, now: now}
}

// busyError names the job holding a host.
func (t *jobTable) busyError(host string, j *Job) error {
	return Userf("%s is busy with job %s (%s, by %s, started %s ago); wait for it or cancel %s",
		host, j.ID, j.Command, j.Owner, ago(t.now().Sub(j.Started)), j.ID)
}

// refuseBusy returns the error start would give when host has a running
// job, so that a command can refuse before it plans.
func (t *jobTable) refuseBusy(host string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if j := t.byHost[host]; j != nil {
		return t.busyError(host, j)
	}
	return nil
}

// start registers a job on hosts (refused when one of them already has a
// running job) and runs fn in the background.
func (t *jobTable) start(spec *Spec, owner, place, command string, hosts []string, fn func(ctx context.Context, j *Job) error, finish func(j *Job, err error)) (*Job, error) {
	t.mu.Lock()
	for _, h := range hosts {
		if other, busy := t.byHost[h]; busy {
			t.mu.Unlock()
			return nil, t.busyError(h, other)
		}
	}
	t.next++
	ctx, cancel := context.WithCancel(t.base)
	j := &Job{spec: spec, ID: strconv.Itoa(t.next), Owner: owner, Place: place, Command: command, Hosts: hosts,
		Started: t.now(), cancel: cancel, done: make(chan struct{})}
	t.jobs[j.ID] = j
	for _, h := range hosts {
		t.byHost[h] = j
	}
	t.wg.Add(1)
	t.mu.Unlock()

	go func() {
		defer t.wg.Done()
		defer cancel()
		err := fn(ctx, j)
		result := "done"
		switch {
		case err != nil && errors.Is(ctx.Err(), context.Canceled):
			result = "cancelled"
		case err != nil:
			result = "failed: " + err.Error()
		}
		j.mu.Lock()
		j.result, j.finished = result, t.now()
		j.mu.Unlock()
		t.mu.Lock()
		for _, h := range hosts {
			if t.byHost[h] == j {
				delete(t.byHost, h)
			}
		}
		t.finished = append(t.finished, j.ID)
		if len(t.finished) > maxFinishedJobs {
			delete(t.jobs, t.finished[0])
			t.finished = t.finished[1:]
		}
		t.mu.Unlock()
		finish(j, err)
		close(j.done)
	}()
	return j, nil
}

// get returns a job by id.
func (t *jobTable) get(id string) (*Job, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	j, ok := t.jobs[strings.TrimPrefix(id, "#")]
	return j, ok
}

// running lists the running jobs, oldest first.
func (t *jobTable) running() []*Job {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*Job
	for _, j := range t.jobs {
		if j.Result() == "running" {
			out = append(out, j)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Started.Before(out[b].Started) })
	return out
}

// Job returns the job with the given id, running or recently finished.
func (d *Dispatcher) Job(id string) (*Job, bool) { return d.jobs.get(id) }

// Wait blocks until every job has finished (kojibot exec, shutdown).
func (d *Dispatcher) Wait() { d.jobs.wg.Wait() }

// StartJob runs fn as a background job on hosts, posting its start and its
// outcome to the caller. Progress sent through c while it runs is kept in
// the job's log. A host with a running job refuses a second one.
func (c *Call) StartJob(hosts []string, fn func(ctx context.Context, c *Call) error) error {
	d := c.d
	owner := c.FASUser
	if owner == "" {
		owner = c.Req.Account
	}
	j, err := d.jobs.start(c.Spec, owner, c.Req.Place, c.Normalized(), hosts, func(ctx context.Context, j *Job) error {
		jc := c.forJob(ctx, j)
		return fn(ctx, jc)
	}, func(j *Job, err error) {
		took := d.deps.Now().Sub(j.Started).Round(time.Second)
		res := j.Result()
		switch {
		case res == "cancelled":
			c.out.Send(Info, fmt.Sprintf("job %s cancelled after %s", j.ID, took))
		case err != nil:
			c.out.Send(Error, fmt.Sprintf("job %s (%s) failed after %s: %s", j.ID, j.Command, took, d.userMessage(c, err)))
		default:
			c.out.Send(Info, fmt.Sprintf("job %s (%s) done in %s", j.ID, j.Command, took))
		}
		d.deps.Audit.Info("job result", "job", j.ID, "command", j.Command, "fas_user", owner, "account", c.Req.Account,
			"place", place(c.Req), "result", res, "duration", took)
	})
	if err != nil {
		return err
	}
	c.Reply("job %s started: %s (cancel %s to stop it)", j.ID, j.Command, j.ID)
	return nil
}

// forJob returns a copy of c whose replies also go to job j's log.
func (c *Call) forJob(ctx context.Context, j *Job) *Call {
	return &Call{Parsed: c.Parsed, Req: c.Req, FASUser: c.FASUser, Log: c.Log.With("job", j.ID),
		out: jobOutput{out: c.out, job: j}, d: c.d, ctx: ctx, Job: j}
}

// jobOutput copies a job's replies into its log.
type jobOutput struct {
	out Output
	job *Job
}

func (o jobOutput) Send(kind Kind, text string) {
	for _, line := range strings.Split(Format(kind, text), "\n") {
		o.job.append(line)
	}
	o.out.Send(kind, text)
}

func (d *Dispatcher) runJobs(ctx context.Context, c *Call) error {
	jobs := d.jobs.running()
	if len(jobs) == 0 {
		c.Reply("no jobs running")
		return nil
	}
	var lines []string
	for _, j := range jobs {
		lines = append(lines, fmt.Sprintf("job %s: %s, by %s in %s, running for %s", j.ID, j.Command, j.Owner,
			placeName(j.Place), ago(d.deps.Now().Sub(j.Started))))
	}
	c.Reply("%s", strings.Join(lines, "\n"))
	return nil
}

func (d *Dispatcher) runCancel(ctx context.Context, c *Call) error {
	j, ok := d.jobs.get(c.Arg("job"))
	if !ok {
		return Userf("no job %s", quoteShort(c.Arg("job")))
	}
	if r := j.Result(); r != "running" {
		return Userf("job %s is not running (%s)", j.ID, r)
	}
	// Whoever may run the job's command may cancel it.
	dec := d.deps.ACL.Authorize(ctx, acl.Caller{Account: c.Req.Account, FASUser: c.Req.FASUser}, j.spec.Name, j.spec.ReadOnly)
	if !dec.Allowed {
		c.Send(Denied, "cancelling job "+j.ID+": "+dec.Reason)
		return nil
	}
	j.cancel()
	c.Reply("cancelling job %s (%s); it restores what it stopped before it ends", j.ID, j.Command)
	return nil
}
