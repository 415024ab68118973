package kojidb

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
)

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
