package pgsql

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var cluster *Cluster

func TestMain(m *testing.M) {
	if flag.Parse(); testing.Short() {
		fmt.Println("skipped with -short: these tests start real servers")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pgsql-harness-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster, err = Start(ctx, dir)
	if err != nil {
		// A missing PostgreSQL is a failure, never a skip.
		fmt.Fprintln(os.Stderr, "FAIL: cannot start PostgreSQL:", err)
		return 1
	}
	defer cluster.Stop()
	return m.Run()
}

var dbSeq atomic.Int64

func newDB(t *testing.T, gen Generation) DSNs {
	t.Helper()
	name := fmt.Sprintf("koji_h%d", dbSeq.Add(1))
	d, err := cluster.CreateKojiDB(context.Background(), name, gen, DefaultSeed())
	if err != nil {
		t.Fatalf("CreateKojiDB(%s, %v): %v", name, gen, err)
	}
	return d
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

var allGens = []Generation{Legacy, Versioned116, Versioned}

func TestCreateKojiDBShapes(t *testing.T) {
	ctx := context.Background()
	for _, gen := range allGens {
		t.Run(gen.String(), func(t *testing.T) {
			d := newDB(t, gen)
			if d.Gen != gen {
				t.Errorf("Gen = %v, want %v", d.Gen, gen)
			}
			bot := connect(t, d.Kojibot)
			var user, db string
			if err := bot.QueryRow(ctx, "SELECT current_user, current_database()").Scan(&user, &db); err != nil {
				t.Fatal(err)
			}
			if user != BotRole || db != d.Database {
				t.Errorf("bot DSN connects as %s to %s, want %s to %s", user, db, BotRole, d.Database)
			}
			var hosts, hostUsers, owner int
			var hasCapacity, hasConfig, hasUpdateTime bool
			err := bot.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM host),
				(SELECT count(*) FROM users WHERE usertype = 1),
				(SELECT count(*) FROM pg_tables WHERE tablename = 'host' AND tableowner = 'koji'),
				EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'host'::regclass AND attname = 'capacity' AND NOT attisdropped),
				to_regclass('host_config') IS NOT NULL,
				EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'host'::regclass AND attname = 'update_time' AND NOT attisdropped)`).
				Scan(&hosts, &hostUsers, &owner, &hasCapacity, &hasConfig, &hasUpdateTime)
			if err != nil {
				t.Fatal(err)
			}
			want := len(DefaultSeed().Hosts)
			if hosts != want || hostUsers != want {
				t.Errorf("hosts = %d, host users = %d, want %d", hosts, hostUsers, want)
			}
			if owner != 1 {
				t.Errorf("host is not owned by the hub's role")
			}
			if hasCapacity != (gen == Legacy) || hasConfig != (gen != Legacy) || hasUpdateTime != (gen == Versioned) {
				t.Errorf("host.capacity=%v host_config=%v host.update_time=%v: wrong shape for %v",
					hasCapacity, hasConfig, hasUpdateTime, gen)
			}
			var botUsers int
			if err := bot.QueryRow(ctx, "SELECT count(*) FROM users WHERE name = 'kojibot' AND usertype = 0").Scan(&botUsers); err != nil {
				t.Fatal(err)
			}
			if botUsers != 1 {
				t.Errorf("kojibot users rows = %d, want 1", botUsers)
			}
		})
	}
}

func TestRolesAreClusterWide(t *testing.T) {
	newDB(t, Versioned)
	newDB(t, Legacy)
	admin := connect(t, cluster.AdminDSN("postgres"))
	var n int
	var signal, stats bool
	err := admin.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM pg_roles WHERE rolname IN ('koji', 'kojibot') AND rolcanlogin),
		pg_has_role('kojibot', 'pg_signal_backend', 'MEMBER'),
		pg_has_role('kojibot', 'pg_read_all_stats', 'MEMBER')`).Scan(&n, &signal, &stats)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || !signal || !stats {
		t.Errorf("login roles = %d (want 2), pg_signal_backend=%v pg_read_all_stats=%v", n, signal, stats)
	}
}

func TestDefaultSeed(t *testing.T) {
	d := newDB(t, Versioned)
	conn := connect(t, d.Kojibot)
	ctx := context.Background()
	var capacity, load float64
	err := conn.QueryRow(ctx, `SELECT hc.capacity, h.task_load FROM host h
		JOIN host_config hc ON hc.host_id = h.id AND hc.active IS TRUE WHERE h.name = 'ppc3.fedora.redhat.com'`).Scan(&capacity, &load)
	if err != nil {
		t.Fatal(err)
	}
	if capacity != 4 || load != 1.5 {
		t.Errorf("ppc3 capacity %v load %v, want 4 and 1.5", capacity, load)
	}
	var x86, disabled, active int
	err = conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM host WHERE split_part(name, '.', 1) = 'x86-01'),
		(SELECT count(*) FROM host_config WHERE active IS TRUE AND NOT enabled),
		(SELECT count(*) FROM host_config WHERE active IS TRUE)`).Scan(&x86, &disabled, &active)
	if err != nil {
		t.Fatal(err)
	}
	if x86 != 2 || disabled != 1 || active != len(DefaultSeed().Hosts) {
		t.Errorf("x86-01 hosts %d (want 2), disabled %d (want 1), active configs %d", x86, disabled, active)
	}
}

func TestSchemaConstraints(t *testing.T) {
	ctx := context.Background()
	d := newDB(t, Versioned)
	hub := connect(t, d.Koji)
	cases := []struct {
		name, sql, state string
	}{
		{"capacity must exceed 1", `INSERT INTO host_config (host_id, capacity, creator_id)
			SELECT id, 1, 1 FROM host WHERE name = 'ppc1.fedora.redhat.com'`, "23514"},
		{"one active row per host", `INSERT INTO host_config (host_id, capacity, creator_id)
			SELECT id, 3, 1 FROM host WHERE name = 'ppc1.fedora.redhat.com'`, "23505"},
		{"revoke needs revoke_event", `UPDATE host_config SET active = NULL
			WHERE host_id = (SELECT id FROM host WHERE name = 'ppc1.fedora.redhat.com')`, "23514"},
		{"active is TRUE or NULL", `UPDATE host_config SET active = FALSE`, "23514"},
		{"task_load not negative", `UPDATE host SET task_load = -1`, "23514"},
	}
	for _, c := range cases {
		_, err := hub.Exec(ctx, c.sql)
		if got := sqlState(err); got != c.state {
			t.Errorf("%s: got %v (SQLSTATE %q), want SQLSTATE %s", c.name, err, got, c.state)
		}
	}
	// The edit Koji's editHost does passes every constraint.
	err := pgx.BeginFunc(ctx, hub, func(tx pgx.Tx) error {
		var ev int
		if err := tx.QueryRow(ctx, "SELECT get_event()").Scan(&ev); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE host_config SET active = NULL, revoke_event = $1, revoker_id = 1
			WHERE active IS TRUE AND host_id = 1`, ev); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO host_config (host_id, arches, capacity, enabled, create_event, creator_id)
			VALUES (1, 'ppc', 3, TRUE, $1, 1)`, ev)
		return err
	})
	if err != nil {
		t.Fatalf("revoke+insert: %v", err)
	}

	legacy := newDB(t, Legacy)
	lhub := connect(t, legacy.Koji)
	if _, err := lhub.Exec(ctx, "UPDATE host SET capacity = 1"); sqlState(err) != "23514" {
		t.Errorf("legacy capacity 1: got %v, want check violation", err)
	}
}

func TestBotPrivileges(t *testing.T) {
	ctx := context.Background()
	for _, gen := range allGens {
		d := newDB(t, gen)
		bot := connect(t, d.Kojibot)
		var ev int
		if err := bot.QueryRow(ctx, "SELECT get_event()").Scan(&ev); err != nil || ev < 1 {
			t.Errorf("%v: bot get_event() = %d, %v", gen, ev, err)
		}
		if _, err := bot.Exec(ctx, "UPDATE host SET name = 'x' WHERE false"); sqlState(err) != "42501" {
			t.Errorf("%v: bot renaming hosts: got %v, want permission denied", gen, err)
		}
		if _, err := bot.Exec(ctx, "DELETE FROM users WHERE false"); sqlState(err) != "42501" {
			t.Errorf("%v: bot deleting users: got %v, want permission denied", gen, err)
		}
	}
}

func TestSetUpdateTime(t *testing.T) {
	ctx := context.Background()
	want := time.Now().Add(-3 * time.Hour).Truncate(time.Microsecond)
	for _, gen := range allGens {
		d := newDB(t, gen)
		if err := d.SetUpdateTime(ctx, "ppc2.fedora.redhat.com", want); err != nil {
			t.Fatalf("%v: SetUpdateTime: %v", gen, err)
		}
		q := `SELECT max(s.update_time)::timestamptz FROM sessions s JOIN host h ON h.user_id = s.user_id WHERE h.name = $1`
		if gen == Versioned {
			q = `SELECT update_time FROM host WHERE name = $1`
		}
		var got time.Time
		if err := connect(t, d.Kojibot).QueryRow(ctx, q, "ppc2.fedora.redhat.com").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want) {
			t.Errorf("%v: last check-in %v, want %v", gen, got, want)
		}
		if err := d.SetUpdateTime(ctx, "nosuch", want); err == nil {
			t.Errorf("%v: SetUpdateTime on unknown host: no error", gen)
		}
	}
}

func TestAddBuildroot(t *testing.T) {
	ctx := context.Background()
	d := newDB(t, Legacy)
	for i, state := range []int{0, 2, 3} {
		if err := d.AddBuildroot(ctx, "xenbuilder2.fedora.redhat.com", int64(100+i), state); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.AddBuildroot(ctx, "nosuch", 200, 1); err == nil {
		t.Error("AddBuildroot on unknown host: no error")
	}
	var active, all int
	err := connect(t, d.Kojibot).QueryRow(ctx, `SELECT count(*) FILTER (WHERE state IN (0, 1, 2)), count(*)
		FROM standard_buildroot sb JOIN host h ON h.id = sb.host_id WHERE h.name = 'xenbuilder2.fedora.redhat.com'`).Scan(&active, &all)
	if err != nil {
		t.Fatal(err)
	}
	if active != 2 || all != 3 {
		t.Errorf("active %d of %d buildroots, want 2 of 3", active, all)
	}
}

// TestStopStart restarts the shared cluster, so it must not run in parallel.
func TestStopStart(t *testing.T) {
	ctx := context.Background()
	d := newDB(t, Versioned)
	port := cluster.Port()
	if !strings.Contains(d.Kojibot, fmt.Sprintf(":%d/", port)) {
		t.Fatalf("DSN %q not on port %d", d.Kojibot, port)
	}
	cluster.Stop()
	if cluster.Running() {
		t.Fatal("Running after Stop")
	}
	if conn, err := pgx.Connect(ctx, d.Kojibot); err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a stopped cluster")
	}
	cluster.Stop() // a second Stop is harmless
	if err := cluster.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Start(ctx); err == nil {
		t.Error("Start on a running cluster: no error")
	}
	if cluster.Port() != port || !cluster.Running() {
		t.Errorf("after restart: port %d running %v, want port %d running", cluster.Port(), cluster.Running(), port)
	}
	var n, maxConns int
	conn := connect(t, d.Kojibot)
	if err := conn.QueryRow(ctx, "SELECT count(*), current_setting('max_connections')::int FROM host").Scan(&n, &maxConns); err != nil {
		t.Fatal(err)
	}
	if n != len(DefaultSeed().Hosts) || maxConns != cluster.MaxConnections() {
		t.Errorf("after restart: %d hosts, max_connections %d", n, maxConns)
	}
}

// TestStartOnTakenPort checks that a cluster whose port another server took
// fails to start instead of mistaking that server for itself.
func TestStartOnTakenPort(t *testing.T) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "pgsql-taken-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	c2, err := Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Stop()
	if c2.Port() == cluster.Port() {
		t.Fatalf("two clusters on port %d", c2.Port())
	}
	c2.Stop()
	c2.port = cluster.Port()
	err = c2.Start(ctx)
	if !errors.Is(err, errPortTaken) || c2.Running() {
		t.Errorf("Start on a taken port: %v (running %v), want errPortTaken", err, c2.Running())
	}
	if err := cluster.ping(ctx); err != nil {
		t.Errorf("the cluster that holds the port: %v", err)
	}
}
