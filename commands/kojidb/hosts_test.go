package kojidb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
	"github.com/fedora-infra/kojibot/tests/harness/realkoji"
)

const ppc3 = "ppc3.fedora.redhat.com"

func TestGenerationDetected(t *testing.T) {
	for _, g := range gens {
		t.Run(g.want.String(), func(t *testing.T) {
			_, db := newKoji(t, cluster, g.harness, "kojibot")
			got, err := db.Generation(context.Background())
			if err != nil || got != g.want {
				t.Fatalf("Generation = %v, %v; want %v", got, err, g.want)
			}
			if got.IsVersioned() != (g.want != Legacy) {
				t.Errorf("IsVersioned = %v for %v", got.IsVersioned(), got)
			}
		})
	}
}

func TestUnknownSchema(t *testing.T) {
	ctx := context.Background()
	dsns, _ := newKoji(t, cluster, pgsql.Versioned, "kojibot")
	// The same database without Koji's tables.
	if _, err := dsns.Exec(ctx, "DROP TABLE host, host_config, standard_buildroot CASCADE"); err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, dsns.Kojibot, "kojibot", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.Generation(ctx)
	if !errors.Is(err, ErrUnknownSchema) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Generation on a database without host: %v, want ErrUnknownSchema", err)
	}
	if _, err := db.Hosts(ctx); !errors.Is(err, ErrUnknownSchema) {
		t.Errorf("Hosts: %v, want ErrUnknownSchema", err)
	}
}

func TestHosts(t *testing.T) {
	seed := pgsql.DefaultSeed()
	for _, g := range gens {
		t.Run(g.want.String(), func(t *testing.T) {
			ctx := context.Background()
			dsns, db := newKoji(t, cluster, g.harness, "kojibot")
			hosts, err := db.Hosts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(hosts) != len(seed.Hosts) {
				t.Fatalf("%d hosts, want %d", len(hosts), len(seed.Hosts))
			}
			if !sort.SliceIsSorted(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name }) {
				t.Errorf("hosts not sorted by name")
			}
			now := time.Now()
			for _, s := range seed.Hosts {
				h := hostByName(t, hosts, s.Name)
				if h.Arches != s.Arches || h.Capacity != s.Capacity || h.TaskLoad != s.TaskLoad ||
					h.Enabled != s.Enabled || h.Ready != s.Ready || h.Comment != s.Comment || h.ID == 0 {
					t.Errorf("%s = %+v, seeded %+v", s.Name, h, s)
				}
				// The cluster's time zone is not UTC: a TIMESTAMP WITHOUT TIME
				// ZONE read as UTC would be hours off.
				want := now.Add(-s.CheckinAge)
				if d := h.LastCheckin.Sub(want); d < -time.Minute || d > time.Minute {
					t.Errorf("%s LastCheckin %v, want about %v", s.Name, h.LastCheckin, want)
				}
				if (h.ConfigEvent != 0) != g.want.IsVersioned() {
					t.Errorf("%s ConfigEvent %d in %v", s.Name, h.ConfigEvent, g.want)
				}
			}

			// The last check-in comes from host.update_time in 1.33+ and from
			// sessions before: SetUpdateTime moves only the one that counts.
			stale := now.Add(-2 * time.Hour).Truncate(time.Microsecond)
			if err := dsns.SetUpdateTime(ctx, "ppc1.fedora.redhat.com", stale); err != nil {
				t.Fatal(err)
			}
			h, err := db.Host(ctx, "ppc1.fedora.redhat.com")
			if err != nil {
				t.Fatal(err)
			}
			if !h.LastCheckin.Equal(stale) {
				t.Errorf("after SetUpdateTime: LastCheckin %v, want %v", h.LastCheckin, stale)
			}
		})
	}
}

func TestHostExactNameOnly(t *testing.T) {
	ctx := context.Background()
	_, db := newKoji(t, cluster, pgsql.Versioned, "kojibot")
	h, err := db.Host(ctx, ppc3)
	if err != nil || h.Name != ppc3 || h.Capacity != 4 || h.TaskLoad != 1.5 {
		t.Fatalf("Host(%s) = %+v, %v", ppc3, h, err)
	}
	_, err = db.Host(ctx, "ppc3")
	if !errors.Is(err, ErrNoHost) || !strings.Contains(err.Error(), `"ppc3"`) {
		t.Errorf("Host(ppc3) = %v, want ErrNoHost naming it", err)
	}
}

// configRow is one host_config row.
type configRow struct {
	capacity               float64
	enabled                bool
	arches, comment        *string
	active                 *bool
	createEvent, creatorID int64
	revokeEvent, revokerID *int64
}

func configRows(t *testing.T, dsns pgsql.DSNs, host string) []configRow {
	t.Helper()
	conn := connect(t, dsns.Admin)
	rows, err := conn.Query(context.Background(), `SELECT hc.capacity, hc.enabled, hc.arches, hc.comment, hc.active,
			hc.create_event, hc.creator_id, hc.revoke_event, hc.revoker_id
		FROM host_config hc JOIN host h ON h.id = hc.host_id WHERE h.name = $1 ORDER BY hc.create_event`, host)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []configRow
	for rows.Next() {
		var r configRow
		if err := rows.Scan(&r.capacity, &r.enabled, &r.arches, &r.comment, &r.active,
			&r.createEvent, &r.creatorID, &r.revokeEvent, &r.revokerID); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSetCapacityVersioned(t *testing.T) {
	for _, gen := range []pgsql.Generation{pgsql.Versioned, pgsql.Versioned116} {
		t.Run(gen.String(), func(t *testing.T) {
			ctx := context.Background()
			dsns, db := newKoji(t, cluster, gen, "kojibot")
			botID := scalar[int64](t, dsns, "SELECT id FROM users WHERE name = 'kojibot'")
			adminID := scalar[int64](t, dsns, "SELECT id FROM users WHERE name = 'kojiadmin'")
			totalBefore := scalar[int64](t, dsns, "SELECT count(*) FROM host_config")

			before, after, err := db.SetCapacity(ctx, ppc3, 2)
			if err != nil {
				t.Fatal(err)
			}
			if before.Capacity != 4 || after.Capacity != 2 || after.TaskLoad != 1.5 || after.Name != ppc3 {
				t.Errorf("before %+v after %+v, want capacity 4 -> 2 with load 1.5", before, after)
			}
			rows := configRows(t, dsns, ppc3)
			if len(rows) != 2 {
				t.Fatalf("%d host_config rows for ppc3, want 2: %+v", len(rows), rows)
			}
			old, cur := rows[0], rows[1]
			if old.active != nil || old.capacity != 4 || old.revokeEvent == nil || old.revokerID == nil ||
				*old.revokerID != botID || old.creatorID != adminID {
				t.Errorf("old row %+v: want revoked by kojibot (%d), capacity 4", old, botID)
			}
			if cur.active == nil || !*cur.active || cur.capacity != 2 || cur.creatorID != botID ||
				cur.revokeEvent != nil || cur.revokerID != nil {
				t.Errorf("new row %+v: want active, capacity 2, created by kojibot (%d)", cur, botID)
			}
			if old.revokeEvent != nil && *old.revokeEvent != cur.createEvent {
				t.Errorf("revoke_event %d != create_event %d: more than one get_event()", *old.revokeEvent, cur.createEvent)
			}
			if cur.createEvent != scalar[int64](t, dsns, "SELECT max(id) FROM events") || after.ConfigEvent != cur.createEvent {
				t.Errorf("create_event %d, ConfigEvent %d: want the newest event", cur.createEvent, after.ConfigEvent)
			}
			if *cur.arches != *old.arches || cur.enabled != old.enabled || (cur.comment == nil) != (old.comment == nil) {
				t.Errorf("new row did not copy the old values: %+v vs %+v", cur, old)
			}
			if n := scalar[int64](t, dsns, "SELECT count(*) FROM host_config"); n != totalBefore+1 {
				t.Errorf("host_config has %d rows, want %d", n, totalBefore+1)
			}
			if n := scalar[int64](t, dsns, "SELECT count(*) FROM host_config WHERE active IS TRUE"); n != int64(len(pgsql.DefaultSeed().Hosts)) {
				t.Errorf("%d active rows, want one per host", n)
			}

			// The same value again: no new row, before == after.
			b2, a2, err := db.SetCapacity(ctx, ppc3, 2)
			if err != nil || b2 != a2 || a2.Capacity != 2 {
				t.Errorf("SetCapacity to the same value: %+v -> %+v, %v", b2, a2, err)
			}
			if n := len(configRows(t, dsns, ppc3)); n != 2 {
				t.Errorf("no-op SetCapacity left %d rows, want 2", n)
			}
			if h, err := db.Host(ctx, ppc3); err != nil || h.Capacity != 2 {
				t.Errorf("Host after SetCapacity: %+v, %v", h, err)
			}
		})
	}
}

func TestSetCapacityLegacy(t *testing.T) {
	ctx := context.Background()
	dsns, db := newKoji(t, cluster, pgsql.Legacy, "kojibot")
	events := scalar[int64](t, dsns, "SELECT count(*) FROM events")
	id := scalar[int64](t, dsns, "SELECT id FROM host WHERE name = $1", ppc3)
	before, after, err := db.SetCapacity(ctx, ppc3, 2.5)
	if err != nil {
		t.Fatal(err)
	}
	if before.Capacity != 4 || after.Capacity != 2.5 || after.ID != id || after.TaskLoad != 1.5 {
		t.Errorf("before %+v after %+v", before, after)
	}
	if c := scalar[float64](t, dsns, "SELECT capacity FROM host WHERE id = $1", id); c != 2.5 {
		t.Errorf("host.capacity = %v, want 2.5", c)
	}
	if n := scalar[int64](t, dsns, "SELECT count(*) FROM host"); n != int64(len(pgsql.DefaultSeed().Hosts)) {
		t.Errorf("%d host rows after an in-place edit", n)
	}
	if n := scalar[int64](t, dsns, "SELECT count(*) FROM events"); n != events {
		t.Errorf("events grew from %d to %d in the legacy schema", events, n)
	}
	b2, a2, err := db.SetCapacity(ctx, ppc3, 2.5)
	if err != nil || b2 != a2 {
		t.Errorf("same value: %+v -> %+v, %v", b2, a2, err)
	}
}

func TestBadCapacity(t *testing.T) {
	ctx := context.Background()
	bad := []float64{1, 0.5, 0, -3, math.NaN(), math.Inf(1), math.Inf(-1)}
	for _, g := range gens {
		dsns, db := newKoji(t, cluster, g.harness, "kojibot")
		events := scalar[int64](t, dsns, "SELECT count(*) FROM events")
		for _, c := range bad {
			_, _, err := db.SetCapacity(ctx, ppc3, c)
			if !errors.Is(err, ErrBadCapacity) {
				t.Errorf("%v: SetCapacity(%v) = %v, want ErrBadCapacity", g.want, c, err)
			}
		}
		h, err := db.Host(ctx, ppc3)
		if err != nil || h.Capacity != 4 {
			t.Errorf("%v: ppc3 after refused changes: %+v, %v", g.want, h, err)
		}
		if n := scalar[int64](t, dsns, "SELECT count(*) FROM events"); n != events {
			t.Errorf("%v: refused changes took events", g.want)
		}
	}

	// Refused before any SQL: a database that is not there is never asked.
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, "postgres://kojibot@127.0.0.1:"+port+"/koji?connect_timeout=2", "kojibot", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, _, err = db.SetCapacity(ctx, ppc3, 1)
	if !errors.Is(err, ErrBadCapacity) || errors.Is(err, ErrUnavailable) {
		t.Errorf("SetCapacity(1) with the database down: %v, want only ErrBadCapacity", err)
	}
}

func TestUnknownHost(t *testing.T) {
	ctx := context.Background()
	for _, g := range gens {
		_, db := newKoji(t, cluster, g.harness, "kojibot")
		calls := map[string]func() error{
			"Host":             func() error { _, err := db.Host(ctx, "ppc9.fedora.redhat.com"); return err },
			"SetCapacity":      func() error { _, _, err := db.SetCapacity(ctx, "ppc9.fedora.redhat.com", 3); return err },
			"SetEnabled":       func() error { _, _, err := db.SetEnabled(ctx, "ppc9.fedora.redhat.com", false, "x"); return err },
			"ActiveBuildroots": func() error { _, err := db.ActiveBuildroots(ctx, "ppc9.fedora.redhat.com"); return err },
		}
		for name, call := range calls {
			err := call()
			if !errors.Is(err, ErrNoHost) || !strings.Contains(err.Error(), "ppc9.fedora.redhat.com") {
				t.Errorf("%v: %s on an unknown host: %v, want ErrNoHost naming it", g.want, name, err)
			}
		}
	}
}

func TestNoKojiUser(t *testing.T) {
	ctx := context.Background()
	dsns, db := newKoji(t, cluster, pgsql.Versioned, "ghost")
	_, _, err := db.SetCapacity(ctx, ppc3, 3)
	if !errors.Is(err, ErrNoKojiUser) || !strings.Contains(err.Error(), "ghost") || !strings.Contains(err.Error(), "koji.user") {
		t.Fatalf("SetCapacity as a missing Koji user: %v, want ErrNoKojiUser naming ghost and koji.user", err)
	}
	if rows := configRows(t, dsns, ppc3); len(rows) != 1 || rows[0].capacity != 4 {
		t.Errorf("refused change left %+v", rows)
	}
	// The legacy schema keeps no history, but its hub still refuses a
	// user that does not exist.
	legacyDSNs, legacy := newKoji(t, cluster, pgsql.Legacy, "ghost")
	if _, _, err := legacy.SetCapacity(ctx, ppc3, 3); !errors.Is(err, ErrNoKojiUser) || !errors.Is(err, ErrNotAllowed) {
		t.Errorf("legacy SetCapacity as a missing Koji user: %v, want ErrNoKojiUser and ErrNotAllowed", err)
	}
	if c := scalar[float64](t, legacyDSNs, "SELECT capacity FROM host WHERE name = $1", ppc3); c != 4 {
		t.Errorf("refused legacy change left capacity %v", c)
	}
}

func TestSetEnabled(t *testing.T) {
	const host = "xenbuilder2.fedora.redhat.com"
	const why = "OOM, see ticket 42"
	for _, g := range gens {
		t.Run(g.want.String(), func(t *testing.T) {
			ctx := context.Background()
			dsns, db := newKoji(t, cluster, g.harness, "kojibot")
			before, after, err := db.SetEnabled(ctx, host, false, why)
			if err != nil {
				t.Fatal(err)
			}
			if !before.Enabled || after.Enabled || after.Comment != why || after.Capacity != 2 || after.Arches != "i386 x86_64" {
				t.Errorf("disable: %+v -> %+v", before, after)
			}
			if h, _ := db.Host(ctx, host); h.Enabled {
				t.Errorf("still enabled after disable")
			}
			if g.want.IsVersioned() {
				rows := configRows(t, dsns, host)
				// disableHost, then editHost(comment): two new rows.
				if len(rows) != 3 || rows[0].active != nil || rows[1].active != nil || rows[2].enabled ||
					rows[2].comment == nil || *rows[2].comment != why {
					t.Errorf("host_config after disable: %+v", rows)
				}
			}

			// Disabling again with the same reason changes nothing but, as
			// disableHost does, writes a revision (editHost does not).
			b2, a2, err := db.SetEnabled(ctx, host, false, why)
			if err != nil || a2.Enabled || a2.Comment != why || b2.Enabled != a2.Enabled || b2.Comment != a2.Comment {
				t.Errorf("disable twice: %+v -> %+v, %v", b2, a2, err)
			}
			if g.want.IsVersioned() {
				if n := len(configRows(t, dsns, host)); n != 4 {
					t.Errorf("disable twice: %d host_config rows, want 4 (disableHost's revision)", n)
				}
			}

			// Enabling without a comment keeps the last one, as Koji does.
			_, after, err = db.SetEnabled(ctx, host, true, "")
			if err != nil || !after.Enabled || after.Comment != why {
				t.Errorf("enable: %+v, %v", after, err)
			}
			if g.want.IsVersioned() {
				rows := configRows(t, dsns, host)
				active := 0
				for _, r := range rows {
					if r.active != nil {
						active++
					}
				}
				if len(rows) != 5 || active != 1 || !rows[4].enabled {
					t.Errorf("host_config after enable: %+v", rows)
				}
			}
		})
	}
}

func TestConcurrentSetCapacity(t *testing.T) {
	ctx := context.Background()
	dsns, db := newKoji(t, cluster, pgsql.Versioned, "kojibot")
	values := []float64{3, 5, 6, 7, 8, 9}
	var wg sync.WaitGroup
	errs := make([]error, len(values))
	for i, v := range values {
		wg.Go(func() { _, _, errs[i] = db.SetCapacity(ctx, ppc3, v) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("SetCapacity(%v): %v", values[i], err)
		}
	}
	rows := configRows(t, dsns, ppc3)
	if len(rows) != len(values)+1 {
		t.Fatalf("%d rows, want %d", len(rows), len(values)+1)
	}
	// The rows form one chain: each revoked row is revoked by the event that
	// created the next.
	for i := 0; i < len(rows)-1; i++ {
		if rows[i].active != nil || rows[i].revokeEvent == nil || *rows[i].revokeEvent != rows[i+1].createEvent {
			t.Errorf("row %d %+v is not revoked by row %d's event %d", i, rows[i], i+1, rows[i+1].createEvent)
		}
	}
	if last := rows[len(rows)-1]; last.active == nil {
		t.Errorf("newest row is not active: %+v", last)
	}
}

func TestActiveBuildroots(t *testing.T) {
	ctx := context.Background()
	for _, g := range gens {
		dsns, db := newKoji(t, cluster, g.harness, "kojibot")
		const host = "xenbuilder1.fedora.redhat.com"
		for id, state := range map[int64]int{13: 3, 10: 0, 12: 2, 11: 1} {
			if err := dsns.AddBuildroot(ctx, host, id, state); err != nil {
				t.Fatal(err)
			}
		}
		if err := dsns.AddBuildroot(ctx, "xenbuilder2.fedora.redhat.com", 20, 1); err != nil {
			t.Fatal(err)
		}
		ids, err := db.ActiveBuildroots(ctx, host)
		if err != nil || len(ids) != 3 || ids[0] != 10 || ids[1] != 11 || ids[2] != 12 {
			t.Errorf("%v: ActiveBuildroots = %v, %v; want [10 11 12]", g.want, ids, err)
		}
		ids, err = db.ActiveBuildroots(ctx, "ppc1.fedora.redhat.com")
		if err != nil || len(ids) != 0 {
			t.Errorf("%v: ActiveBuildroots of an idle host = %v, %v", g.want, ids, err)
		}
	}
}

// TestHostsNamed reads only the hosts a name can mean: the name itself or
// a name it is a leading run of whole labels of, in any case; never a
// partial label, and nothing in the query is a pattern.
func TestHostsNamed(t *testing.T) {
	for _, g := range gens {
		t.Run(g.want.String(), func(t *testing.T) {
			ctx := context.Background()
			_, db := newKoji(t, cluster, g.harness, "kojibot")
			for query, want := range map[string][]string{
				"PPC3":                   {ppc3},
				"ppc3.Fedora":            {ppc3},
				"ppc3.fedora.redhat.com": {ppc3},
				"x86-01":                 {"x86-01.iad2.fedoraproject.org", "x86-01.phx2.fedoraproject.org"},
				"ppc":                    nil,
				"ppc3.":                  nil,
				"fedora":                 nil,
				"ppc%":                   nil,
				"ppc_.fedora":            nil,
				"":                       nil,
			} {
				hosts, err := db.HostsNamed(ctx, query)
				if err != nil {
					t.Fatalf("HostsNamed(%q): %v", query, err)
				}
				var got []string
				for _, h := range hosts {
					got = append(got, h.Name)
				}
				if strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("HostsNamed(%q) = %q, want %q", query, got, want)
				}
				if query == "PPC3" && (len(hosts) != 1 || hosts[0].Capacity != 4) {
					t.Errorf("HostsNamed(PPC3) = %+v, want ppc3 with capacity 4", hosts)
				}
			}
		})
	}
}

// genPair is a generation as the harness makes it and as kojidb must detect
// it.
type genPair = struct {
	harness pgsql.Generation
	want    Generation
}

// allGens are every generation the harness makes: the in-harness ones
// (gens) and every fixture written from upstream's schema.sql
// (pgsql.UpstreamGenerations, with upstreamGens' expected detection).
var allGens = func() []genPair {
	out := append([]genPair(nil), gens...)
	for _, u := range upstreamGens {
		out = append(out, genPair{u.harness, u.want})
	}
	return out
}()

// TestAllGensCoverUpstream keeps allGens (and so the tests that range over
// it) in step with the harness: every upstream generation is in it.
func TestAllGensCoverUpstream(t *testing.T) {
	for _, g := range pgsql.UpstreamGenerations {
		if !slices.ContainsFunc(allGens, func(p genPair) bool { return p.harness == g }) {
			t.Errorf("upstream generation %v is not in allGens", g)
		}
	}
}

// ref is an id stated by name in an expected row: refHost is the edited
// host's id, any other value the id of the users row of that name.
type ref string

// refHost stands for the edited host's host.id.
const refHost ref = "@host"

// ev is an event stated relative to the test in an expected row: evSeed is
// the create_event of the host's seeded host_config row, n > 0 the n-th
// event taken since the first step started.
type ev int

// evSeed stands for the seeded host_config row's create_event.
const evSeed ev = 0

// hcCols are every column of host_config, in the order the expected rows
// state them.
var hcCols = []string{"host_id", "arches", "capacity", "description", "comment", "enabled",
	"create_event", "creator_id", "revoke_event", "revoker_id", "active"}

// legacyHostCols are every column of host before Koji 1.16, in the order the
// expected rows state them.
var legacyHostCols = []string{"id", "user_id", "name", "arches", "task_load", "capacity",
	"description", "comment", "ready", "enabled"}

// TestHostWritesAsKoji runs `capacity`, `disable` with a reason and `enable`
// on one host, on every generation, and after each step compares the host's
// rows column by column with what Koji's own hub calls would leave (read from
// koji-project/koji: hub/kojihub.py at koji-1.6.0, koji-1.15.0 and
// koji-1.16.0, kojihub/kojihub.py and kojihub/db.py at koji-1.35.0):
//
//   - capacity is editHost(capacity=6). Before 1.16, edit_host runs one
//     UPDATE of host and takes no event. From 1.16, one get_event() (cached
//     for the call) revokes the active host_config row (active NULL,
//     revoke_event, revoker_id = the caller) and inserts a copy of arches,
//     capacity, description, comment and enabled with the change
//     (create_event, creator_id = the caller, active true).
//   - disable with a reason is the CLI's disableHost then editHost(comment=…)
//     in one multicall, whose event cache is cleared between calls: two
//     events, two revoke+insert pairs (two in-place updates before 1.16).
//   - enable is enableHost, set_host_enabled(True): one event; the comment
//     stays.
//
// The caller is koji.user (kojibot). Events are checked to be exactly the
// ones stated, their time is the hub's clock in the hub's zone (the bot's
// zone, in its DSN, differs), and every other row of host, host_config, users and
// user_perms is left as it was.
func TestHostWritesAsKoji(t *testing.T) {
	t.Parallel()
	const (
		host = "ppc3.fedora.redhat.com" // seeded: ppc ppc64, capacity 4, load 1.5, ready, enabled
		desc = "POWER7, rack 12"
		why  = "OOM, see ticket 42"
	)
	steps := []struct {
		name string
		do   func(context.Context, *DB) error
		// events is how many events the step takes (versioned schemas;
		// none before Koji 1.16).
		events int
		// config is every host_config row of the host after the step, by
		// create_event, as hcCols.
		config [][]any
		// legacy is the host row after the step before Koji 1.16, as
		// legacyHostCols.
		legacy []any
	}{
		{
			name: "capacity 6 (editHost)",
			do: func(ctx context.Context, db *DB) error {
				_, _, err := db.SetCapacity(ctx, host, 6)
				return err
			},
			events: 1,
			config: [][]any{
				{refHost, "ppc ppc64", 4.0, desc, nil, true, evSeed, ref("kojiadmin"), ev(1), ref("kojibot"), nil},
				{refHost, "ppc ppc64", 6.0, desc, nil, true, ev(1), ref("kojibot"), nil, nil, true},
			},
			legacy: []any{refHost, ref(host), host, "ppc ppc64", 1.5, 6.0, desc, nil, true, true},
		},
		{
			name: "disable with a reason (disableHost, editHost(comment))",
			do: func(ctx context.Context, db *DB) error {
				_, _, err := db.SetEnabled(ctx, host, false, why)
				return err
			},
			events: 2,
			config: [][]any{
				{refHost, "ppc ppc64", 4.0, desc, nil, true, evSeed, ref("kojiadmin"), ev(1), ref("kojibot"), nil},
				{refHost, "ppc ppc64", 6.0, desc, nil, true, ev(1), ref("kojibot"), ev(2), ref("kojibot"), nil},
				{refHost, "ppc ppc64", 6.0, desc, nil, false, ev(2), ref("kojibot"), ev(3), ref("kojibot"), nil},
				{refHost, "ppc ppc64", 6.0, desc, why, false, ev(3), ref("kojibot"), nil, nil, true},
			},
			legacy: []any{refHost, ref(host), host, "ppc ppc64", 1.5, 6.0, desc, why, true, false},
		},
		{
			name: "enable (enableHost)",
			do: func(ctx context.Context, db *DB) error {
				_, _, err := db.SetEnabled(ctx, host, true, "")
				return err
			},
			events: 1,
			config: [][]any{
				{refHost, "ppc ppc64", 4.0, desc, nil, true, evSeed, ref("kojiadmin"), ev(1), ref("kojibot"), nil},
				{refHost, "ppc ppc64", 6.0, desc, nil, true, ev(1), ref("kojibot"), ev(2), ref("kojibot"), nil},
				{refHost, "ppc ppc64", 6.0, desc, nil, false, ev(2), ref("kojibot"), ev(3), ref("kojibot"), nil},
				{refHost, "ppc ppc64", 6.0, desc, why, false, ev(3), ref("kojibot"), ev(4), ref("kojibot"), nil},
				{refHost, "ppc ppc64", 6.0, desc, why, true, ev(4), ref("kojibot"), nil, nil, true},
			},
			legacy: []any{refHost, ref(host), host, "ppc ppc64", 1.5, 6.0, desc, why, true, true},
		},
	}

	const hubZone, botZone = "Asia/Tokyo", "UTC"
	for _, g := range allGens {
		t.Run(g.harness.String(), func(t *testing.T) {
			t.Parallel() // each in its own database
			ctx := context.Background()
			dsns, db := newKojiZones(t, g.harness, hubZone, botZone)
			if gen, err := db.Generation(ctx); err != nil || gen != g.want {
				t.Fatalf("Generation = %v, %v; want %v", gen, err, g.want)
			}
			versioned := g.want.IsVersioned()
			hostID := scalar[int64](t, dsns, "SELECT id FROM host WHERE name = $1", host)
			// The description an operator gave the host before the steps
			// (seeded in place: it is the seed row's value).
			setDesc := "UPDATE host SET description = $2 WHERE id = $1"
			if versioned {
				setDesc = "UPDATE host_config SET description = $2 WHERE host_id = $1 AND active IS TRUE"
			}
			if tag, err := dsns.Exec(ctx, setDesc, hostID, desc); err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("set description: %v (%d rows)", err, tag.RowsAffected())
			}

			ids := map[ref]int64{refHost: hostID}
			for _, u := range []string{"kojibot", "kojiadmin", host} {
				ids[ref(u)] = scalar[int64](t, dsns, "SELECT id FROM users WHERE name = $1", u)
			}
			base := scalar[int64](t, dsns, "SELECT coalesce(max(id), 0) FROM events")
			seedEvent := int64(-1)
			if versioned {
				seedEvent = scalar[int64](t, dsns, "SELECT create_event FROM host_config WHERE host_id = $1", hostID)
			}
			resolve := func(v any) any {
				switch v := v.(type) {
				case ref:
					id, ok := ids[v]
					if !ok {
						t.Fatalf("no id for %q", v)
					}
					return id
				case ev:
					if v == evSeed {
						return seedEvent
					}
					return base + int64(v)
				}
				return v
			}
			others := otherRows(t, dsns, hostID, versioned)

			taken := 0 // events taken by the previous steps
			for _, step := range steps {
				if err := step.do(ctx, db); err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
				wantEvents := 0
				if versioned {
					wantEvents = step.events
				}
				checkEvents(t, dsns, step.name, base+int64(taken), wantEvents, hubZone)
				taken += wantEvents

				if versioned {
					got := tableRows(t, dsns, hcCols, "SELECT * FROM host_config WHERE host_id = $1 ORDER BY create_event", hostID)
					compareRows(t, step.name+": host_config", hcCols, got, resolveRows(step.config, resolve))
				} else {
					got := tableRows(t, dsns, legacyHostCols, "SELECT * FROM host WHERE id = $1", hostID)
					compareRows(t, step.name+": host", legacyHostCols, got, resolveRows([][]any{step.legacy}, resolve))
				}
				if after := otherRows(t, dsns, hostID, versioned); !reflect.DeepEqual(others, after) {
					t.Errorf("%s changed rows it should not have:\nbefore %v\nafter  %v", step.name, others, after)
				}
			}
		})
	}
}

func resolveRows(rows [][]any, resolve func(any) any) [][]any {
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = make([]any, len(r))
		for j, v := range r {
			out[i][j] = resolve(v)
		}
	}
	return out
}

// tableRows runs query (a SELECT * of one table) as the superuser and
// returns its rows as the values of cols, normalized (integers as int64,
// floats as float64). It fails the test when the table has a column that
// cols does not state, or lacks one, so that no column goes unchecked.
func tableRows(t *testing.T, dsns pgsql.DSNs, cols []string, query string, args ...any) [][]any {
	t.Helper()
	conn := connect(t, dsns.Admin)
	rows, err := conn.Query(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for _, f := range rows.FieldDescriptions() {
		names = append(names, f.Name)
	}
	if a, b := slices.Sorted(slices.Values(names)), slices.Sorted(slices.Values(cols)); !slices.Equal(a, b) {
		t.Fatalf("columns are %v, the test states %v", names, cols)
	}
	var out [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]any{}
		for i, v := range vals {
			byName[names[i]] = normalize(v)
		}
		row := make([]any, len(cols))
		for i, c := range cols {
			row[i] = byName[c]
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func normalize(v any) any {
	switch v := v.(type) {
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case int:
		return int64(v)
	case float32:
		return float64(v)
	}
	return v
}

// compareRows reports every column of every row where got differs from
// want.
func compareRows(t *testing.T, what string, cols []string, got, want [][]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d:\n got %s\nwant %s", what, len(got), len(want), showRows(got), showRows(want))
		return
	}
	for i := range want {
		for j, c := range cols {
			if !reflect.DeepEqual(got[i][j], want[i][j]) {
				t.Errorf("%s: row %d column %s = %s, want %s", what, i+1, c, show(got[i][j]), show(want[i][j]))
			}
		}
	}
}

func show(v any) string {
	if v == nil {
		return "NULL"
	}
	return fmt.Sprintf("%#v", v)
}

func showRows(rows [][]any) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString("\n  {")
		for j, v := range r {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(show(v))
		}
		b.WriteString("}")
	}
	return b.String()
}

// checkEvents fails unless the events after id after are exactly after+1 to
// after+n, each timed within a minute of the database's now() read as the
// hub does: in hubZone when events.time is tz-naive (before Koji 1.22).
func checkEvents(t *testing.T, dsns pgsql.DSNs, step string, after int64, n int, hubZone string) {
	t.Helper()
	naive := scalar[bool](t, dsns, `SELECT atttypid = 'timestamp'::regtype FROM pg_attribute
		WHERE attrelid = 'events'::regclass AND attname = 'time'`)
	skew := "extract(epoch FROM now() - time)"
	if naive {
		skew = "extract(epoch FROM (now() AT TIME ZONE $2) - time)"
	}
	conn := connect(t, dsns.Admin)
	args := []any{after}
	if naive {
		args = append(args, hubZone)
	}
	rows, err := conn.Query(context.Background(),
		"SELECT id::bigint, "+skew+"::float8 FROM events WHERE id > $1 ORDER BY id", args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int64
	for rows.Next() {
		var id int64
		var secs float64
		if err := rows.Scan(&id, &secs); err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
		if secs < -60 || secs > 60 {
			t.Errorf("%s: event %d is %.0fs off the hub's clock (time not written in the hub's zone %s?)", step, id, secs, hubZone)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var want []int64
	for i := range n {
		want = append(want, after+int64(i)+1)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: new events %v, want %v", step, got, want)
	}
}

// otherRows is every row a host edit must leave alone: the other hosts'
// host_config rows, the host table (other hosts' rows only before Koji
// 1.16, where the edited row changes in place), users and user_perms.
func otherRows(t *testing.T, dsns pgsql.DSNs, hostID int64, versioned bool) map[string][]string {
	t.Helper()
	queries := map[string]string{
		"users":      "SELECT row_to_json(t)::text FROM users t ORDER BY id",
		"user_perms": "SELECT row_to_json(t)::text FROM user_perms t ORDER BY create_event, user_id, perm_id",
		"host":       "SELECT row_to_json(t)::text FROM host t WHERE id <> $1 ORDER BY id",
	}
	if versioned {
		queries["host"] = "SELECT row_to_json(t)::text FROM host t ORDER BY id"
		queries["host_config"] = "SELECT row_to_json(t)::text FROM host_config t WHERE host_id <> $1 ORDER BY create_event, host_id"
	}
	conn := connect(t, dsns.Admin)
	out := map[string][]string{}
	for table, q := range queries {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{hostID}
		}
		rows, err := conn.Query(context.Background(), q, args...)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out[table] = append(out[table], s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// The upstream hub, started by the first test that needs it and shared by
// every test here; TestMain stops it.
var (
	realHubOnce sync.Once
	realHub     *realkoji.Hub
	realHubErr  error
)

// upstreamHub returns the shared hub with a fresh database.
func upstreamHub(t *testing.T) *realkoji.Hub {
	t.Helper()
	realHubOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		realHub, realHubErr = realkoji.Start(ctx)
	})
	if realHubErr != nil {
		// A missing package or Koji source is a failure, never a skip.
		t.Fatalf("cannot start the Koji hub: %v", realHubErr)
	}
	if err := realHub.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	return realHub
}

func stopRealHub() {
	if realHub != nil {
		realHub.Close()
	}
}

// The twins: the bot edits botHost, the koji CLI cliHost. Same length, so
// that the CLI's aligned tables line up once the names are replaced.
const (
	botHost  = "ppc3.fedora.redhat.com"
	cliHost  = "ppc4.fedora.redhat.com"
	kojiUser = "kojibot"
)

// twinSeed is the seed of both twins: made identically, through the API.
func twinSeed() realkoji.Seed {
	twin := func(name string) realkoji.SeedHost {
		return realkoji.SeedHost{Name: name, Arches: "ppc ppc64", Capacity: 4, Description: "POWER7, rack 12"}
	}
	return realkoji.Seed{
		Users: map[string][]string{kojiUser: {"host"}},
		Hosts: []realkoji.SeedHost{twin(botHost), twin(cliHost)},
	}
}

// TestWritesMatchKojiCLI makes each change on twin hosts of the upstream
// hub, once through kojidb (as Koji user kojibot) and once through the
// release's `koji` CLI (logged in by Kerberos as the same Koji user), and
// after each step requires the two hosts to be indistinguishable but for
// their names and ids, and the times: the raw host and host_config rows
// (events numbered in order of appearance, creator and revoker by name),
// the events the step took, `koji list-history --host`, `koji list-hosts`,
// and the hub's own reading of the hosts (getHost, listHosts).
func TestWritesMatchKojiCLI(t *testing.T) {
	t.Parallel() // alone on the hub: the other tests of the hub are not parallel
	hub := upstreamHub(t)
	ctx := context.Background()
	if _, err := hub.Seed(ctx, twinSeed()); err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, hub.BotDSN(), kojiUser, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	const (
		why  = "OOM, see ticket 42"
		why2 = "fan replaced, burn-in \"48h\" – ✓ O'Neil"
	)
	steps := []struct {
		name string
		bot  func() error
		cli  []string
	}{
		{"capacity 2", func() error { _, _, err := db.SetCapacity(ctx, botHost, 2); return err },
			[]string{"edit-host", "--capacity", "2", cliHost}},
		{"capacity 2 again", func() error { _, _, err := db.SetCapacity(ctx, botHost, 2); return err },
			[]string{"edit-host", "--capacity", "2", cliHost}},
		{"disable with a reason", func() error { _, _, err := db.SetEnabled(ctx, botHost, false, why); return err },
			[]string{"disable-host", "--comment", why, cliHost}},
		{"disable again with a new reason", func() error { _, _, err := db.SetEnabled(ctx, botHost, false, why2); return err },
			[]string{"disable-host", "--comment", why2, cliHost}},
		{"disable again with the same reason", func() error { _, _, err := db.SetEnabled(ctx, botHost, false, why2); return err },
			[]string{"disable-host", "--comment", why2, cliHost}},
		{"disable again without a reason", func() error { _, _, err := db.SetEnabled(ctx, botHost, false, ""); return err },
			[]string{"disable-host", cliHost}},
		{"enable", func() error { _, _, err := db.SetEnabled(ctx, botHost, true, ""); return err },
			[]string{"enable-host", cliHost}},
		{"enable again", func() error { _, _, err := db.SetEnabled(ctx, botHost, true, ""); return err },
			[]string{"enable-host", cliHost}},
		{"capacity 7.5", func() error { _, _, err := db.SetCapacity(ctx, botHost, 7.5); return err },
			[]string{"edit-host", "--capacity", "7.5", cliHost}},
	}
	for _, s := range steps {
		before := eventCount(t, hub)
		if err := s.bot(); err != nil {
			t.Fatalf("%s: kojibot: %v", s.name, err)
		}
		botEvents := eventCount(t, hub) - before
		before = eventCount(t, hub)
		if _, err := hub.CLI(ctx, kojiUser, s.cli...); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		cliEvents := eventCount(t, hub) - before
		if botEvents != cliEvents {
			t.Errorf("%s: kojibot took %d events, koji %s took %d", s.name, botEvents, strings.Join(s.cli, " "), cliEvents)
		}
		compareTwins(t, hub, s.name)
		if t.Failed() {
			t.FailNow()
		}
	}
}

// compareTwins requires every view of botHost to equal the same view of
// cliHost, once the names, ids and times are taken out.
func compareTwins(t *testing.T, hub *realkoji.Hub, step string) {
	t.Helper()
	ctx := context.Background()
	var listHosts string // one run of `koji list-hosts` shows both
	views := []struct {
		name string
		of   func(host string) string
	}{
		{"host_config rows", func(h string) string { return hostConfigRows(t, hub, h) }},
		{"host row", func(h string) string { return hostRow(t, hub, h) }},
		{"koji list-history --host", func(h string) string {
			out, err := hub.CLI(ctx, kojiUser, "--noauth", "list-history", "--host", h)
			if err != nil {
				t.Fatal(err)
			}
			return historyTimes.ReplaceAllString(strings.ReplaceAll(out, h, "HOST"), "TIME")
		}},
		{"koji list-hosts", func(h string) string {
			if listHosts == "" {
				out, err := hub.CLI(ctx, kojiUser, "--noauth", "list-hosts", "--quiet", "--show-channels", "--comment", "--description")
				if err != nil {
					t.Fatal(err)
				}
				listHosts = out
			}
			out := listHosts
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, h+" ") {
					return strings.Replace(line, h, "HOST", 1)
				}
			}
			t.Fatalf("koji list-hosts has no %s:\n%s", h, out)
			return ""
		}},
		{"getHost", func(h string) string {
			v, err := hub.Anonymous().Struct(ctx, "getHost", h)
			if err != nil {
				t.Fatal(err)
			}
			return realkoji.HostConfig(v)
		}},
		{"listHosts", func(h string) string {
			hosts, err := hub.Anonymous().Structs(ctx, "listHosts")
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range hosts {
				if v["name"] == h {
					return realkoji.HostConfig(v)
				}
			}
			t.Fatalf("listHosts has no %s", h)
			return ""
		}},
	}
	for _, v := range views {
		bot, cli := v.of(botHost), v.of(cliHost)
		if bot != cli {
			t.Errorf("after %s, %s differ:\nkojibot's %s:\n%s\nkoji CLI's %s:\n%s", step, v.name, botHost, bot, cliHost, cli)
		}
	}
}

// historyTimes matches the times `koji list-history` starts its lines with.
var historyTimes = regexp.MustCompile(`(?m)^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}`)

// hostConfigRows shows every host_config row of host, by create_event:
// each column but host_id, with events numbered in order of appearance
// among the host's rows, and users by name.
func hostConfigRows(t *testing.T, hub *realkoji.Hub, host string) string {
	t.Helper()
	conn := connect(t, hub.AdminDSN())
	rows, err := conn.Query(context.Background(), `
		SELECT hc.arches, hc.capacity, hc.description, hc.comment, hc.enabled, hc.active,
			hc.create_event, hc.revoke_event, cu.name, ru.name
		FROM host_config hc JOIN host h ON h.id = hc.host_id
		JOIN users cu ON cu.id = hc.creator_id LEFT JOIN users ru ON ru.id = hc.revoker_id
		WHERE h.name = $1 ORDER BY hc.create_event`, host)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		vals           []any
		create, revoke *int64
	}
	var all []row
	var events []int64
	for rows.Next() {
		var r row
		var arches, desc, comment, creator, revoker *string
		var capacity *float64
		var enabled, active *bool
		if err := rows.Scan(&arches, &capacity, &desc, &comment, &enabled, &active, &r.create, &r.revoke, &creator, &revoker); err != nil {
			t.Fatal(err)
		}
		r.vals = []any{deref(arches), deref(capacity), deref(desc), deref(comment), deref(enabled), deref(active), deref(creator), deref(revoker)}
		for _, e := range []*int64{r.create, r.revoke} {
			if e != nil && !slices.Contains(events, *e) {
				events = append(events, *e)
			}
		}
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(events)
	ord := func(e *int64) string {
		if e == nil {
			return "-"
		}
		return fmt.Sprintf("e%d", slices.Index(events, *e)+1)
	}
	var b strings.Builder
	fmt.Fprintln(&b, "arches capacity description comment enabled active creator revoker create revoke")
	for _, r := range all {
		for _, v := range r.vals {
			fmt.Fprintf(&b, "%v | ", v)
		}
		fmt.Fprintf(&b, "%s | %s\n", ord(r.create), ord(r.revoke))
	}
	return b.String()
}

func deref[T any](p *T) any {
	if p == nil {
		return "NULL"
	}
	return *p
}

// hostRow shows host's own row but its id, name, user_id and update_time.
func hostRow(t *testing.T, hub *realkoji.Hub, host string) string {
	t.Helper()
	var load float64
	var ready bool
	err := connect(t, hub.AdminDSN()).QueryRow(context.Background(),
		"SELECT task_load, ready FROM host WHERE name = $1", host).Scan(&load, &ready)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("task_load=%v ready=%v", load, ready)
}

// eventCount is how many events the hub's database has.
func eventCount(t *testing.T, hub *realkoji.Hub) int64 {
	t.Helper()
	var n int64
	if err := connect(t, hub.AdminDSN()).QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestActiveBuildrootsMatchHub requires kojidb's active buildroots of a
// host (what the clean-up keeps) to be exactly the ones the hub lists with
// listBuildroots(hostID, state=[INIT, WAITING, BUILDING]), on buildroots
// made the way kojid makes them.
func TestActiveBuildrootsMatchHub(t *testing.T) {
	hub := upstreamHub(t)
	ctx := context.Background()
	hosts := map[string][]int{
		"xenbuilder2.fedora.redhat.com": {realkoji.BuildrootInit, realkoji.BuildrootExpired, realkoji.BuildrootWaiting,
			realkoji.BuildrootBuilding, realkoji.BuildrootExpired, realkoji.BuildrootBuilding},
		"xenbuilder3.fedora.redhat.com": {realkoji.BuildrootExpired, realkoji.BuildrootBuilding},
		"xenbuilder4.fedora.redhat.com": {realkoji.BuildrootExpired},
		"xenbuilder5.fedora.redhat.com": nil,
	}
	seed := realkoji.Seed{
		Tags:     []realkoji.SeedTag{{Name: "dist-f8-build", Arches: "x86_64"}},
		BuildTag: "dist-f8-build",
	}
	for name, states := range hosts {
		seed.Hosts = append(seed.Hosts, realkoji.SeedHost{Name: name, Arches: "x86_64 noarch", Buildroots: states})
	}
	sort.Slice(seed.Hosts, func(i, j int) bool { return seed.Hosts[i].Name < seed.Hosts[j].Name })
	seeded, err := hub.Seed(ctx, seed)
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, hub.BotDSN(), kojiUser, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	for name := range hosts {
		brs, err := hub.Anonymous().Structs(ctx, "listBuildroots",
			realkoji.Kwargs{"hostID": seeded.HostIDs[name], "state": []int{realkoji.BuildrootInit, realkoji.BuildrootWaiting, realkoji.BuildrootBuilding}})
		if err != nil {
			t.Fatal(err)
		}
		want := []int64{}
		for _, b := range brs {
			want = append(want, b["id"].(int64))
		}
		slices.Sort(want)
		got, err := db.ActiveBuildroots(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil {
			got = []int64{}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: kojidb keeps buildroots %v, the hub lists %v as active", name, got, want)
		}
	}
}

// TestCheckinsOfRealKojid: the check-ins kojidb reads (what `restart all`
// and the stale-builder watch decide on) are the ones the release's kojid
// writes, as the hub reports them (getLastHostUpdate): a running kojid's
// host checked in since a moment just past, a host without kojid never
// did, and a stopped kojid's host stops checking in.
func TestCheckinsOfRealKojid(t *testing.T) {
	hub := upstreamHub(t)
	ctx := context.Background()
	const (
		running = "buildvm-01.fedora.redhat.com"
		silent  = "buildvm-02.fedora.redhat.com"
	)
	_, err := hub.Seed(ctx, realkoji.Seed{Hosts: []realkoji.SeedHost{
		{Name: running, Arches: "x86_64 noarch"}, {Name: silent, Arches: "x86_64 noarch"}}})
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, hub.BotDSN(), kojiUser, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	k, err := hub.StartKojid(ctx, running)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	restart := time.Now() // as if the hub had restarted now
	if _, err := hub.WaitCheckin(ctx, running, restart, 30*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, k.Output())
	}
	hosts, err := db.Hosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(restart) // after the read, as restart all measures it
	r, s := hostByName(t, hosts, running), hostByName(t, hosts, silent)
	hubTime, err := hub.LastCheckin(ctx, hub.Anonymous(), running)
	if err != nil {
		t.Fatal(err)
	}
	// kojid may check in again between the two reads: kojidb's may be the
	// same or older, never newer, and within one kojid cycle.
	if d := hubTime.Sub(r.LastCheckin); r.LastCheckin.Before(restart) || d < 0 || d > 3*time.Second {
		t.Errorf("%s: kojidb's last check-in %v, the hub's update_ts %v", running, r.LastCheckin, hubTime)
	}
	if !(r.CheckinAge < elapsed) {
		t.Errorf("%s: check-in age %v, not within the %v since the restart: restart all would restart it", running, r.CheckinAge, elapsed)
	}
	if !s.LastCheckin.IsZero() {
		t.Errorf("%s never ran kojid, kojidb says it checked in at %v", silent, s.LastCheckin)
	}
	if last, err := hub.LastCheckin(ctx, hub.Anonymous(), silent); err != nil || !last.IsZero() {
		t.Errorf("the hub's last check-in of %s = %v, %v; want none", silent, last, err)
	}

	k.Stop()
	stopped := time.Now()
	time.Sleep(2500 * time.Millisecond)
	h, err := db.Host(ctx, running)
	if err != nil {
		t.Fatal(err)
	}
	if since := time.Since(stopped); h.CheckinAge < since {
		t.Errorf("%s: kojid stopped %v ago, but kojidb's check-in age is %v", running, since, h.CheckinAge)
	}
}

// TestGenerationsReadAndWrite runs Hosts, Host, SetCapacity, SetEnabled,
// ActiveBuildroots and the check-in age on every upstream generation, with
// the bot's zone (the DSN's timezone, as PGTZ sets it) different from the
// database's own zone: a check-in must not move by the zones' difference.
func TestGenerationsReadAndWrite(t *testing.T) {
	t.Parallel()
	seed := pgsql.DefaultSeed()
	for _, g := range upstreamGens {
		for _, z := range zonePairs[:2] {
			t.Run(fmt.Sprintf("%v/db=%s/bot=%s", g.harness, z.db, z.client), func(t *testing.T) {
				t.Parallel() // each in its own database
				ctx := context.Background()
				dsns, db := newKojiZones(t, g.harness, z.db, z.client)

				gen, err := db.Generation(ctx)
				if err != nil || gen != g.want {
					t.Fatalf("Generation = %v, %v; want %v", gen, err, g.want)
				}
				if f := db.features(); f.standardBuildroot != g.standardBuildroot || f.naiveSessions != g.naiveSessions {
					t.Errorf("features = %+v, want standard_buildroot %v, tz-naive sessions %v", f, g.standardBuildroot, g.naiveSessions)
				}

				hosts, err := db.Hosts(ctx)
				if err != nil || len(hosts) != len(seed.Hosts) {
					t.Fatalf("Hosts: %d, %v; want %d", len(hosts), err, len(seed.Hosts))
				}
				now := time.Now()
				for _, s := range seed.Hosts {
					h := hostByName(t, hosts, s.Name)
					if h.Arches != s.Arches || h.Capacity != s.Capacity || h.Enabled != s.Enabled || h.Comment != s.Comment {
						t.Errorf("%s = %+v, want seeded %+v", s.Name, h, s)
					}
					near(t, s.Name+" CheckinAge", h.CheckinAge, s.CheckinAge)
					near(t, s.Name+" now - LastCheckin", now.Sub(h.LastCheckin), s.CheckinAge)
				}

				// A check-in three hours ago, written as the hub writes it.
				const x86 = "x86-01.iad2.fedoraproject.org"
				if err := dsns.SetUpdateTime(ctx, x86, time.Now().Add(-3*time.Hour)); err != nil {
					t.Fatal(err)
				}
				h, err := db.Host(ctx, x86)
				if err != nil {
					t.Fatal(err)
				}
				near(t, "CheckinAge after a check-in 3h ago", h.CheckinAge, 3*time.Hour)
				near(t, "now - LastCheckin after a check-in 3h ago", time.Since(h.LastCheckin), 3*time.Hour)

				const ppc1 = "ppc1.fedora.redhat.com"
				before, after, err := db.SetCapacity(ctx, ppc1, 3.5)
				if err != nil || before.Capacity != 2 || after.Capacity != 3.5 {
					t.Fatalf("SetCapacity = %v -> %v, %v", before.Capacity, after.Capacity, err)
				}
				if h, err := db.Host(ctx, ppc1); err != nil || h.Capacity != 3.5 {
					t.Errorf("Host after SetCapacity: %v, %v", h.Capacity, err)
				}

				_, after, err = db.SetEnabled(ctx, ppc1, false, "disk full")
				if err != nil || after.Enabled || after.Comment != "disk full" {
					t.Fatalf("disable: %+v, %v", after, err)
				}
				_, after, err = db.SetEnabled(ctx, ppc1, true, "")
				if err != nil || !after.Enabled || after.Capacity != 3.5 {
					t.Fatalf("enable: %+v, %v", after, err)
				}

				const xen1 = "xenbuilder1.fedora.redhat.com"
				for id, state := range map[int64]int{13: 3, 10: 0, 12: 2, 11: 1} {
					if err := dsns.AddBuildroot(ctx, xen1, id, state); err != nil {
						t.Fatalf("AddBuildroot: %v", err)
					}
				}
				if err := dsns.AddBuildroot(ctx, "xenbuilder2.fedora.redhat.com", 20, 1); err != nil {
					t.Fatal(err)
				}
				ids, err := db.ActiveBuildroots(ctx, xen1)
				if err != nil || fmt.Sprint(ids) != "[10 11 12]" {
					t.Errorf("ActiveBuildroots = %v, %v; want [10 11 12]", ids, err)
				}
				if ids, err := db.ActiveBuildroots(ctx, ppc1); err != nil || len(ids) != 0 {
					t.Errorf("ActiveBuildroots of an idle host = %v, %v", ids, err)
				}
				if _, err := db.ActiveBuildroots(ctx, "ppc9.fedora.redhat.com"); !errors.Is(err, ErrNoHost) {
					t.Errorf("ActiveBuildroots of an unknown host: %v, want ErrNoHost", err)
				}
			})
		}
	}
}
