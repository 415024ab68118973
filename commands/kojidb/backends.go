package kojidb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// QueryMax is how many characters of a backend's query Backends keeps.
const QueryMax = 200

// ApplicationName is the application_name the bot's pool connects with
// unless the DSN names another. Backends with the pool's application_name
// are the bot's own: they are never listed nor terminated.
const ApplicationName = "kojibot"

// Backend is one PostgreSQL server process serving a client, from
// pg_stat_activity.
type Backend struct {
	PID  int
	User string
	// State is "active", "idle", "idle in transaction", ...
	State string
	// Query is the backend's current or last query, cut to QueryMax
	// characters.
	Query string
	// QueryStart is when that query started, or when the backend started if
	// it never ran one.
	QueryStart time.Time
	// BackendStart is when the backend (the client's connection) started.
	// With PID it names one backend: a PID is reused by a later backend,
	// never with the same start.
	BackendStart time.Time
	// ClientAddr is the client's IP address; "" for a unix socket.
	ClientAddr string
}

// backendFilter selects, in pg_stat_activity, the client backends of role
// $1 in the current database whose query (or, never having run one, whose
// connection) started more than $2 microseconds ago, never one of the
// bot's own: not this session's backend, not a backend of its pool ($3,
// their pids) and none with its application_name ($4, when not empty).
const backendFilter = `backend_type = 'client backend'
	AND usename = $1
	AND datname = current_database()
	AND pid <> pg_backend_pid()
	AND pid <> ALL($3::int[])
	AND ($4::text = '' OR coalesce(application_name, '') <> $4::text)
	AND coalesce(query_start, backend_start) < clock_timestamp() - $2::bigint * interval '1 microsecond'`

// ownBackend records (add) or forgets a backend pid of the bot's pool.
func (d *DB) ownBackend(pid uint32, add bool) {
	d.ownMu.Lock()
	defer d.ownMu.Unlock()
	if add {
		d.own[pid] = true
	} else {
		delete(d.own, pid)
	}
}

// ownPIDs returns the pids of the pool's backends.
func (d *DB) ownPIDs() []int32 {
	d.ownMu.Lock()
	defer d.ownMu.Unlock()
	out := make([]int32, 0, len(d.own))
	for pid := range d.own {
		out = append(out, int32(pid))
	}
	return out
}

// Backends lists role's backends in the Koji database whose query started
// longer than olderThan ago (the hub's idle connections show their last
// query), oldest first. The bot's own backends are never listed.
func (d *DB) Backends(ctx context.Context, role string, olderThan time.Duration) ([]Backend, error) {
	var out []Backend
	err := d.read(ctx, "list backends of "+role, func(ctx context.Context, conn *pgxpool.Conn, _ Generation) error {
		out = nil
		if err := checkRole(ctx, conn, role); err != nil {
			return err
		}
		rows, err := conn.Query(ctx, `SELECT pid, usename::text, coalesce(state, ''), left(coalesce(query, ''), $5),
				coalesce(query_start, backend_start), backend_start, coalesce(host(client_addr), '')
			FROM pg_stat_activity WHERE `+backendFilter+`
			ORDER BY 5, 1`, role, micros(olderThan), d.ownPIDs(), d.appName, QueryMax)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b Backend
			var pid int32
			if err := rows.Scan(&pid, &b.User, &b.State, &b.Query, &b.QueryStart, &b.BackendStart, &b.ClientAddr); err != nil {
				return err
			}
			b.PID = int(pid)
			out = append(out, b)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// TerminateBackends terminates (pg_terminate_backend) exactly the backends
// shown, as Backends listed them for role and olderThan. Each is checked
// again just before it is signalled, in a statement of its own (so with
// fresh activity data): the same pid and backend_start, still role's,
// still older than olderThan, and not the bot's own. One that is gone, was
// replaced by another backend under the same pid, or has started a new
// query since is left alone and returned in skipped. It never touches
// another role's backends nor the bot's own, and does not wait for the
// terminated ones to exit.
func (d *DB) TerminateBackends(ctx context.Context, role string, olderThan time.Duration, shown []Backend) (terminated, skipped []Backend, err error) {
	err = d.read(ctx, "terminate backends of "+role, func(ctx context.Context, conn *pgxpool.Conn, _ Generation) error {
		terminated, skipped = nil, nil
		if err := checkRole(ctx, conn, role); err != nil {
			return err
		}
		for _, b := range shown {
			if err := ctx.Err(); err != nil {
				return err
			}
			var signalled bool
			err := conn.QueryRow(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE pid = $5 AND backend_start = $6 AND `+backendFilter,
				role, micros(olderThan), d.ownPIDs(), d.appName, int32(b.PID), b.BackendStart).Scan(&signalled)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				skipped = append(skipped, b)
			case err != nil:
				return err
			case signalled:
				terminated = append(terminated, b)
			default:
				skipped = append(skipped, b)
			}
		}
		d.log.Info("terminated koji database backends", "role", role, "older_than", olderThan.String(),
			"shown", len(shown), "terminated", len(terminated), "skipped", len(skipped))
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return terminated, skipped, nil
}

// ConnectionCount returns how many client connections role has on the whole
// PostgreSQL server (every role's when role is ""), and max_connections.
func (d *DB) ConnectionCount(ctx context.Context, role string) (count, max int, err error) {
	err = d.read(ctx, "count connections", func(ctx context.Context, conn *pgxpool.Conn, _ Generation) error {
		return conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE $1::text = '' OR usename::text = $1::text),
				current_setting('max_connections')::int
			FROM pg_stat_activity WHERE backend_type = 'client backend'`, role).Scan(&count, &max)
	})
	if err != nil {
		return 0, 0, err
	}
	return count, max, nil
}

// checkRole refuses an empty role and a bot role that cannot see role's
// backends (pg_stat_activity then hides their start times, and the age
// filter would silently select nothing).
func checkRole(ctx context.Context, q querier, role string) error {
	if role == "" {
		return errors.New("no database role given")
	}
	var hidden int
	err := q.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE usename = $1 AND datname = current_database() AND backend_start IS NULL AND pid <> pg_backend_pid()`,
		role).Scan(&hidden)
	if err != nil {
		return err
	}
	if hidden > 0 {
		return fmt.Errorf("%w: %d backends of role %s hidden", ErrNoStats, hidden, role)
	}
	return nil
}

func micros(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return d.Microseconds()
}
