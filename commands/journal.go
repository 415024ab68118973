package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/commands/state"
)

// StateStore is what the commands need of the bot's own state store
// (commands/state): the journal of what jobs take down, and job records.
type StateStore interface {
	Record(ctx context.Context, e state.Entry) (int64, error)
	Done(ctx context.Context, id int64) error
	Claim(ctx context.Context) ([]state.Entry, []state.Unverified, error)
	NewJob(ctx context.Context, j state.JobRecord) (int64, error)
	FinishJob(ctx context.Context, id int64, result string, finished time.Time) error
	RecentJobs(ctx context.Context, limit int) ([]state.JobRecord, error)
	// JobStatus, RequestCancel and TakeCancelRequests carry `cancel` to
	// the process that runs the job.
	JobStatus(ctx context.Context, id int64) (state.JobStatus, bool, error)
	RequestCancel(ctx context.Context, id int64, by, place string) error
	TakeCancelRequests(ctx context.Context) ([]state.CancelRequest, error)
	// AddConfirmation, Confirmation and TakeConfirmation keep the
	// confirmations waiting for "confirm <token>", so that any process
	// of the store can take one, once.
	AddConfirmation(ctx context.Context, c state.Confirmation, now time.Time, max int) error
	Confirmation(ctx context.Context, token string) (state.Confirmation, bool, error)
	TakeConfirmation(ctx context.Context, token string) (state.Confirmation, bool, error)
}

// stateTimeout bounds one write to the state store. The store waits up to
// its busy timeout for another process's write; this is above it.
const stateTimeout = 15 * time.Second

// journalEntry is an open journal record held in memory for its job, so
// that the job (or its panic handler) can close it by name.
type journalEntry struct {
	id               int64 // in the store; 0 without one
	host, kind, name string
}

// journal is the in-memory side of the journal: the open entries of each
// running job. It works without a store (unit tests); with one, every
// entry is written (and synced) there first.
type journal struct {
	mu   sync.Mutex
	open map[string][]journalEntry // by job id
}

// jobKey is the journal's key of c's job ("" outside a job).
func jobKey(c *Call) (id, owner string) {
	if c.Job != nil {
		return c.Job.ID, c.Job.Owner
	}
	owner = c.FASUser
	if owner == "" {
		owner = c.Req.Account
	}
	return "", owner
}

// journalOpen records, before it happens, that c's job takes down name
// (a service or a mount point) on host. When the record cannot be written
// the action must not go ahead: its error says so.
func (d *Dispatcher) journalOpen(c *Call, host, kind, name string) error {
	job, owner := jobKey(c)
	e := journalEntry{host: host, kind: kind, name: name}
	if d.deps.State != nil {
		ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
		defer cancel()
		id, err := d.deps.State.Record(ctx, state.Entry{Host: host, Kind: kind, Name: name, Job: job, Owner: owner, Opened: d.deps.Now()})
		if err != nil {
			return fmt.Errorf("journal: not taking down %s %s: %w", kind, name, err)
		}
		e.id = id
	}
	d.journal.mu.Lock()
	var settled []journalEntry
	if kind == state.KindMount {
		// Mounts are unmounted one after another: when the next one starts,
		// the one before has been dealt with (unmounted, or its failure
		// kept for the report). At most one mount record is open per job.
		keep := d.journal.open[job][:0]
		for _, o := range d.journal.open[job] {
			if o.kind == state.KindMount && o.host == host {
				settled = append(settled, o)
			} else {
				keep = append(keep, o)
			}
		}
		d.journal.open[job] = keep
	}
	d.journal.open[job] = append(d.journal.open[job], e)
	d.journal.mu.Unlock()
	d.closeEntries(settled)
	return nil
}

// journalDone marks c's job's open records of name on host done: the
// service runs again, or the mount has been dealt with. A failure to write
// it is logged and the write retried (retryStore): the worst it does is a
// needless start at the next launch.
func (d *Dispatcher) journalDone(c *Call, host, kind, name string) {
	job, _ := jobKey(c)
	d.journal.mu.Lock()
	var done []journalEntry
	keep := d.journal.open[job][:0]
	for _, e := range d.journal.open[job] {
		if e.host == host && e.kind == kind && e.name == name {
			done = append(done, e)
		} else {
			keep = append(keep, e)
		}
	}
	if len(keep) == 0 {
		delete(d.journal.open, job)
	} else {
		d.journal.open[job] = keep
	}
	d.journal.mu.Unlock()
	d.closeEntries(done)
}

func (d *Dispatcher) closeEntries(entries []journalEntry) {
	if d.deps.State == nil {
		return
	}
	for _, e := range entries {
		if e.id == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
		if err := d.deps.State.Done(ctx, e.id); err != nil {
			d.deps.Log.Error("journal: marking done (retrying)", "host", e.host, "kind", e.kind, "name", e.name, "error", err)
			id := e.id
			retryStore(d.deps.Log, fmt.Sprintf("journal record %d done (%s %s on %s)", id, e.kind, e.name, e.host),
				func(ctx context.Context) error { return d.deps.State.Done(ctx, id) })
		}
		cancel()
	}
}

// settleJournal is called with job j's own call when j has ended, while it
// still holds its hosts. Its mount records are closed (the entries were
// dealt with, or the job failed and said so). Every service the journal
// still lists as stopped by j (after a panic, or a restart cut short) is
// started again. A service that still does not start stays open in the
// store, for the next launch to retry.
func (d *Dispatcher) settleJournal(c *Call, j *Job, panicked bool) {
	d.journal.mu.Lock()
	entries := append([]journalEntry(nil), d.journal.open[j.ID]...)
	d.journal.mu.Unlock()
	services := map[string][]string{}
	var hosts []string
	for _, e := range entries {
		switch e.kind {
		case state.KindMount:
			d.journalDone(c, e.host, e.kind, e.name)
		case state.KindService:
			if _, ok := services[e.host]; !ok {
				hosts = append(hosts, e.host)
			}
			services[e.host] = append(services[e.host], e.name)
		}
	}
	if d.deps.Fleet != nil {
		for _, h := range hosts {
			c.Log.Warn("job ended with services stopped: starting them", "host", h, "services", services[h], "panicked", panicked)
			_ = d.startServices(d.deps.Fleet, c, h, dedupe(services[h]))
		}
	}
	d.journal.mu.Lock()
	var left []journalEntry
	for _, e := range d.journal.open[j.ID] {
		if e.kind == state.KindService {
			left = append(left, e)
		}
	}
	delete(d.journal.open, j.ID)
	d.journal.mu.Unlock()
	d.restoreLater(c, left)
}

// How the services a job could not start again at its end (the builder
// unreachable, rebooting) are retried while the process runs: every
// restoreRetryEvery, for up to restoreRetryFor.
var (
	restoreRetryEvery = 5 * time.Second
	restoreRetryFor   = 30 * time.Minute
)

// restoreLater keeps starting the services of left, records a job left
// open because they would not start, until each has started (its record
// is then closed and the job's place told) or restoreRetryFor has passed:
// a builder that was unreachable when the job ended gets its services
// back when it answers again, not at the bot's next launch.
func (d *Dispatcher) restoreLater(c *Call, left []journalEntry) {
	f := d.deps.Fleet
	if f == nil || len(left) == 0 {
		return
	}
	d.polling.Add(1)
	go func() {
		defer d.polling.Done()
		deadline := time.Now().Add(restoreRetryFor)
		for len(left) > 0 && time.Now().Before(deadline) {
			select {
			case <-d.base.Done():
				return
			case <-time.After(restoreRetryEvery):
			}
			var keep []journalEntry
			for _, e := range left {
				if err := d.startOne(d.base, f, e.host, e.name); err != nil {
					keep = append(keep, e)
					continue
				}
				d.closeEntries([]journalEntry{e})
				d.deps.Log.Warn("journal: service started again after its job ended", "host", e.host, "service", e.name, "job", jobIDOf(c))
				c.Reply("%s: started %s again (it would not start when job %s ended)", e.host, e.name, jobIDOf(c))
			}
			left = keep
		}
		for _, e := range left {
			d.deps.Log.Error("journal: service still not started; left for the next launch", "host", e.host, "service", e.name, "job", jobIDOf(c))
		}
	}()
}

// dedupe returns names without repeats, in their first order.
func dedupe(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// Recovery is what Recover found in the journal and did about it.
type Recovery struct {
	// Restored are the services started again.
	Restored []state.Entry
	// Failed are the services that could not be started; they stay open in
	// the journal for the next launch.
	Failed []RecoveryFailure
	// Mounts are the mount points a dead job had unmounted (or was
	// unmounting): the bot cannot mount them again, so they are reported.
	Mounts []state.Entry
	// Interrupted are the jobs of processes now gone that had not ended:
	// their callers got no result, so they are told.
	Interrupted []state.JobRecord
	// Refused are records of services that are not among their host's
	// configured services (hosts.<host>.services): never started, only
	// reported, and closed.
	Refused []state.Entry
	// Unverified says, one line each, which earlier processes could not
	// be checked through their lock file; their records are left alone
	// while their process id still runs.
	Unverified []string
}

// RecoveryFailure is a service Recover could not start.
type RecoveryFailure struct {
	Entry state.Entry
	Err   error
}

// Empty reports whether the journal had nothing open.
func (r Recovery) Empty() bool {
	return len(r.Restored) == 0 && len(r.Failed) == 0 && len(r.Mounts) == 0 && len(r.Refused) == 0 && len(r.Unverified) == 0 &&
		len(r.Interrupted) == 0
}

func entryText(e state.Entry) string {
	s := fmt.Sprintf("%s on %s", e.Name, e.Host)
	if e.Job != "" {
		s += fmt.Sprintf(" (job %s", e.Job)
		if e.Owner != "" {
			s += " by " + e.Owner
		}
		s += ")"
	}
	return s
}

// Lines says what Recover found and did, one line per kind of outcome;
// nothing when the journal was clean.
func (r Recovery) Lines() []string {
	if r.Empty() {
		return nil
	}
	var out []string
	if len(r.Interrupted) > 0 {
		var parts []string
		for _, j := range r.Interrupted {
			parts = append(parts, fmt.Sprintf("job %d (%s) by %s", j.ID, j.Command, j.Owner))
		}
		out = append(out, "recovery: interrupted, kojibot stopped before they ended (run them again if still needed): "+strings.Join(parts, ", "))
	}
	n := len(r.Restored) + len(r.Failed)
	if n > 0 {
		out = append(out, fmt.Sprintf("recovery: the journal listed %s left stopped by a job of an earlier kojibot that ended without restoring them", Count(n, "service", "services")))
	}
	if len(r.Restored) > 0 {
		var parts []string
		for _, e := range r.Restored {
			parts = append(parts, entryText(e))
		}
		out = append(out, "recovery: started again: "+strings.Join(parts, ", "))
	}
	if len(r.Failed) > 0 {
		var parts []string
		for _, f := range r.Failed {
			parts = append(parts, entryText(f.Entry)+": "+remoteMessage(f.Err))
		}
		out = append(out, "recovery: could not start (start them by hand; retried at the next start): "+strings.Join(parts, "; "))
	}
	if len(r.Mounts) > 0 {
		var parts []string
		for _, e := range r.Mounts {
			parts = append(parts, entryText(e))
		}
		out = append(out, "recovery: an interrupted clean-up was unmounting, check these mounts by hand: "+strings.Join(parts, ", "))
	}
	if len(r.Refused) > 0 {
		var parts []string
		for _, e := range r.Refused {
			parts = append(parts, entryText(e))
		}
		out = append(out, "recovery: not started, not among the host's configured services (hosts.<host>.services): "+strings.Join(parts, ", "))
	}
	for _, u := range r.Unverified {
		out = append(out, "recovery: "+u)
	}
	return out
}

// Recovery retry policy: tries per service, and the wait before each retry.
var (
	recoverTries = 3
	recoverWait  = 2 * time.Second
)

// Recover takes over the journal records that processes now gone left
// open (a crash, a SIGKILL, a shutdown that ran out of time) and starts
// every service they list as stopped, with retries, marking each done once
// it is active; only a host's configured services (hosts.<host>.services)
// are started, any other record is reported and closed. Mount records are
// reported and closed. Records of a live
// process (a `run` beside this `exec`) are left alone. Call it before
// serving anything. Without a store it does nothing.
func (d *Dispatcher) Recover(ctx context.Context) (Recovery, error) {
	var r Recovery
	if d.deps.State == nil {
		return r, nil
	}
	claimed := time.Now()
	orphans, unverified, err := d.deps.State.Claim(ctx)
	if err != nil {
		return r, fmt.Errorf("recovery: reading the journal: %w", err)
	}
	r.Interrupted = d.interruptedSince(ctx, claimed)
	for _, u := range unverified {
		r.Unverified = append(r.Unverified, u.String())
		d.deps.Log.Error("recovery: cannot tell whether an earlier kojibot process is gone", "pid", u.PID, "lock", u.Lock, "error", u.Err, "running", u.Running)
	}
	if len(orphans) == 0 {
		return r, nil
	}
	byHost := map[string][]state.Entry{}
	var hosts []string
	for _, e := range orphans {
		if e.Kind == state.KindMount {
			r.Mounts = append(r.Mounts, e)
			continue
		}
		// The journal is a file: whoever can write it must not be able to
		// make recovery start anything but a host's own services.
		if h, ok := d.deps.Config.Hosts[e.Host]; ok && !slices.Contains(h.Services, e.Name) {
			r.Refused = append(r.Refused, e)
			continue
		}
		if _, ok := byHost[e.Host]; !ok {
			hosts = append(hosts, e.Host)
		}
		byHost[e.Host] = append(byHost[e.Host], e)
	}
	sort.Strings(hosts)
	f := d.deps.Fleet
	var mu sync.Mutex
	restore := func(ctx context.Context, host string) error {
		started := map[string]error{}
		for _, e := range byHost[host] {
			err, seen := started[e.Name]
			if !seen {
				err = d.recoverService(ctx, f, host, e.Name)
				started[e.Name] = err
			}
			mu.Lock()
			if err != nil {
				r.Failed = append(r.Failed, RecoveryFailure{Entry: e, Err: err})
			} else {
				r.Restored = append(r.Restored, e)
			}
			mu.Unlock()
			if err == nil {
				d.recoveryDone(e)
			}
		}
		return nil
	}
	if f == nil {
		for _, h := range hosts {
			for _, e := range byHost[h] {
				r.Failed = append(r.Failed, RecoveryFailure{Entry: e, Err: errors.New("ssh is not set up")})
			}
		}
	} else {
		f.Each(ctx, hosts, restore)
	}
	for _, e := range append(slices.Clone(r.Mounts), r.Refused...) {
		d.recoveryDone(e)
	}
	sortEntries(r.Restored)
	sortEntries(r.Mounts)
	sortEntries(r.Refused)
	sort.Slice(r.Failed, func(a, b int) bool { return r.Failed[a].Entry.ID < r.Failed[b].Entry.ID })
	for _, e := range r.Restored {
		d.deps.Log.Warn("recovery: service started again", "host", e.Host, "service", e.Name, "job", e.Job, "owner", e.Owner, "stopped_at", e.Opened)
	}
	for _, fl := range r.Failed {
		d.deps.Log.Error("recovery: service could not be started", "host", fl.Entry.Host, "service", fl.Entry.Name, "job", fl.Entry.Job, "error", fl.Err)
	}
	for _, e := range r.Mounts {
		d.deps.Log.Warn("recovery: mount left by an interrupted job", "host", e.Host, "mount", e.Name, "job", e.Job, "owner", e.Owner)
	}
	for _, e := range r.Refused {
		d.deps.Log.Error("recovery: journal record of a service not configured for its host: not started", "host", e.Host, "service", e.Name, "job", e.Job, "owner", e.Owner)
	}
	return r, nil
}

// recoveryDone closes journal record e, which recovery dealt with, and
// writes it again later if the store cannot take it now (retryStore).
func (d *Dispatcher) recoveryDone(e state.Entry) {
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	if err := d.deps.State.Done(ctx, e.ID); err != nil {
		d.deps.Log.Error("recovery: marking done (retrying)", "host", e.Host, "kind", e.Kind, "name", e.Name, "error", err)
		retryStore(d.deps.Log, fmt.Sprintf("journal record %d done (%s %s on %s)", e.ID, e.Kind, e.Name, e.Host),
			func(ctx context.Context) error { return d.deps.State.Done(ctx, e.ID) })
	}
}

// interruptedSince are the jobs that Claim, called at from, found
// unfinished by a process now gone (it marks them "interrupted").
func (d *Dispatcher) interruptedSince(ctx context.Context, from time.Time) []state.JobRecord {
	jobs, err := d.deps.State.RecentJobs(ctx, 100)
	if err != nil {
		d.deps.Log.Error("recovery: reading the jobs", "error", err)
		return nil
	}
	var out []state.JobRecord
	for _, j := range jobs {
		if strings.HasPrefix(j.Result, "interrupted") && !j.Finished.Before(from) {
			out = append(out, j)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	for _, j := range out {
		d.deps.Log.Warn("recovery: job interrupted by the end of its process", "job", j.ID, "command", j.Command, "owner", j.Owner, "place", j.Place)
	}
	return out
}

func sortEntries(es []state.Entry) {
	sort.Slice(es, func(a, b int) bool { return es[a].ID < es[b].ID })
}

// recoverService starts service on host and checks it is active, trying
// recoverTries times with a growing wait.
func (d *Dispatcher) recoverService(ctx context.Context, f Fleet, host, service string) error {
	if _, ok := d.deps.Config.Hosts[host]; !ok {
		return fmt.Errorf("%s is no longer a configured host", host)
	}
	var err error
	wait := recoverWait
	for try := 1; try <= recoverTries; try++ {
		if try > 1 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("starting %s: %w (after %v)", service, ctx.Err(), err)
			case <-time.After(wait):
			}
			wait *= 2
		}
		if err = d.startOne(ctx, f, host, service); err == nil {
			return nil
		}
		d.deps.Log.Warn("recovery: start failed", "host", host, "service", service, "try", try, "error", err)
	}
	return err
}

// startOne starts one service and checks that it is active.
func (d *Dispatcher) startOne(ctx context.Context, f Fleet, host, service string) error {
	ctx, cancel := context.WithTimeout(ctx, d.deps.Config.SSH.CommandTimeout+d.deps.Config.SSH.ConnectTimeout)
	defer cancel()
	return serviceStep(ctx, f, host, "start", service)
}

// jobIDOf is c's job's id, "" outside a job.
func jobIDOf(c *Call) string {
	id, _ := jobKey(c)
	return id
}
