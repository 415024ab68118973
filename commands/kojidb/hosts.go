package kojidb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// querier is what reads need of a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// hostSelect is the query for Host values in generation gen, to be followed
// by a WHERE clause (on h and, when versioned, hc) or ORDER BY.
func hostSelect(gen Generation) string {
	checkin := "(SELECT max(s.update_time)::timestamptz FROM sessions s WHERE s.user_id = h.user_id)"
	if gen == Versioned {
		checkin = "h.update_time"
	}
	if gen == Legacy {
		return `SELECT h.id, h.name, coalesce(h.arches, ''), h.capacity, h.task_load, h.ready, h.enabled,
			coalesce(h.description, ''), coalesce(h.comment, ''), ` + checkin + `, 0::bigint
			FROM host h `
	}
	return `SELECT h.id, h.name, coalesce(hc.arches, ''), hc.capacity, h.task_load, h.ready, hc.enabled,
		coalesce(hc.description, ''), coalesce(hc.comment, ''), ` + checkin + `, hc.create_event::bigint
		FROM host h JOIN host_config hc ON hc.host_id = h.id AND hc.active IS TRUE `
}

func scanHost(row pgx.Row) (Host, error) {
	var h Host
	var checkin *time.Time
	err := row.Scan(&h.ID, &h.Name, &h.Arches, &h.Capacity, &h.TaskLoad, &h.Ready, &h.Enabled,
		&h.Description, &h.Comment, &checkin, &h.ConfigEvent)
	if checkin != nil {
		h.LastCheckin = *checkin
	}
	return h, err
}

// Hosts returns every build host, sorted by name. In the versioned schemas
// arches, capacity, enabled, description and comment come from the active
// host_config row; LastCheckin is host.update_time (Koji 1.33+) or the newest
// sessions.update_time of the host's user (older schemas).
func (d *DB) Hosts(ctx context.Context) ([]Host, error) {
	var hosts []Host
	err := d.read(ctx, "list hosts", func(ctx context.Context, conn *pgxpool.Conn, gen Generation) error {
		hosts = nil
		rows, err := conn.Query(ctx, hostSelect(gen)+"ORDER BY h.name")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			h, err := scanHost(rows)
			if err != nil {
				return err
			}
			hosts = append(hosts, h)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return hosts, nil
}

// Host returns the host with exactly that name, or an error wrapping
// ErrNoHost.
func (d *DB) Host(ctx context.Context, name string) (Host, error) {
	var h Host
	err := d.read(ctx, "read host", func(ctx context.Context, conn *pgxpool.Conn, gen Generation) error {
		var err error
		h, err = readHost(ctx, conn, gen, name, "")
		return err
	})
	return h, err
}

// readHost reads host name, locking what a change will modify when lock is
// a FOR UPDATE clause.
func readHost(ctx context.Context, q querier, gen Generation, name, lock string) (Host, error) {
	h, err := scanHost(q.QueryRow(ctx, hostSelect(gen)+"WHERE h.name = $1 "+lock, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return Host{}, fmt.Errorf("%w %q", ErrNoHost, name)
	}
	return h, err
}

// lockHost reads host name and locks the row a change will replace: host in
// the legacy schema, the active host_config row otherwise. When a concurrent
// edit (the hub's or another bot's) revoked that row while this one waited
// for its lock, the read is repeated so that it sees the new active row;
// every repetition means another edit went through, so a few suffice.
func lockHost(ctx context.Context, tx pgx.Tx, gen Generation, name string) (Host, error) {
	lock := "FOR UPDATE OF hc"
	if gen == Legacy {
		return readHost(ctx, tx, gen, name, "FOR UPDATE OF h")
	}
	for range lockTries {
		h, err := readHost(ctx, tx, gen, name, lock)
		if !errors.Is(err, ErrNoHost) {
			return h, err
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM host WHERE name = $1)", name).Scan(&exists); err != nil {
			return Host{}, err
		}
		if !exists {
			return Host{}, fmt.Errorf("%w %q", ErrNoHost, name)
		}
	}
	return Host{}, fmt.Errorf("host %q has no active host_config row", name)
}

// lockTries bounds how often lockHost reads again after losing the race for
// the active host_config row to a concurrent edit.
const lockTries = 20

// change is what SetCapacity and SetEnabled change; nil fields stay.
type change struct {
	capacity *float64
	enabled  *bool
	comment  *string
}

// SetCapacity sets host's capacity (Koji's weight) and returns the host
// before and after. capacity must be finite and greater than 1, else
// ErrBadCapacity is returned before anything is sent to the database.
//
// In the versioned schemas it does what Koji's editHost does, in one
// transaction: it locks the active host_config row, takes one get_event(),
// revokes the row (active NULL, revoke_event, revoker_id) and inserts a copy
// with the new capacity (create_event, creator_id), the acting user being
// the Koji user given to Open. In the legacy schema it updates host in place.
//
// When the host already has that capacity nothing is written and after equals
// before, with a nil error: callers tell a no-op by before.Capacity ==
// after.Capacity (Koji's "No changes made").
func (d *DB) SetCapacity(ctx context.Context, host string, capacity float64) (before, after Host, err error) {
	if math.IsNaN(capacity) || math.IsInf(capacity, 0) || capacity <= 1 {
		return Host{}, Host{}, fmt.Errorf("kojidb: set capacity of %s to %v: %w", host, capacity, ErrBadCapacity)
	}
	err = d.write(ctx, "set capacity of "+host, func(ctx context.Context, tx pgx.Tx, gen Generation) error {
		var err error
		before, err = lockHost(ctx, tx, gen, host)
		if err != nil {
			return err
		}
		if before.Capacity == capacity {
			after = before
			return nil
		}
		after, err = d.apply(ctx, tx, gen, before, change{capacity: &capacity})
		return err
	})
	if err != nil {
		return Host{}, Host{}, err
	}
	return before, after, nil
}

// SetEnabled enables or disables host, recording comment as its comment
// when it is not empty (an empty comment keeps the one it has), and returns
// the host before and after. The versioned schemas get the same revoke and
// insert as SetCapacity; the legacy schema is updated in place.
//
// When the host is already in that state nothing is written (the comment is
// not changed either) and after equals before, with a nil error: callers
// tell a no-op by before.Enabled == after.Enabled.
func (d *DB) SetEnabled(ctx context.Context, host string, enabled bool, comment string) (before, after Host, err error) {
	verb := "disable "
	if enabled {
		verb = "enable "
	}
	err = d.write(ctx, verb+host, func(ctx context.Context, tx pgx.Tx, gen Generation) error {
		var err error
		before, err = lockHost(ctx, tx, gen, host)
		if err != nil {
			return err
		}
		if before.Enabled == enabled {
			after = before
			return nil
		}
		c := change{enabled: &enabled}
		if comment != "" {
			c.comment = &comment
		}
		after, err = d.apply(ctx, tx, gen, before, c)
		return err
	})
	if err != nil {
		return Host{}, Host{}, err
	}
	return before, after, nil
}

// apply writes c to the locked host h and returns it as it is now.
func (d *DB) apply(ctx context.Context, tx pgx.Tx, gen Generation, h Host, c change) (Host, error) {
	if gen == Legacy {
		tag, err := tx.Exec(ctx, `UPDATE host SET capacity = coalesce($2, capacity), enabled = coalesce($3, enabled),
			comment = coalesce($4, comment) WHERE id = $1`, h.ID, c.capacity, c.enabled, c.comment)
		if err != nil {
			return Host{}, err
		}
		if tag.RowsAffected() != 1 {
			return Host{}, fmt.Errorf("host %q: updated %d rows", h.Name, tag.RowsAffected())
		}
		after, err := readHost(ctx, tx, gen, h.Name, "")
		if err == nil {
			d.log.Info("koji host edited in place", "host", h.Name, "capacity", after.Capacity, "enabled", after.Enabled)
		}
		return after, err
	}

	var uid int64
	err := tx.QueryRow(ctx, "SELECT id FROM users WHERE name = $1", d.kojiUser).Scan(&uid)
	if errors.Is(err, pgx.ErrNoRows) {
		return Host{}, fmt.Errorf("%w: no users row named %q", ErrNoKojiUser, d.kojiUser)
	}
	if err != nil {
		return Host{}, err
	}
	var event int64
	if err := tx.QueryRow(ctx, "SELECT get_event()").Scan(&event); err != nil {
		return Host{}, err
	}
	tag, err := tx.Exec(ctx, `UPDATE host_config SET active = NULL, revoke_event = $2, revoker_id = $3
		WHERE host_id = $1 AND active IS TRUE`, h.ID, event, uid)
	if err != nil {
		return Host{}, err
	}
	if tag.RowsAffected() != 1 {
		return Host{}, fmt.Errorf("host %q: revoked %d host_config rows, want 1", h.Name, tag.RowsAffected())
	}
	// Copy the revoked row as it is (NULLs included), changing only c.
	tag, err = tx.Exec(ctx, `INSERT INTO host_config
			(host_id, arches, capacity, description, comment, enabled, create_event, creator_id)
		SELECT host_id, arches, coalesce($3, capacity), description, coalesce($4, comment), coalesce($5, enabled), $6, $7
		FROM host_config WHERE host_id = $1 AND create_event = $2`,
		h.ID, h.ConfigEvent, c.capacity, c.comment, c.enabled, event, uid)
	if err != nil {
		return Host{}, err
	}
	if tag.RowsAffected() != 1 {
		return Host{}, fmt.Errorf("host %q: inserted %d host_config rows, want 1", h.Name, tag.RowsAffected())
	}
	after, err := readHost(ctx, tx, gen, h.Name, "")
	if err == nil {
		d.log.Info("koji host_config revoked and replaced", "host", h.Name, "event", event, "koji_user", d.kojiUser,
			"capacity", after.Capacity, "enabled", after.Enabled)
	}
	return after, err
}

// ActiveBuildroots returns the ids of host's buildroots that Koji still
// uses (standard_buildroot.state 0 INIT, 1 WAITING or 2 BUILDING), in
// ascending order. An unknown host is an error wrapping ErrNoHost.
func (d *DB) ActiveBuildroots(ctx context.Context, host string) ([]int64, error) {
	var ids []int64
	err := d.read(ctx, "active buildroots of "+host, func(ctx context.Context, conn *pgxpool.Conn, _ Generation) error {
		ids = nil
		rows, err := conn.Query(ctx, `SELECT sb.buildroot_id::bigint FROM standard_buildroot sb
			JOIN host h ON h.id = sb.host_id
			WHERE h.name = $1 AND sb.state IN (0, 1, 2) ORDER BY 1`, host)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || len(ids) > 0 {
			return err
		}
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM host WHERE name = $1)", host).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("%w %q", ErrNoHost, host)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}
