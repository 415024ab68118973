package commands

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/state"
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
	// Token is a random, unguessable, URL-safe name for the job (128 bits),
	// set when the job is created; the HTTP server serves /jobs/<token>.
	Token string
	// PlaceName is how Place is shown beside it (a Matrix room's alias or
	// name); "" when there is none.
	PlaceName string

	spec    *Spec
	Started time.Time

	mu       sync.Mutex
	finished time.Time
	result   string
	log      []string
	cancel   context.CancelFunc
	done     chan struct{}
	// tell sends a message to the job's caller (set by StartJob).
	tell func(m reply.Message)
	// standalone: made by NewStandaloneJob, driven by Step and Finish.
	standalone bool
}

// Log returns the job's whole output so far.
func (j *Job) Log() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.log...)
}

// JobState is where a job is in its life.
type JobState string

// The job states. A failed job's Result adds the reason: "failed: …".
const (
	JobRunning   JobState = "running"
	JobDone      JobState = "done"
	JobFailed    JobState = "failed"
	JobCancelled JobState = "cancelled"
)

// failedResult is the Result of a job that failed for reason.
func failedResult(reason string) string { return string(JobFailed) + ": " + reason }

// State returns the job's state, without a failure's reason.
func (j *Job) State() JobState {
	r := j.Result()
	if strings.HasPrefix(r, string(JobFailed)+":") {
		return JobFailed
	}
	return JobState(r)
}

// Result returns "running", "done", "failed: ..." or "cancelled".
func (j *Job) Result() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.result == "" {
		return string(JobRunning)
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

// newJobToken returns 128 random bits, URL-safe base64 without padding.
func newJobToken() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("commands: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// jobTable tracks running and recent jobs and the one-job-per-host lock.
type jobTable struct {
	mu       sync.Mutex
	next     int
	jobs     map[string]*Job
	byToken  map[string]*Job
	finished []string
	byHost   map[string]*Job
	wg       sync.WaitGroup
	base     context.Context
	now      func() time.Time
	// store, when set, gives the job ids and keeps the job records.
	store StateStore
	log   *slog.Logger
}

func newJobTable(base context.Context, now func() time.Time, store StateStore, log *slog.Logger) *jobTable {
	return &jobTable{jobs: map[string]*Job{}, byToken: map[string]*Job{}, byHost: map[string]*Job{}, base: base, now: now,
		store: store, log: log}
}

// errJobPanic is a job's error when its function panicked.
var errJobPanic = errors.New("internal error")

// busyError names the job holding a host to a caller who is owner and
// asks in place: a private job of someone else (see listable) without its
// command or owner. Call it with t.mu held.
func (t *jobTable) busyError(host string, j *Job, owner, place string) error {
	if !listable(j.Owner, j.Place, owner, place == "" || place == "exec") {
		if j.ID == "" {
			return Userf("%s is busy with a job, started in a private message, that is starting; try again in a moment", host)
		}
		return Userf("%s is busy with job %s (started in a private message %s ago); wait for it or cancel %s",
			host, j.ID, ago(t.now().Sub(j.Started)), j.ID)
	}
	if j.ID == "" {
		return Userf("%s is busy with a job of %s that is starting (%s); try again in a moment", host, j.Owner, j.Command)
	}
	return Userf("%s is busy with job %s (%s, by %s, started %s ago); wait for it or cancel %s",
		host, j.ID, j.Command, j.Owner, ago(t.now().Sub(j.Started)), j.ID)
}

// refuseBusy returns the error start would give c when host has a running
// job, so that a command can refuse before it plans.
func (t *jobTable) refuseBusy(c *Call, host string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if j := t.byHost[host]; j != nil {
		return t.busyError(host, j, c.owner(), c.Req.Place)
	}
	return nil
}

// newID allocates a job id: from the store when there is one (ids never
// repeat, across restarts and processes), else from memory.
func (t *jobTable) newID(j *Job) (string, error) {
	if t.store == nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.next++
		return strconv.Itoa(t.next), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	id, err := t.store.NewJob(ctx, state.JobRecord{Owner: j.Owner, Command: j.Command, Place: j.Place, PlaceName: j.PlaceName, Started: j.Started})
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(id, 10), nil
}

// start registers a job on hosts (refused when one of them already has a
// running job, or when the table is shutting down) and runs fn in the
// background. A panic in fn is recovered: the job fails with an internal
// error and the process goes on. settle runs when fn has returned (or
// panicked), while the job still holds its hosts; finish runs after.
func (t *jobTable) start(spec *Spec, owner string, req Request, command string, hosts []string, fn func(ctx context.Context, j *Job) error,
	settle func(j *Job, panicked bool), finish func(j *Job, err error)) (*Job, error) {
	if t.base.Err() != nil {
		return nil, Userf("kojibot is shutting down and starts no new jobs")
	}
	ctx, cancel := context.WithCancel(t.base)
	j := &Job{spec: spec, Owner: owner, Place: req.Place, PlaceName: req.PlaceName, Command: command, Hosts: hosts,
		Started: t.now(), cancel: cancel, done: make(chan struct{}), Token: newJobToken()}
	t.mu.Lock()
	for _, h := range hosts {
		if other, busy := t.byHost[h]; busy {
			t.mu.Unlock()
			cancel()
			return nil, t.busyError(h, other, owner, req.Place)
		}
	}
	// Hold the hosts while the id is allocated outside the lock.
	for _, h := range hosts {
		t.byHost[h] = j
	}
	t.mu.Unlock()
	id, err := t.newID(j)
	t.mu.Lock()
	if err != nil {
		for _, h := range hosts {
			if t.byHost[h] == j {
				delete(t.byHost, h)
			}
		}
		t.mu.Unlock()
		cancel()
		return nil, fmt.Errorf("recording the job: %w", err)
	}
	j.ID = id
	t.jobs[j.ID] = j
	t.byToken[j.Token] = j
	t.wg.Add(1)
	t.mu.Unlock()

	go func() {
		defer t.wg.Done()
		defer cancel()
		panicked, err := t.call(ctx, j, fn)
		if settle != nil {
			settle(j, panicked)
		}
		result := string(JobDone)
		switch {
		case panicked:
			result = failedResult(errJobPanic.Error())
		case err != nil && errors.Is(ctx.Err(), context.Canceled):
			result = string(JobCancelled)
		case err != nil:
			result = failedResult(publicError(err)) // shown in channels and on /jobs; the log has it whole
		}
		j.mu.Lock()
		j.result, j.finished = result, t.now()
		j.mu.Unlock()
		if t.store != nil {
			sctx, scancel := context.WithTimeout(context.Background(), stateTimeout)
			if id, perr := strconv.ParseInt(j.ID, 10, 64); perr == nil {
				if serr := t.store.FinishJob(sctx, id, result, j.finished); serr != nil {
					t.log.Error("recording a job's end (retrying)", "job", j.ID, "error", serr)
					finished := j.finished
					retryStore(t.log, "the end of job "+j.ID, func(ctx context.Context) error {
						return t.store.FinishJob(ctx, id, result, finished)
					})
				}
			}
			scancel()
		}
		t.mu.Lock()
		for _, h := range hosts {
			if t.byHost[h] == j {
				delete(t.byHost, h)
			}
		}
		t.finished = append(t.finished, j.ID)
		if len(t.finished) > maxFinishedJobs {
			if old := t.jobs[t.finished[0]]; old != nil {
				delete(t.byToken, old.Token)
			}
			delete(t.jobs, t.finished[0])
			t.finished = t.finished[1:]
		}
		t.mu.Unlock()
		finish(j, err)
		close(j.done)
	}()
	return j, nil
}

// call runs fn, turning a panic into errJobPanic, logged with its stack.
func (t *jobTable) call(ctx context.Context, j *Job, fn func(ctx context.Context, j *Job) error) (panicked bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			t.log.Error("job panicked", "job", j.ID, "command", j.Command, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			panicked, err = true, errJobPanic
		}
	}()
	return false, fn(ctx, j)
}

// get returns a job by id.
func (t *jobTable) get(id string) (*Job, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	j, ok := t.jobs[strings.TrimPrefix(id, "#")]
	return j, ok
}

// getByToken returns a job by its token.
func (t *jobTable) getByToken(token string) (*Job, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	j, ok := t.byToken[token]
	return j, ok
}

// running lists the running jobs, oldest first.
func (t *jobTable) running() []*Job {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*Job
	for _, j := range t.jobs {
		if j.State() == JobRunning {
			out = append(out, j)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Started.Before(out[b].Started) })
	return out
}

// Job returns the job with the given id, running or recently finished.
func (d *Dispatcher) Job(id string) (*Job, bool) { return d.jobs.get(id) }

// JobByToken returns the job, running or recently finished, whose Token is
// token. Job ids are guessable; tokens are not, so links use them.
func (d *Dispatcher) JobByToken(token string) (*Job, bool) { return d.jobs.getByToken(token) }

// Wait blocks until every job has finished (kojibot exec, shutdown).
func (d *Dispatcher) Wait() { d.jobs.wg.Wait() }

// Shutdown refuses new jobs, cancels the running ones and waits up to
// timeout for them to restore what they stopped. It returns the jobs still
// running when the time ran out: their journal records stay open, and the
// next kojibot to start restores them.
func (d *Dispatcher) Shutdown(timeout time.Duration) []*Job {
	d.stop()
	done := make(chan struct{})
	go func() { d.Wait(); d.polling.Wait(); close(done) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-timer.C:
		return d.jobs.running()
	}
}

// StartJob runs fn as a background job on hosts, posting its start and its
// outcome to the caller. Progress sent through c while it runs is kept in
// the job's log. A host with a running job refuses a second one.
func (c *Call) StartJob(hosts []string, fn func(ctx context.Context, c *Call) error) error {
	d := c.d
	owner := c.owner()
	j, err := d.jobs.start(c.Spec, owner, c.Req, c.Normalized(), hosts, func(ctx context.Context, j *Job) error {
		jc := c.forJob(ctx, j)
		return fn(ctx, jc)
	}, func(j *Job, panicked bool) {
		d.settleJournal(c.forJob(context.Background(), j), j, panicked)
	}, func(j *Job, err error) {
		took := d.deps.Now().Sub(j.Started).Round(time.Second)
		switch {
		case j.State() == JobCancelled:
			SendResult(c.out, reply.Text(Info, fmt.Sprintf("job %s cancelled after %s", j.ID, took)))
		case err != nil:
			SendResult(c.out, reply.Text(Error, fmt.Sprintf("job %s (%s) failed after %s: %s", j.ID, j.Command, took, d.userMessage(c, err))))
		default:
			SendResult(c.out, reply.Text(Info, fmt.Sprintf("job %s (%s) done in %s", j.ID, j.Command, took)))
		}
		d.deps.Audit.Info("job result", append(placeAttrs(c.Req), "job", j.ID, "command", j.Command, "fas_user", owner,
			"account", c.Req.Account, "result", j.Result(), "duration", took)...)
		d.announce(c, j, err)
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.jobStarted = true
	c.mu.Unlock()
	jc := c.forJob(context.Background(), j)
	j.mu.Lock()
	j.tell = jc.Say
	j.mu.Unlock()
	started := reply.Text(Info, fmt.Sprintf("job %s started: %s (cancel %s to stop it)", j.ID, j.Command, j.ID))
	if link := d.JobLink(j); link != "" {
		started.Links = []reply.Link{{Label: "progress", URL: link}}
	}
	c.Say(started)
	return nil
}

// forJob returns a copy of c whose replies also go to job j's log.
func (c *Call) forJob(ctx context.Context, j *Job) *Call {
	return &Call{Parsed: c.Parsed, Req: c.Req, FASUser: c.FASUser, Log: c.Log.With("job", j.ID),
		out: jobOutput{out: c.out, job: j}, d: c.d, ctx: ctx, Job: j}
}

// jobOutput copies a job's replies into its log, and hands them to the
// underlying output as the job's progress when it is a ProgressOutput.
type jobOutput struct {
	out Output
	job *Job
}

// Send implements Output.
func (o jobOutput) Send(m reply.Message) {
	for _, line := range m.TextLines() {
		o.job.append(line)
	}
	if p, ok := o.out.(ProgressOutput); ok {
		p.SendProgress(o.job.ID, m)
		return
	}
	o.out.Send(m)
}

// jobColumns are the columns of the jobs tables, the last named last.
// The last column, "process", names the kojibot process that runs (or
// ran) the job: host:pid, as the state store records it.
func jobColumns(last string) []reply.Column {
	return []reply.Column{{Name: "job", Right: true}, {Name: "command"}, {Name: "by"}, {Name: "where"}, {Name: last}, {Name: "process"}}
}

// whereName is a job's place for the jobs table: a Matrix room by its
// alias or name (name) with its id, "#admin:fedora.im (!abc:fedora.im)".
func whereName(p, name string) string {
	switch {
	case p == "":
		return "private message"
	case name != "":
		return name + " (" + strings.TrimPrefix(p, MatrixPlacePrefix) + ")"
	}
	return p
}

// owner is who a job started by c belongs to: the caller's FAS user, else
// their account.
func (c *Call) owner() string {
	if c.FASUser != "" {
		return c.FASUser
	}
	return c.Req.Account
}

// inPrivate reports whether c's replies are seen by its caller alone: a
// private message, or the terminal of `kojibot exec`.
func (c *Call) inPrivate() bool {
	return c.Req.Place == "" || transport(c.Req) == "exec"
}

// mayList reports whether c may see, in a listing, a job of owner started
// in place; see listable.
func (c *Call) mayList(owner, place string) bool {
	return listable(owner, place, c.owner(), c.inPrivate())
}

// listable reports whether a job of owner started in place is shown to
// viewer, who asks in private or not. A job started in a private message
// is private: it is shown (its command, its owner) only to its owner, in
// private.
func listable(owner, place, viewer string, private bool) bool {
	if place != "" {
		return true
	}
	return private && owner != "" && owner == viewer
}

// recentJobs is how many jobs `jobs --all` lists.
const recentJobs = 20

// privateSlack is how many times recentJobs `jobs --all` reads from the
// store, so that the private jobs it leaves out seldom shorten the list.
const privateSlack = 5

func (d *Dispatcher) runJobs(ctx context.Context, c *Call) error {
	if c.Bool("all") {
		return d.runJobsAll(ctx, c)
	}
	var jobs []*Job
	for _, j := range d.jobs.running() {
		if c.mayList(j.Owner, j.Place) {
			jobs = append(jobs, j)
		}
	}
	if len(jobs) == 0 {
		c.Reply("no jobs running")
		return nil
	}
	table := &reply.Table{Columns: jobColumns("running for")}
	for _, j := range jobs {
		table.Rows = append(table.Rows, []string{j.ID, j.Command, j.Owner, whereName(j.Place, j.PlaceName), ago(d.deps.Now().Sub(j.Started)), state.Holder()})
	}
	c.Say(reply.Message{Lines: []string{Count(len(jobs), "job", "jobs") + " running"}, Table: table})
	return nil
}

// runJobsAll lists the recent jobs, running and finished, newest first:
// from the store (every process's, earlier ones included) when there is
// one, else this process's.
func (d *Dispatcher) runJobsAll(ctx context.Context, c *Call) error {
	var recs []state.JobRecord
	if d.deps.State != nil {
		// Fetch more than are shown: private jobs of others are left out.
		all, err := d.deps.State.RecentJobs(ctx, recentJobs*privateSlack)
		if err != nil {
			return fmt.Errorf("listing the jobs: %w", err)
		}
		for _, r := range all {
			if len(recs) < recentJobs && c.mayList(r.Owner, r.Place) {
				recs = append(recs, r)
			}
		}
	} else {
		d.jobs.mu.Lock()
		for _, j := range d.jobs.jobs {
			if !c.mayList(j.Owner, j.Place) {
				continue
			}
			id, _ := strconv.ParseInt(j.ID, 10, 64)
			j.mu.Lock()
			recs = append(recs, state.JobRecord{ID: id, Owner: j.Owner, Command: j.Command, Place: j.Place, PlaceName: j.PlaceName,
				Result: j.result, Started: j.Started, Finished: j.finished, Holder: state.Holder()})
			j.mu.Unlock()
		}
		d.jobs.mu.Unlock()
		sort.Slice(recs, func(a, b int) bool { return recs[a].ID > recs[b].ID })
		if len(recs) > recentJobs {
			recs = recs[:recentJobs]
		}
	}
	if len(recs) == 0 {
		c.Reply("no jobs yet")
		return nil
	}
	now := d.deps.Now()
	table := &reply.Table{Columns: jobColumns("result")}
	for _, r := range recs {
		id := strconv.FormatInt(r.ID, 10)
		res := r.Result
		if res == "" {
			// Running here, or in another live process (exec beside run).
			res = "running for " + ago(now.Sub(r.Started))
			if j, ok := d.jobs.get(id); ok && j.State() != JobRunning {
				res = j.Result()
			}
		} else if !r.Finished.IsZero() {
			res += fmt.Sprintf(" after %s, %s ago", ago(r.Finished.Sub(r.Started)), ago(now.Sub(r.Finished)))
		}
		holder := r.Holder
		if holder == "" {
			holder = "pid " + strconv.Itoa(r.PID) // recorded before holders were
		}
		table.Rows = append(table.Rows, []string{id, r.Command, r.Owner, whereName(r.Place, r.PlaceName), res, holder})
	}
	c.Say(reply.Message{Lines: []string{fmt.Sprintf("the last %s, newest first", Count(len(recs), "job", "jobs"))}, Table: table})
	return nil
}

// jobName names job id for c: with its command, unless the job is private
// and c may not list it.
func (c *Call) jobName(id, command, owner, place string) string {
	if !c.mayList(owner, place) {
		return "job " + id
	}
	return fmt.Sprintf("job %s (%s)", id, command)
}

func (d *Dispatcher) runCancel(ctx context.Context, c *Call) error {
	j, ok := d.jobs.get(c.Arg("job"))
	if !ok {
		return d.cancelElsewhere(ctx, c)
	}
	if r := j.Result(); j.State() != JobRunning {
		return Userf("job %s is not running (%s)", j.ID, r)
	}
	// Whoever may run the job's command may cancel it.
	dec := d.authorize(ctx, c.Req, j.spec)
	if !dec.Allowed {
		c.Send(Denied, "cancelling job "+j.ID+": "+dec.Reason)
		return nil
	}
	j.cancel()
	c.Reply("cancelling %s; it restores what it stopped before it ends", c.jobName(j.ID, j.Command, j.Owner, j.Place))
	return nil
}

// processName names the kind of kojibot process that runs a job started
// in place.
func processName(place string) string {
	if place == "exec" {
		return "kojibot exec"
	}
	return "kojibot run"
}

// cancelElsewhere cancels a job that this process does not run: when the
// state store has it running in another live process (an `exec` beside
// `run`, or the reverse), it asks that process, through the store, to
// cancel it as if its own caller had asked.
func (d *Dispatcher) cancelElsewhere(ctx context.Context, c *Call) error {
	arg := strings.TrimPrefix(c.Arg("job"), "#")
	id, err := strconv.ParseInt(arg, 10, 64)
	if d.deps.State == nil || err != nil || id <= 0 {
		return Userf("no job %s", quoteShort(c.Arg("job")))
	}
	st, ok, err := d.deps.State.JobStatus(ctx, id)
	switch {
	case err != nil:
		return fmt.Errorf("reading job %d: %w", id, err)
	case !ok:
		return Userf("no job %d", id)
	case st.Result != "":
		return Userf("job %d is not running (%s)", id, st.Result)
	case st.Here:
		return Userf("job %d is not running", id)
	case !st.Alive:
		return Userf("job %d was run by a kojibot process that has stopped; the next kojibot to start restores what it stopped", id)
	}
	words, err := Tokenize(st.Command)
	if err != nil {
		return fmt.Errorf("job %d: its command %q: %w", id, st.Command, err)
	}
	spec, _ := d.catalogue.Lookup(words)
	if spec == nil {
		return Userf("job %d runs %s, which this kojibot does not know; cancel it where it runs", id, quoteShort(st.Command))
	}
	// Whoever may run the job's command may cancel it.
	dec := d.authorize(ctx, c.Req, spec)
	if !dec.Allowed {
		c.Send(Denied, fmt.Sprintf("cancelling job %d: %s", id, dec.Reason))
		return nil
	}
	if err := d.deps.State.RequestCancel(ctx, id, c.owner(), c.Req.Place); err != nil {
		return fmt.Errorf("asking to cancel job %d: %w", id, err)
	}
	c.Reply("%s runs in another kojibot process (%s, pid %d): asked it to cancel the job; it restores what it stopped before it ends",
		c.jobName(arg, st.Command, st.Owner, st.Place), processName(st.Place), st.PID)
	return nil
}

// cancelPoll is how often a process with running jobs looks in the state
// store for requests, from other processes, to cancel them.
var cancelPoll = time.Second

// pollCancels cancels, until ctx ends, the jobs that another process was
// asked to cancel (see cancelElsewhere), as if their own caller had
// asked, looking every so often. It reads the store only while jobs run.
func (d *Dispatcher) pollCancels(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if len(d.jobs.running()) == 0 {
			continue
		}
		qctx, cancel := context.WithTimeout(ctx, stateTimeout)
		reqs, err := d.deps.State.TakeCancelRequests(qctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				d.deps.Log.Error("reading cancel requests", "error", err)
			}
			continue
		}
		for _, r := range reqs {
			d.takeCancel(r)
		}
	}
}

// takeCancel cancels the job of r, which another process was asked for.
func (d *Dispatcher) takeCancel(r state.CancelRequest) {
	j, ok := d.jobs.get(strconv.FormatInt(r.Job, 10))
	if !ok || j.State() != JobRunning {
		return
	}
	d.deps.Audit.Info("job cancel requested from another process", "job", j.ID, "command", j.Command, "fas_user", r.By,
		"place", placeOf(r.Place), "owner", j.Owner)
	j.mu.Lock()
	tell := j.tell
	j.mu.Unlock()
	where := placeOf(r.Place)
	if r.Place == "" {
		where = "a private message"
	}
	if tell != nil {
		tell(reply.Text(Info, fmt.Sprintf("cancelling job %s (%s): %s asked for it (in %s, to another kojibot process); it restores what it stopped before it ends",
			j.ID, j.Command, r.By, where)))
	}
	j.cancel()
}

// placeOf is a request's place for the audit log.
func placeOf(p string) string { return place(Request{Place: p}) }
