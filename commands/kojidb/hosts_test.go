package kojidb

import (
	"context"
	"errors"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
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
