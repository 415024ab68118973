package kojidb

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
)

// snapshot is every row of the tables a host change could touch, as JSON
// text in a stable order, so that "unchanged" is checked row by row and
// column by column.
func snapshot(t *testing.T, dsns pgsql.DSNs) map[string][]string {
	t.Helper()
	conn := connect(t, dsns.Admin)
	out := map[string][]string{}
	for table, order := range map[string]string{
		"host": "id", "host_config": "create_event, host_id", "events": "id", "users": "id",
		"user_perms": "create_event, user_id, perm_id",
	} {
		var exists bool
		if err := conn.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			continue
		}
		rows, err := conn.Query(context.Background(),
			fmt.Sprintf("SELECT row_to_json(t)::text FROM %s t ORDER BY %s", table, order))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out[table] = append(out[table], s)
		}
		rows.Close()
	}
	return out
}

// revokePerm revokes koji.user's active permission perm as the hub's
// revokePermission does (a versioned revoke by kojiadmin).
func revokePerm(t *testing.T, dsns pgsql.DSNs, user, perm string) {
	t.Helper()
	tag, err := dsns.Exec(context.Background(), `UPDATE user_perms SET active = NULL, revoke_event = get_event(),
			revoker_id = (SELECT id FROM users WHERE name = 'kojiadmin')
		WHERE active IS TRUE AND user_id = (SELECT id FROM users WHERE name = $1)
			AND perm_id = (SELECT id FROM permissions WHERE name = $2)`, user, perm)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("revoke %s from %s: %v (%d rows)", perm, user, err, tag.RowsAffected())
	}
}

// grantPerm grants perm to user as the hub's grantPermission does, creating
// the permission first when the schema lacks it (a hub of 1.19 or later).
func grantPerm(t *testing.T, dsns pgsql.DSNs, user, perm string) {
	t.Helper()
	ctx := context.Background()
	if _, err := dsns.Exec(ctx, `INSERT INTO permissions (name) SELECT $1::varchar
		WHERE NOT EXISTS (SELECT 1 FROM permissions WHERE name = $1::varchar)`, perm); err != nil {
		t.Fatal(err)
	}
	if _, err := dsns.Exec(ctx, `INSERT INTO user_perms (user_id, perm_id, creator_id)
		SELECT u.id, p.id, (SELECT id FROM users WHERE name = 'kojiadmin') FROM users u, permissions p
		WHERE u.name = $1 AND p.name = $2`, user, perm); err != nil {
		t.Fatal(err)
	}
}

// TestKojiUserRefused: a koji.user the hub would refuse gets the error on
// every write, in every generation (the in-harness ones and every upstream
// fixture, koji-1.6 to the current schema), and the database is left as it
// was.
func TestKojiUserRefused(t *testing.T) {
	const want = "koji.user kojibot may not edit hosts (needs the host or admin permission)"
	cases := []struct {
		name   string
		reason string
		setup  func(t *testing.T, dsns pgsql.DSNs)
	}{
		{"blocked", "blocked", func(t *testing.T, dsns pgsql.DSNs) {
			if _, err := dsns.Exec(context.Background(), "UPDATE users SET status = 1 WHERE name = 'kojibot'"); err != nil {
				t.Fatal(err)
			}
		}},
		{"host account", "build host's account", func(t *testing.T, dsns pgsql.DSNs) {
			if _, err := dsns.Exec(context.Background(), "UPDATE users SET usertype = 1 WHERE name = 'kojibot'"); err != nil {
				t.Fatal(err)
			}
		}},
		{"no permission", "none of the permissions", func(t *testing.T, dsns pgsql.DSNs) {
			revokePerm(t, dsns, "kojibot", "admin") // a revoked row stays, inactive
			grantPerm(t, dsns, "kojibot", "build")
		}},
	}
	for _, g := range allGens {
		for _, tc := range cases {
			t.Run(g.harness.String()+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				dsns, db := newKoji(t, cluster, g.harness, "kojibot")
				tc.setup(t, dsns)
				before := snapshot(t, dsns)

				if _, err := db.CheckKojiUser(ctx); !errors.Is(err, ErrNotAllowed) {
					t.Errorf("CheckKojiUser: %v, want ErrNotAllowed", err)
				}
				writes := map[string]func() error{
					"SetCapacity": func() error { _, _, err := db.SetCapacity(ctx, ppc3, 3); return err },
					"disable":     func() error { _, _, err := db.SetEnabled(ctx, ppc3, false, "why"); return err },
					"enable": func() error {
						_, _, err := db.SetEnabled(ctx, "x86-02.phx2.fedoraproject.org", true, "")
						return err
					},
				}
				for name, write := range writes {
					err := write()
					var pe *PermissionError
					if !errors.As(err, &pe) || !errors.Is(err, ErrNotAllowed) || pe.Reply() != want ||
						!strings.Contains(pe.Reason, tc.reason) {
						t.Errorf("%s: %v, want %q because %s", name, err, want, tc.reason)
					}
				}
				if after := snapshot(t, dsns); !reflect.DeepEqual(before, after) {
					t.Errorf("refused writes changed the database:\nbefore %v\nafter  %v", before, after)
				}
			})
		}
	}
}

// TestKojiUserAllowed: admin may edit hosts on every hub; host (without
// admin) on Koji 1.19 and later, never on Koji < 1.16 (the legacy schemas:
// legacy, koji-1.6, koji-1.10, koji-1.15), whose hub asserts admin. It runs
// on every generation, the upstream fixtures included; on those without a
// 'host' permission row (before 1.19) grantPerm creates it, as the 1.18 to
// 1.19 schema upgrade does.
func TestKojiUserAllowed(t *testing.T) {
	for _, g := range allGens {
		for _, perm := range []string{"admin", "host"} {
			t.Run(g.harness.String()+"/"+perm, func(t *testing.T) {
				ctx := context.Background()
				dsns, db := newKoji(t, cluster, g.harness, "kojibot")
				if perm != "admin" {
					revokePerm(t, dsns, "kojibot", "admin")
					grantPerm(t, dsns, "kojibot", perm)
				}
				allowed := perm == "admin" || g.want != Legacy
				u, err := db.CheckKojiUser(ctx)
				if allowed && (err != nil || !reflect.DeepEqual(u.Perms, []string{perm})) {
					t.Fatalf("CheckKojiUser: %+v, %v; want allowed by %s", u, err, perm)
				}
				if !allowed {
					if !errors.Is(err, ErrNotAllowed) {
						t.Fatalf("CheckKojiUser: %v, want ErrNotAllowed (this hub asserts admin)", err)
					}
					before := snapshot(t, dsns)
					if _, _, err := db.SetCapacity(ctx, ppc3, 3); !errors.Is(err, ErrNotAllowed) {
						t.Errorf("SetCapacity: %v, want ErrNotAllowed", err)
					}
					if _, _, err := db.SetEnabled(ctx, ppc3, false, "why"); !errors.Is(err, ErrNotAllowed) {
						t.Errorf("disable: %v, want ErrNotAllowed", err)
					}
					if _, _, err := db.SetEnabled(ctx, "x86-02.phx2.fedoraproject.org", true, ""); !errors.Is(err, ErrNotAllowed) {
						t.Errorf("enable: %v, want ErrNotAllowed", err)
					}
					if !reflect.DeepEqual(before, snapshot(t, dsns)) {
						t.Errorf("refused writes changed the database")
					}
					return
				}
				if _, after, err := db.SetCapacity(ctx, ppc3, 3); err != nil || after.Capacity != 3 {
					t.Errorf("SetCapacity: %+v, %v", after, err)
				}
				if _, after, err := db.SetEnabled(ctx, ppc3, false, "why"); err != nil || after.Enabled || after.Comment != "why" {
					t.Errorf("disable: %+v, %v", after, err)
				}
			})
		}
	}
}

// hcRow is a whole host_config row.
type hcRow struct {
	HostID                 int64
	Arches                 *string
	Capacity               float64
	Description, Comment   *string
	Enabled                bool
	CreateEvent, CreatorID int64
	RevokeEvent, RevokerID *int64
	Active                 *bool
}

func allConfigRows(t *testing.T, dsns pgsql.DSNs, host string) []hcRow {
	t.Helper()
	conn := connect(t, dsns.Admin)
	rows, err := conn.Query(context.Background(), `SELECT hc.host_id, hc.arches, hc.capacity, hc.description, hc.comment,
			hc.enabled, hc.create_event, hc.creator_id, hc.revoke_event, hc.revoker_id, hc.active
		FROM host_config hc JOIN host h ON h.id = hc.host_id WHERE h.name = $1 ORDER BY hc.create_event`, host)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []hcRow
	for rows.Next() {
		var r hcRow
		if err := rows.Scan(&r.HostID, &r.Arches, &r.Capacity, &r.Description, &r.Comment, &r.Enabled,
			&r.CreateEvent, &r.CreatorID, &r.RevokeEvent, &r.RevokerID, &r.Active); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// TestDisableWithReasonAsKoji: `disable <host> <reason>` leaves what `koji
// disable-host --comment <reason>` leaves: disableHost's event (revoke and
// insert with enabled false), then editHost's (revoke and insert with the
// comment), every other column copied. Disabling the disabled host with a
// new reason is editHost alone; with the same reason, nothing.
func TestDisableWithReasonAsKoji(t *testing.T) {
	const host = "xenbuilder2.fedora.redhat.com"
	const why = "OOM, see ticket 42"
	for _, g := range gens {
		t.Run(g.want.String(), func(t *testing.T) {
			ctx := context.Background()
			dsns, db := newKoji(t, cluster, g.harness, "kojibot")
			if _, err := dsns.Exec(ctx, "UPDATE "+map[bool]string{true: "host_config", false: "host"}[g.want.IsVersioned()]+
				" SET description = 'xen guest on xen4' WHERE "+
				map[bool]string{true: "host_id", false: "id"}[g.want.IsVersioned()]+" = (SELECT id FROM host WHERE name = $1)", host); err != nil {
				t.Fatal(err)
			}
			events := scalar[int64](t, dsns, "SELECT coalesce(max(id), 0) FROM events")
			if _, _, err := db.SetEnabled(ctx, host, false, why); err != nil {
				t.Fatal(err)
			}

			if !g.want.IsVersioned() {
				var enabled bool
				var comment, description string
				conn := connect(t, dsns.Admin)
				if err := conn.QueryRow(ctx, "SELECT enabled, comment, description FROM host WHERE name = $1", host).
					Scan(&enabled, &comment, &description); err != nil {
					t.Fatal(err)
				}
				if enabled || comment != why || description != "xen guest on xen4" {
					t.Errorf("host after disable: enabled %v comment %q description %q", enabled, comment, description)
				}
				if n := scalar[int64](t, dsns, "SELECT coalesce(max(id), 0) FROM events"); n != events {
					t.Errorf("legacy disable took events %d..%d", events, n)
				}
				return
			}

			botID := scalar[int64](t, dsns, "SELECT id FROM users WHERE name = 'kojibot'")
			adminID := scalar[int64](t, dsns, "SELECT id FROM users WHERE name = 'kojiadmin'")
			hostID := scalar[int64](t, dsns, "SELECT id FROM host WHERE name = $1", host)
			newEvents := scalar[[]int64](t, dsns, "SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM events WHERE id > $1", events)
			if len(newEvents) != 2 {
				t.Fatalf("disable with a reason made events %v, want exactly two", newEvents)
			}
			e1, e2 := newEvents[0], newEvents[1]
			rows := allConfigRows(t, dsns, host)
			if len(rows) != 3 {
				t.Fatalf("%d host_config rows, want 3: %+v", len(rows), rows)
			}
			seedEvent := rows[0].CreateEvent
			arches, desc := ptr("i386 x86_64"), ptr("xen guest on xen4")
			want := []hcRow{
				{HostID: hostID, Arches: arches, Capacity: 2, Description: desc, Comment: nil, Enabled: true,
					CreateEvent: seedEvent, CreatorID: adminID, RevokeEvent: &e1, RevokerID: &botID, Active: nil},
				// disableHost
				{HostID: hostID, Arches: arches, Capacity: 2, Description: desc, Comment: nil, Enabled: false,
					CreateEvent: e1, CreatorID: botID, RevokeEvent: &e2, RevokerID: &botID, Active: nil},
				// editHost(comment=...)
				{HostID: hostID, Arches: arches, Capacity: 2, Description: desc, Comment: ptr(why), Enabled: false,
					CreateEvent: e2, CreatorID: botID, RevokeEvent: nil, RevokerID: nil, Active: ptr(true)},
			}
			if !reflect.DeepEqual(rows, want) {
				t.Errorf("host_config rows:\n got %s\nwant %s", dump(rows), dump(want))
			}

			// Already disabled, same reason: disableHost's revision, which
			// changes nothing; no editHost.
			if b, a, err := db.SetEnabled(ctx, host, false, why); err != nil || b.Enabled || a.Enabled || b.Comment != a.Comment {
				t.Errorf("same reason again: %+v -> %+v, %v", b, a, err)
			}
			if n := len(allConfigRows(t, dsns, host)); n != 4 {
				t.Errorf("same reason again: %d rows, want 4", n)
			}
		})
	}
}

// TestDisableDisabledUpdatesComment: the seeded, disabled x86-02 gets a new
// reason as `koji disable-host --comment` gives it: disableHost's revision,
// which changes nothing, then editHost's, which changes only the comment.
func TestDisableDisabledUpdatesComment(t *testing.T) {
	const host = "x86-02.phx2.fedoraproject.org"
	for _, g := range gens {
		t.Run(g.want.String(), func(t *testing.T) {
			ctx := context.Background()
			dsns, db := newKoji(t, cluster, g.harness, "kojibot")
			events := scalar[int64](t, dsns, "SELECT coalesce(max(id), 0) FROM events")
			before, after, err := db.SetEnabled(ctx, host, false, "decommissioned")
			if err != nil {
				t.Fatal(err)
			}
			if before.Enabled || after.Enabled || before.Comment != "retired with phx2" || after.Comment != "decommissioned" {
				t.Errorf("%+v -> %+v", before, after)
			}
			if h, err := db.Host(ctx, host); err != nil || h.Comment != "decommissioned" || h.Enabled {
				t.Errorf("Host: %+v, %v", h, err)
			}
			n := scalar[int64](t, dsns, "SELECT count(*) FROM events WHERE id > $1", events)
			if !g.want.IsVersioned() {
				if n != 0 {
					t.Errorf("legacy: %d events", n)
				}
				return
			}
			rows := allConfigRows(t, dsns, host)
			if n != 2 || len(rows) != 3 {
				t.Fatalf("%d events, %d rows; want two events (disableHost's, which changes nothing, then editHost's) and three rows", n, len(rows))
			}
			// disableHost: a copy of the seeded row.
			seeded, same := rows[0], rows[1]
			seeded.CreateEvent, seeded.CreatorID, seeded.RevokeEvent, seeded.RevokerID, seeded.Active =
				same.CreateEvent, same.CreatorID, same.RevokeEvent, same.RevokerID, same.Active
			if !reflect.DeepEqual(seeded, same) {
				t.Errorf("disableHost's row is not a copy of the seeded one: %s vs %s", dump([]hcRow{rows[0]}), dump([]hcRow{rows[1]}))
			}
			old, cur := rows[1], rows[2]
			old.Comment, old.CreateEvent, old.CreatorID, old.RevokeEvent, old.RevokerID, old.Active =
				ptr("decommissioned"), cur.CreateEvent, cur.CreatorID, nil, nil, ptr(true)
			if !reflect.DeepEqual(old, cur) {
				t.Errorf("the new row is not the old one with the comment: %s vs %s", dump([]hcRow{rows[0]}), dump([]hcRow{cur}))
			}
		})
	}
}

func dump(rows []hcRow) string {
	var b strings.Builder
	for _, r := range rows {
		f := func(p *string) string {
			if p == nil {
				return "NULL"
			}
			return *p
		}
		i := func(p *int64) string {
			if p == nil {
				return "NULL"
			}
			return fmt.Sprint(*p)
		}
		fmt.Fprintf(&b, "\n  {host %d arches %s cap %v desc %s comment %s enabled %v create %d/%d revoke %s/%s active %v}",
			r.HostID, f(r.Arches), r.Capacity, f(r.Description), f(r.Comment), r.Enabled, r.CreateEvent, r.CreatorID,
			i(r.RevokeEvent), i(r.RevokerID), r.Active != nil)
	}
	return b.String()
}

// joinGroup makes user an active member of the group group (a users row of
// usertype 2, created when missing) granted perm, as `koji add-group`,
// `koji add-group-member` and `koji grant-permission perm group` leave it.
func joinGroup(t *testing.T, dsns pgsql.DSNs, user, group, perm string) {
	t.Helper()
	ctx := context.Background()
	if _, err := dsns.Exec(ctx, `INSERT INTO users (name, status, usertype) SELECT $1::varchar, 0, 2
		WHERE NOT EXISTS (SELECT 1 FROM users WHERE name = $1::varchar)`, group); err != nil {
		t.Fatal(err)
	}
	grantPerm(t, dsns, group, perm)
	tag, err := dsns.Exec(ctx, `INSERT INTO user_groups (user_id, group_id, creator_id)
		SELECT u.id, g.id, a.id FROM users u, users g, users a
		WHERE u.name = $1 AND g.name = $2 AND a.name = 'kojiadmin'`, user, group)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("add %s to %s: %v", user, group, err)
	}
}

// TestKojiUserGroupPermissions: on the current upstream schema (Koji 1.34
// and later) a koji.user whose host or admin permission comes only from a
// group it belongs to may edit hosts, as the hub's get_user_perms counts
// it; a revoked membership or a revoked group permission does not count.
// On Koji 1.32, and on the current schema without its 1.34 table (a Koji
// 1.33 database), whose hubs do not count groups, the same user is refused.
func TestKojiUserGroupPermissions(t *testing.T) {
	const group = "build-admins"
	cases := []struct {
		name    string
		gen     pgsql.Generation
		koji133 bool // drop scheduler_task_runs: a Koji 1.33 schema
		perm    string
		revoke  string // "", "membership" or "permission"
		allowed bool
	}{
		{"current/host", pgsql.KojiCurrent, false, "host", "", true},
		{"current/admin", pgsql.KojiCurrent, false, "admin", "", true},
		{"current/other permission", pgsql.KojiCurrent, false, "build", "", false},
		{"current/membership revoked", pgsql.KojiCurrent, false, "host", "membership", false},
		{"current/group permission revoked", pgsql.KojiCurrent, false, "host", "permission", false},
		{"koji-1.33/host", pgsql.KojiCurrent, true, "host", "", false},
		{"koji-1.32/admin", pgsql.Koji132, false, "admin", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dsns, db := newKoji(t, cluster, tc.gen, "kojibot")
			if tc.koji133 {
				if _, err := dsns.Exec(ctx, "DROP TABLE scheduler_task_runs"); err != nil {
					t.Fatal(err)
				}
			}
			revokePerm(t, dsns, "kojibot", "admin")
			joinGroup(t, dsns, "kojibot", group, tc.perm)
			switch tc.revoke {
			case "membership":
				if _, err := dsns.Exec(ctx, `UPDATE user_groups SET active = NULL, revoke_event = get_event(),
					revoker_id = (SELECT id FROM users WHERE name = 'kojiadmin') WHERE active IS TRUE`); err != nil {
					t.Fatal(err)
				}
			case "permission":
				revokePerm(t, dsns, group, tc.perm)
			}

			u, err := db.CheckKojiUser(ctx)
			if !tc.allowed {
				var pe *PermissionError
				if !errors.As(err, &pe) || !errors.Is(err, ErrNotAllowed) {
					t.Fatalf("CheckKojiUser: %+v, %v; want ErrNotAllowed", u, err)
				}
				wantWhy := "directly or through a group"
				if tc.koji133 || tc.gen == pgsql.Koji132 {
					wantWhy = "does not count group permissions"
				}
				if !strings.Contains(pe.Reason, wantWhy) {
					t.Errorf("reason %q, want it to say %q", pe.Reason, wantWhy)
				}
				before := snapshot(t, dsns)
				if _, _, err := db.SetCapacity(ctx, ppc3, 3); !errors.Is(err, ErrNotAllowed) {
					t.Errorf("SetCapacity: %v, want ErrNotAllowed", err)
				}
				if !reflect.DeepEqual(before, snapshot(t, dsns)) {
					t.Errorf("a refused write changed the database")
				}
				return
			}
			want := []string{tc.perm + " (group " + group + ")"}
			if err != nil || len(u.Perms) != 0 || !reflect.DeepEqual(u.GroupPerms, want) {
				t.Fatalf("CheckKojiUser: %+v, %v; want allowed through %v", u, err, want)
			}
			if _, after, err := db.SetCapacity(ctx, ppc3, 3); err != nil || after.Capacity != 3 {
				t.Errorf("SetCapacity: %+v, %v", after, err)
			}
			if _, after, err := db.SetEnabled(ctx, ppc3, false, "why"); err != nil || after.Enabled {
				t.Errorf("disable: %+v, %v", after, err)
			}
			// The documented grants let the bot's role read the groups.
			_, results, err := db.Probe(ctx, allNeeds)
			if err != nil {
				t.Fatal(err)
			}
			if m := missing(results); len(m) > 0 {
				t.Errorf("probe: missing with the documented grants: %v", m)
			}
			found := false
			for _, r := range results {
				found = found || r.What == "SELECT on user_groups"
			}
			if !found {
				t.Errorf("probe does not check SELECT on user_groups: %+v", results)
			}
		})
	}
}
