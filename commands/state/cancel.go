package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// JobStatus is a job's record with what the store knows of the process
// running it.
type JobStatus struct {
	JobRecord
	// Here is set when this handle runs (or ran) the job.
	Here bool
	// Alive is set when the process that runs the job is still alive
	// (always for a job of this handle).
	Alive bool
}

// CancelRequest asks the process running Job to cancel it.
type CancelRequest struct {
	Job int64
	// By is who asked (a FAS user or an account); Place is where they
	// asked ("exec" for `kojibot exec`, "" for a private message).
	By, Place string
	Requested time.Time
}

// JobStatus returns job id's record and whether its process is alive; ok
// is false when the store has no such job.
func (s *Store) JobStatus(ctx context.Context, id int64) (st JobStatus, ok bool, err error) {
	var started int64
	var finished sql.NullInt64
	var proc int64
	err = s.db.QueryRowContext(ctx, `SELECT id, owner, command, place, result, started, finished, pid, proc, holder FROM jobs WHERE id = ?`, id).
		Scan(&st.ID, &st.Owner, &st.Command, &st.Place, &st.Result, &started, &finished, &st.PID, &proc, &st.Holder)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return JobStatus{}, false, nil
	case err != nil:
		return JobStatus{}, false, fmt.Errorf("state: reading job %d: %w", id, err)
	}
	st.Started, st.Finished = time.Unix(0, started), fromNanos(finished)
	st.Here = proc == s.proc
	var procStarted int64
	switch err := s.db.QueryRowContext(ctx, `SELECT started FROM procs WHERE id = ?`, proc).Scan(&procStarted); {
	case errors.Is(err, sql.ErrNoRows):
		st.Alive = st.Here // its process handle was swept: gone
	case err != nil:
		return JobStatus{}, false, fmt.Errorf("state: reading the process of job %d: %w", id, err)
	default:
		st.Alive, _ = s.alive(proc, st.PID, time.Unix(0, procStarted))
	}
	return st, true, nil
}

// RequestCancel asks the process that runs job id to cancel it, on
// behalf of by, who asked in place. A second request for the same job is
// not an error; the first one stands.
func (s *Store) RequestCancel(ctx context.Context, id int64, by, place string) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO cancels (job, requester, place, requested) VALUES (?, ?, ?, ?)
		ON CONFLICT (job) DO NOTHING`, id, by, place, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("state: asking to cancel job %d: %w", id, err)
	}
	return nil
}

// TakeCancelRequests returns the cancel requests, not taken yet, for the
// running jobs of this handle, and marks them taken: each is returned
// once.
func (s *Store) TakeCancelRequests(ctx context.Context) ([]CancelRequest, error) {
	const pending = `SELECT c.job, c.requester, c.place, c.requested FROM cancels c JOIN jobs j ON j.id = c.job
		WHERE c.taken IS NULL AND j.proc = ? AND j.result = '' ORDER BY c.job`
	// Most polls find nothing: read before taking the write lock.
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM (`+pending+`) AS p`, s.proc).Scan(&n); err != nil {
		return nil, fmt.Errorf("state: reading cancel requests: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("state: taking cancel requests: %w", err)
	}
	defer tx.Rollback()
	if err := s.checkTerm(ctx, tx); err != nil {
		return nil, fmt.Errorf("state: taking cancel requests: %w", err)
	}
	rows, err := tx.QueryContext(ctx, pending, s.proc)
	if err != nil {
		return nil, fmt.Errorf("state: taking cancel requests: %w", err)
	}
	var out []CancelRequest
	for rows.Next() {
		var r CancelRequest
		var at int64
		if err := rows.Scan(&r.Job, &r.By, &r.Place, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("state: taking cancel requests: %w", err)
		}
		r.Requested = time.Unix(0, at)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: taking cancel requests: %w", err)
	}
	now := time.Now().UnixNano()
	for _, r := range out {
		if _, err := tx.ExecContext(ctx, `UPDATE cancels SET taken = ? WHERE job = ?`, now, r.Job); err != nil {
			return nil, fmt.Errorf("state: taking cancel requests: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("state: taking cancel requests: %w", err)
	}
	return out, nil
}
