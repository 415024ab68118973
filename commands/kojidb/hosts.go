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

// checkinExpr is the SQL expression (on host h) for the host's last
// check-in as a timestamptz: host.update_time in Koji 1.33+, else the newest
// sessions.update_time of the host's user. Until Koji 1.21 that column is
// TIMESTAMP WITHOUT TIME ZONE in the hub's local time: the cast reads it in
// the session's TimeZone, which Open set to the hub's zone.
func checkinExpr(gen Generation) string {
	if gen == Versioned {
		return "h.update_time"
	}
	return "(SELECT max(s.update_time)::timestamptz FROM sessions s WHERE s.user_id = h.user_id)"
}

// hostSelect is the query for Host values in generation gen, to be followed
// by a WHERE clause (on h and, when versioned, hc) or ORDER BY. The check-in
// age is computed against the database's now().
func hostSelect(gen Generation) string {
	checkin := checkinExpr(gen)
	checkin += ", extract(epoch FROM now() - " + checkin + ")::float8"
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
	var age *float64
	err := row.Scan(&h.ID, &h.Name, &h.Arches, &h.Capacity, &h.TaskLoad, &h.Ready, &h.Enabled,
		&h.Description, &h.Comment, &checkin, &age, &h.ConfigEvent)
	if checkin != nil {
		h.LastCheckin = *checkin
	}
	if age != nil {
		h.CheckinAge = time.Duration(*age * float64(time.Second))
	}
	return h, err
}

// Hosts returns every build host, sorted by name. In the versioned schemas
// arches, capacity, enabled, description and comment come from the active
// host_config row; LastCheckin is host.update_time (Koji 1.33+) or the newest
// sessions.update_time of the host's user (older schemas).
func (d *DB) Hosts(ctx context.Context) ([]Host, error) {
	return d.queryHosts(ctx, "ORDER BY h.name")
}

// HostsNamed returns, in one query, the hosts that name query the way
// commands.ResolveName reads a host name: the name itself, or a name of
// which query is a leading run of whole labels (`ppc3`, `ppc3.fedora` for
// ppc3.fedora.redhat.com), compared without regard to case. It reads only
// those rows, where Hosts reads them all.
func (d *DB) HostsNamed(ctx context.Context, query string) ([]Host, error) {
	return d.queryHosts(ctx, "WHERE lower(h.name) = lower($1) OR left(lower(h.name), length($1) + 1) = lower($1) || '.' ORDER BY h.name", query)
}

// queryHosts reads the hosts that hostSelect followed by tail (a WHERE
// and ORDER BY clause, with args) selects.
func (d *DB) queryHosts(ctx context.Context, tail string, args ...any) ([]Host, error) {
	var hosts []Host
	err := d.read(ctx, "list hosts", func(ctx context.Context, conn *pgxpool.Conn, gen Generation) error {
		hosts = nil
		rows, err := conn.Query(ctx, hostSelect(gen)+tail, args...)
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
		uid, err := d.mayEditHosts(ctx, tx, gen)
		if err != nil {
			return err
		}
		before, err = lockHost(ctx, tx, gen, host)
		if err != nil {
			return err
		}
		if before.Capacity == capacity {
			after = before
			return nil
		}
		after, err = d.apply(ctx, tx, gen, uid, before, change{capacity: &capacity})
		return err
	})
	if err != nil {
		return Host{}, Host{}, err
	}
	return before, after, nil
}

// SetEnabled enables or disables host and, when comment is not empty, sets
// its comment (an empty comment keeps the one it has); it returns the host
// before and after. It writes what `koji enable-host`/`disable-host
// --comment` write, which are two hub calls: enableHost or disableHost, then
// editHost(comment=...). In the versioned schemas each is its own revoke
// and insert of host_config with its own get_event() (both in one
// transaction here), so `koji list-history` shows the same two entries; the
// legacy schema gets the two equivalent in-place updates of host.
//
// As Koji's set_host_enabled, enableHost and disableHost write their
// revision even when the host is already in that state (a revision that
// changes nothing, which `koji list-history` lists like the others); the
// comment is then edited only when it differs (editHost writes nothing
// otherwise). Callers tell what changed by comparing before and after.
func (d *DB) SetEnabled(ctx context.Context, host string, enabled bool, comment string) (before, after Host, err error) {
	verb := "disable "
	if enabled {
		verb = "enable "
	}
	err = d.write(ctx, verb+host, func(ctx context.Context, tx pgx.Tx, gen Generation) error {
		uid, err := d.mayEditHosts(ctx, tx, gen)
		if err != nil {
			return err
		}
		before, err = lockHost(ctx, tx, gen, host)
		if err != nil {
			return err
		}
		// enableHost / disableHost: only enabled changes, and a revision
		// is written even when it does not.
		if after, err = d.apply(ctx, tx, gen, uid, before, change{enabled: &enabled}); err != nil {
			return err
		}
		if comment != "" && after.Comment != comment {
			// editHost(comment=...): its own event.
			if after, err = d.apply(ctx, tx, gen, uid, after, change{comment: &comment}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Host{}, Host{}, err
	}
	return before, after, nil
}

// apply writes c to the locked host h as Koji user uid (koji.user, checked
// by mayEditHosts) and returns the host as it is now.
func (d *DB) apply(ctx context.Context, tx pgx.Tx, gen Generation, uid int64, h Host, c change) (Host, error) {
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
// uses (state 0 INIT, 1 WAITING or 2 BUILDING), in ascending order. The
// state and host are in standard_buildroot since Koji 1.11 and in buildroot
// itself before. An unknown host is an error wrapping ErrNoHost.
func (d *DB) ActiveBuildroots(ctx context.Context, host string) ([]int64, error) {
	var ids []int64
	err := d.read(ctx, "active buildroots of "+host, func(ctx context.Context, conn *pgxpool.Conn, _ Generation) error {
		ids = nil
		q := `SELECT sb.buildroot_id::bigint FROM standard_buildroot sb
			JOIN host h ON h.id = sb.host_id
			WHERE h.name = $1 AND sb.state IN (0, 1, 2) ORDER BY 1`
		if !d.features().standardBuildroot {
			q = `SELECT b.id::bigint FROM buildroot b
			JOIN host h ON h.id = b.host_id
			WHERE h.name = $1 AND b.state IN (0, 1, 2) ORDER BY 1`
		}
		rows, err := conn.Query(ctx, q, host)
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
