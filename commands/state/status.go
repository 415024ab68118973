package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"
)

// Roles of a `kojibot run` sharing a PostgreSQL store with others, as
// SetRole records them.
const (
	RoleLeader  = "leader"
	RoleStandby = "standby"
)

// SetRole records what this process is among the processes sharing the
// store (RoleLeader, RoleStandby), for Inspect; bookkeeping only, never
// fenced.
func (s *Store) SetRole(ctx context.Context, role string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE procs SET role = ? WHERE id = ?`, role, s.proc); err != nil {
		return fmt.Errorf("state: recording the role: %w", err)
	}
	return nil
}

// LeaderInfo is the leadership recorded in the store.
type LeaderInfo struct {
	// Term is the latest term; Holder (host:pid) and Since who began it,
	// and when.
	Term   int64
	Holder string
	Since  time.Time
	// Held says a process holds the leader's lock now; when it is false,
	// Holder is the last leader, which is gone.
	Held bool
}

// Process is a live process registered in the store.
type Process struct {
	Holder string
	PID    int
	// Role is RoleLeader, RoleStandby, or "" (an exec, or a run on its own).
	Role    string
	Started time.Time
}

// Status is what `kojibot status` shows of the store.
type Status struct {
	// Leader is nil when no process has ever led (or on SQLite).
	Leader    *LeaderInfo
	Processes []Process
	// Open are the open journal records, oldest first.
	Open []Entry
}

// Standbys are the live processes waiting to lead.
func (st Status) Standbys() []Process {
	var out []Process
	for _, p := range st.Processes {
		if p.Role == RoleStandby {
			out = append(out, p)
		}
	}
	return out
}

// Inspect reads the status of the store that dir or dsn names (dsn when
// it is set), without registering, migrating or writing anything.
func Inspect(ctx context.Context, dir, dsn string) (Status, error) {
	var s *Store
	if dsn != "" {
		if err := ParseDSN(dsn); err != nil {
			return Status{}, err
		}
		sqldb, err := sql.Open("pgx", dsn)
		if err != nil {
			return Status{}, errors.New("state: opening the PostgreSQL store failed")
		}
		s = &Store{db: &handle{DB: sqldb, pg: true}}
	} else {
		if dir == "" {
			return Status{}, errors.New("state: no directory (state.dir)")
		}
		if err := CheckOwned(dir, true); err != nil {
			return Status{}, err
		}
		if err := checkFiles(dir); err != nil {
			return Status{}, err
		}
		q := url.Values{}
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
		q.Set("mode", "ro")
		sqldb, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?"+q.Encode())
		if err != nil {
			return Status{}, fmt.Errorf("state: opening %s: %w", dir, err)
		}
		s = &Store{db: &handle{DB: sqldb}, dir: dir}
	}
	defer s.db.Close()
	current, known, err := Versions(ctx, s.db.DB, s.db.pg)
	if err != nil {
		return Status{}, err
	}
	switch {
	case current > known:
		return Status{}, fmt.Errorf("%w: %s has schema version %d, this kojibot knows up to %d", ErrTooNew, s.Where(), current, known)
	case current < known:
		return Status{}, fmt.Errorf("state: %s has schema version %d, older than this kojibot's %d: start `kojibot run`, which migrates it", s.Where(), current, known)
	}
	return s.status(ctx)
}

// Leadership reads the leadership recorded in the store: nil when no
// process ever led (always on SQLite).
func (s *Store) Leadership(ctx context.Context) (*LeaderInfo, error) {
	if !s.db.pg {
		return nil, nil
	}
	var li LeaderInfo
	var since int64
	err := s.db.QueryRowContext(ctx, `SELECT term, holder, since, EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
		AND granted AND classid::bigint = ? AND objid::bigint = ? AND objsubid = 2
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))
		FROM leader WHERE id = 1`, int64(lockClass), oidKey(leaderKey)).Scan(&li.Term, &li.Holder, &since, &li.Held)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("state: reading the leader: %w", err)
	}
	li.Since = time.Unix(0, since)
	return &li, nil
}

// Status reads, on the store's own connections, what Inspect reads: the
// leadership, the live processes and the open journal records.
func (s *Store) Status(ctx context.Context) (Status, error) { return s.status(ctx) }

// status reads the leadership, the live processes and the open journal.
func (s *Store) status(ctx context.Context) (Status, error) {
	var st Status
	var err error
	if st.Leader, err = s.Leadership(ctx); err != nil {
		return Status{}, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, pid, started, holder, role FROM procs ORDER BY id`)
	if err != nil {
		return Status{}, fmt.Errorf("state: reading the processes: %w", err)
	}
	type proc struct {
		Process
		id int64
	}
	var procs []proc
	for rows.Next() {
		var p proc
		var started int64
		if err := rows.Scan(&p.id, &p.PID, &started, &p.Holder, &p.Role); err != nil {
			rows.Close()
			return Status{}, fmt.Errorf("state: reading the processes: %w", err)
		}
		p.Started = time.Unix(0, started)
		procs = append(procs, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Status{}, fmt.Errorf("state: reading the processes: %w", err)
	}
	for _, p := range procs {
		if alive, _ := s.alive(p.id, p.PID, p.Started); alive {
			st.Processes = append(st.Processes, p.Process)
		}
	}
	rows, err = s.db.QueryContext(ctx, `SELECT `+entryColumns+` FROM journal WHERE closed IS NULL ORDER BY id`)
	if err != nil {
		return Status{}, fmt.Errorf("state: journal: %w", err)
	}
	if st.Open, err = scanEntries(rows); err != nil {
		return Status{}, fmt.Errorf("state: journal: %w", err)
	}
	return st, nil
}
