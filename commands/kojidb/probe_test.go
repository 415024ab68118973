package kojidb

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

var allNeeds = ProbeNeeds{HostWrites: true, SeeBackends: true, KillBackends: true}

func missing(results []ProbeResult) []string {
	var out []string
	for _, r := range results {
		if !r.OK {
			out = append(out, r.What)
		}
	}
	return out
}

// TestProbeFullGrants: with docs/koji-db-grants.sql applied (the harness
// applies it to every database), nothing is missing in any generation.
func TestProbeFullGrants(t *testing.T) {
	for _, g := range gens {
		t.Run(g.want.String(), func(t *testing.T) {
			_, db := newKoji(t, cluster, g.harness, "kojibot")
			gen, results, err := db.Probe(context.Background(), allNeeds)
			if err != nil || gen != g.want {
				t.Fatalf("Probe: %v, %v", gen, err)
			}
			if m := missing(results); len(m) > 0 {
				t.Errorf("missing with the documented grants: %v", m)
			}
			want := []string{"SELECT on host", "membership in pg_signal_backend", "koji.user kojibot may edit hosts"}
			if g.want.IsVersioned() {
				want = append(want, "INSERT on host_config", "UPDATE (revoker_id) on host_config")
			} else {
				want = append(want, "UPDATE (capacity) on host")
			}
			for _, w := range want {
				found := false
				for _, r := range results {
					found = found || r.What == w
				}
				if !found {
					t.Errorf("no check %q in %+v", w, results)
				}
			}
		})
	}
}

// TestProbeNamesWhatIsMissing: a role given the documented grants minus
// pg_signal_backend and the UPDATE of revoker_id, with a blocked koji.user,
// gets exactly those three named; what the configuration does not need is
// not asked.
func TestProbeNamesWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	for i, g := range gens {
		t.Run(g.want.String(), func(t *testing.T) {
			dsns, _ := newKoji(t, cluster, g.harness, "kojibot")
			role := fmt.Sprintf("kojibot_probe%d", i)
			dsn, err := dsns.GrantRole(ctx, cluster, role, "probe-secret")
			if err != nil {
				t.Fatal(err)
			}
			col, table := "revoker_id", "host_config"
			if !g.want.IsVersioned() {
				col, table = "comment", "host"
			}
			for _, s := range []string{
				"REVOKE pg_signal_backend FROM " + role,
				fmt.Sprintf("REVOKE UPDATE (%s) ON %s FROM %s", col, table, role),
				"UPDATE users SET status = 1 WHERE name = 'kojibot'",
			} {
				if _, err := dsns.Exec(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			db, err := Open(ctx, dsn, "kojibot", testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			_, results, err := db.Probe(ctx, allNeeds)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(missing(results), "; ")
			want := fmt.Sprintf("UPDATE (%s) on %s; membership in pg_signal_backend; koji.user kojibot may edit hosts", col, table)
			if got != want {
				t.Errorf("missing %q, want %q", got, want)
			}
			for _, r := range results {
				if !r.OK && r.Grant == "" {
					t.Errorf("%s missing without saying how to grant it", r.What)
				}
				if strings.Contains(r.Grant, "probe-secret") {
					t.Errorf("the password in %q", r.Grant)
				}
			}
			// Only reads configured: no write, kill or koji.user check.
			_, results, err = db.Probe(ctx, ProbeNeeds{SeeBackends: true})
			if err != nil {
				t.Fatal(err)
			}
			if m := missing(results); len(m) > 0 {
				t.Errorf("read-only configuration: missing %v", m)
			}
		})
	}
}

// TestProbeHubHosts: with the hosts through the hub, a role that may read
// no Koji table, only the server's activity, lacks nothing; the same role
// on the database path lacks the reads of Koji's tables.
func TestProbeHubHosts(t *testing.T) {
	ctx := context.Background()
	dsns, _ := newKoji(t, cluster, gens[len(gens)-1].harness, "kojibot")
	const role = "kojibot_conns"
	for _, q := range []string{
		"CREATE ROLE " + role + " LOGIN PASSWORD 'conns-secret'",
		"GRANT pg_read_all_stats, pg_signal_backend TO " + role,
	} {
		if _, err := dsns.Exec(ctx, q); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
	u, err := url.Parse(dsns.Kojibot)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, "conns-secret")
	db, err := Open(ctx, u.String(), "kojibot", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, results, err := db.Probe(ctx, ProbeNeeds{HostWrites: true, SeeBackends: true, KillBackends: true, HubHosts: true})
	if err != nil {
		t.Fatal(err)
	}
	if m := missing(results); len(m) > 0 {
		t.Errorf("through the hub: missing %v", m)
	}
	for _, r := range results {
		if strings.Contains(r.What, " on ") || strings.HasPrefix(r.What, "koji.user") {
			t.Errorf("through the hub, %q is checked", r.What)
		}
	}
	_, results, err = db.Probe(ctx, ProbeNeeds{SeeBackends: true})
	if err != nil {
		t.Fatal(err)
	}
	if m := strings.Join(missing(results), "; "); !strings.Contains(m, "SELECT on host") {
		t.Errorf("on the database path the role lacks %q, want SELECT on host among them", m)
	}
}
