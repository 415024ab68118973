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
	// ClientAddr is the client's IP address; "" for a unix socket.
	ClientAddr string
}

// backendFilter selects, in pg_stat_activity, the client backends of role
// $1 in the current database whose query (or, never having run one, whose
// connection) started more than $2 microseconds ago, never this session's
// own backend.
const backendFilter = `backend_type = 'client backend'
	AND usename = $1
	AND datname = current_database()
	AND pid <> pg_backend_pid()
	AND coalesce(query_start, backend_start) < clock_timestamp() - $2::bigint * interval '1 microsecond'`

// Backends lists role's backends in the Koji database whose query started
// longer than olderThan ago (the hub's idle connections show their last
// query), oldest first. The bot's own backend is never listed.
func (d *DB) Backends(ctx context.Context, role string, olderThan time.Duration) ([]Backend, error) {
	var out []Backend
	err := d.read(ctx, "list backends of "+role, func(ctx context.Context, conn *pgxpool.Conn, _ Generation) error {
		out = nil
		if err := checkRole(ctx, conn, role); err != nil {
			return err
		}
		rows, err := conn.Query(ctx, `SELECT pid, usename::text, coalesce(state, ''), left(coalesce(query, ''), $3),
				coalesce(query_start, backend_start), coalesce(host(client_addr), '')
			FROM pg_stat_activity WHERE `+backendFilter+`
			ORDER BY 5, 1`, role, micros(olderThan), QueryMax)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b Backend
			var pid int32
			if err := rows.Scan(&pid, &b.User, &b.State, &b.Query, &b.QueryStart, &b.ClientAddr); err != nil {
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

// TerminateBackends terminates (pg_terminate_backend) the backends
// Backends(ctx, role, olderThan) would list, selected and terminated by one
// statement, and reports how many it found and how many it signalled. It
// never touches another role's backends nor the bot's own. It does not wait
// for them to exit.
func (d *DB) TerminateBackends(ctx context.Context, role string, olderThan time.Duration) (found, terminated int, err error) {
	err = d.write(ctx, "terminate backends of "+role, func(ctx context.Context, tx pgx.Tx, _ Generation) error {
		if err := checkRole(ctx, tx, role); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE signalled)
			FROM (SELECT pg_terminate_backend(pid) AS signalled FROM pg_stat_activity WHERE `+backendFilter+`) t`,
			role, micros(olderThan)).Scan(&found, &terminated); err != nil {
			return err
		}
		d.log.Info("terminated koji database backends", "role", role, "older_than", olderThan.String(),
			"found", found, "terminated", terminated)
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return found, terminated, nil
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
