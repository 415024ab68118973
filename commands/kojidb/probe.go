package kojidb

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ProbeNeeds says which uses of the database the configuration enables,
// beyond the reads every configuration makes (hosts, check-ins, buildroots).
type ProbeNeeds struct {
	// HostWrites: capacity, enable or disable may run (write host_config or
	// host, take events; koji.user must be allowed to edit hosts).
	HostWrites bool
	// SeeBackends: connections may run (see the hub role's queries).
	SeeBackends bool
	// KillBackends: connections kill may run (pg_terminate_backend).
	KillBackends bool
	// HubHosts: hosts are read and written through the Koji hub
	// (koji.hub.url), so no Koji table is needed: only the server's
	// activity, for connections. HostWrites is then ignored.
	HubHosts bool
}

// ProbeResult is one privilege the configuration needs, and whether the
// bot's role (or koji.user, for the last check) has it.
type ProbeResult struct {
	What  string // e.g. "SELECT on host_config"
	For   string // the commands that need it
	OK    bool
	Grant string // how to give it, when missing
}

// Probe checks, on the detected generation, each privilege the bot's
// database role needs for needs: SELECT on the tables it reads, INSERT and
// UPDATE on what it writes and the events sequence, membership in
// pg_read_all_stats (or pg_monitor) and pg_signal_backend; with
// HostWrites, also that koji.user may edit hosts (CheckKojiUser); with
// HubHosts, none of Koji's tables. It changes nothing. The error is for a failure to ask, not for what is
// missing.
func (d *DB) Probe(ctx context.Context, needs ProbeNeeds) (Generation, []ProbeResult, error) {
	var gen Generation
	var out []ProbeResult
	err := d.read(ctx, "probe privileges", func(ctx context.Context, conn *pgxpool.Conn, g Generation) error {
		gen, out = g, nil
		var role string
		if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&role); err != nil {
			return err
		}
		exists := func(table string) (bool, error) {
			var ok bool
			err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok)
			return ok, err
		}
		check := func(what, forWhat, grant, sql string, args ...any) error {
			var ok bool
			if err := conn.QueryRow(ctx, sql, args...).Scan(&ok); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			out = append(out, ProbeResult{What: what, For: forWhat, OK: ok, Grant: grant})
			return nil
		}
		ident := fmt.Sprintf("%q", role)
		table := func(priv, t, forWhat string) error {
			return check(priv+" on "+t, forWhat, fmt.Sprintf("GRANT %s ON %s TO %s", priv, t, ident),
				"SELECT has_table_privilege(current_user, $1, $2)", t, priv)
		}
		column := func(priv, t, col, forWhat string) error {
			return check(fmt.Sprintf("%s (%s) on %s", priv, col, t), forWhat,
				fmt.Sprintf("GRANT %s (%s) ON %s TO %s", priv, col, t, ident),
				"SELECT has_column_privilege(current_user, $1, $2, $3)", t, col, priv)
		}
		member := func(r, alt, forWhat string) error {
			what, grant := "membership in "+r, fmt.Sprintf("GRANT %s TO %s", r, ident)
			if alt != "" {
				what += " (or " + alt + ")"
			}
			// USAGE: the role's privileges are in effect (inherited), as
			// pg_stat_activity and pg_terminate_backend require.
			return check(what, forWhat, grant, "SELECT pg_has_role(current_user, $1, 'USAGE')", r)
		}

		reads := []string{"host", "users", "sessions", "permissions", "user_perms"}
		if gen.IsVersioned() {
			reads = append(reads, "host_config")
		}
		for _, t := range []string{"standard_buildroot", "buildroot"} {
			ok, err := exists(t)
			if err != nil {
				return err
			}
			if ok {
				reads = append(reads, t)
				break
			}
		}
		if needs.HubHosts {
			reads, needs.HostWrites = nil, false
		}
		for _, t := range reads {
			if err := table("SELECT", t, "hosts, host, cleanup, restart all, watch"); err != nil {
				return err
			}
		}
		if needs.HostWrites {
			const w = "capacity, enable, disable"
			privs := [][2]string{{"SELECT", "events"}, {"INSERT", "events"}}
			if d.features().groupPerms {
				// koji.user's permissions through its groups.
				privs = append(privs, [2]string{"SELECT", "user_groups"})
			}
			for _, p := range privs {
				if err := table(p[0], p[1], w); err != nil {
					return err
				}
			}
			if err := check("USAGE on sequence events_id_seq", w, "GRANT USAGE ON SEQUENCE events_id_seq TO "+ident,
				"SELECT has_sequence_privilege(current_user, 'events_id_seq', 'USAGE')"); err != nil {
				return err
			}
			if gen.IsVersioned() {
				if err := table("INSERT", "host_config", w); err != nil {
					return err
				}
				for _, col := range []string{"active", "revoke_event", "revoker_id"} {
					if err := column("UPDATE", "host_config", col, w); err != nil {
						return err
					}
				}
			} else {
				for _, col := range []string{"capacity", "enabled", "comment"} {
					if err := column("UPDATE", "host", col, w); err != nil {
						return err
					}
				}
			}
		}
		if needs.SeeBackends || needs.KillBackends {
			if err := member("pg_read_all_stats", "pg_monitor", "connections"); err != nil {
				return err
			}
		}
		if needs.KillBackends {
			if err := member("pg_signal_backend", "", "connections kill"); err != nil {
				return err
			}
		}
		if needs.HostWrites {
			// koji.user as the hub would see it (SELECT on users,
			// permissions, user_perms were checked above).
			_, err := checkKojiUser(ctx, conn, gen, d.features(), d.kojiUser)
			r := ProbeResult{What: fmt.Sprintf("koji.user %s may edit hosts", d.kojiUser), For: "capacity, enable, disable", OK: err == nil}
			if pe, ok := err.(*PermissionError); ok {
				r.Grant = pe.Reason + "; koji grant-permission " + map[bool]string{true: "admin", false: "host"}[gen == Legacy] + " " + d.kojiUser
				err = nil
			}
			if err != nil {
				// Without SELECT on users or user_perms the question
				// cannot be asked: that is already reported above.
				r.Grant = "cannot be checked: " + d.scrub(err.Error())
			}
			out = append(out, r)
		}
		return nil
	})
	return gen, out, err
}
