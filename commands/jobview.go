package commands

import "time"

// NewStandaloneJob returns a running job that belongs to no Dispatcher:
// its steps and outcome are given with Step and Finish. It is for what
// shows jobs (the HTTP pages) to be tested with a job that changes while it
// is watched; a Dispatcher's jobs are made by Call.StartJob.
func NewStandaloneJob(id, token, owner, place, command string, hosts []string, started time.Time) *Job {
	return &Job{ID: id, Token: token, Owner: owner, Place: place, Command: command,
		Hosts: hosts, Started: started, done: make(chan struct{}), standalone: true}
}

// Step appends line to a standalone job's log; it does nothing to a
// Dispatcher's job.
func (j *Job) Step(line string) {
	if j.standalone {
		j.append(line)
	}
}

// Finish ends a standalone job with result ("done", "cancelled" or
// "failed: …"); later calls, and calls on a Dispatcher's job, do nothing.
func (j *Job) Finish(result string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.standalone || j.result != "" {
		return
	}
	j.result, j.finished = result, time.Now()
	close(j.done)
}

// RunningJobs returns the jobs that are running, for the status page.
func (d *Dispatcher) RunningJobs() []*Job { return d.jobs.running() }
