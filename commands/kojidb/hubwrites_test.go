package kojidb

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
)

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
