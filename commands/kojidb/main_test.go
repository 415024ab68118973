package kojidb

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
)

// cluster is the PostgreSQL every test here shares; each test gets its own
// database in it. Tests that restart PostgreSQL start their own cluster.
var cluster *pgsql.Cluster

func TestMain(m *testing.M) {
	if flag.Parse(); testing.Short() {
		fmt.Println("skipped with -short: these tests start real servers")
		os.Exit(0)
	}
	// Four at a time: each holds a pool and a few admin connections of
	// the cluster's pgsql.MaxConnections.
	harness.ServerBound(4)
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, cleanup, err := startCluster(ctx)
	if err != nil {
		// A missing PostgreSQL is a failure, never a skip.
		fmt.Fprintln(os.Stderr, "FAIL: cannot start PostgreSQL:", err)
		return 1
	}
	defer cleanup()
	defer stopRealHub()
	cluster = c
	return m.Run()
}

func startCluster(ctx context.Context) (*pgsql.Cluster, func(), error) {
	dir, err := os.MkdirTemp("", "kojidb-pg-")
	if err != nil {
		return nil, nil, err
	}
	c, err := pgsql.Start(ctx, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return c, func() { c.Stop(); os.RemoveAll(dir) }, nil
}

var dbSeq atomic.Int64

// gens are the three schema generations, as the harness makes them and as
// kojidb should detect them.
var gens = []struct {
	harness pgsql.Generation
	want    Generation
}{
	{pgsql.Legacy, Legacy},
	{pgsql.Versioned116, Versioned116},
	{pgsql.Versioned, Versioned},
}

// newKoji creates a Koji database of generation gen with the default seed
// in c and opens it as the bot, acting as Koji user kojiUser.
func newKoji(t *testing.T, c *pgsql.Cluster, gen pgsql.Generation, kojiUser string) (pgsql.DSNs, *DB) {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("koji_%d", dbSeq.Add(1))
	dsns, err := c.CreateKojiDB(ctx, name, gen, pgsql.DefaultSeed())
	if err != nil {
		t.Fatalf("CreateKojiDB: %v", err)
	}
	db, err := Open(ctx, dsns.Kojibot, kojiUser, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(db.Close)
	return dsns, db
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// connect opens a plain connection, closed when the test ends.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// scalar runs a one-value query as the superuser.
func scalar[T any](t *testing.T, dsns pgsql.DSNs, sql string, args ...any) T {
	t.Helper()
	var v T
	conn := connect(t, dsns.Admin)
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func hostByName(t *testing.T, hosts []Host, name string) Host {
	t.Helper()
	for _, h := range hosts {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("host %s not in %d hosts", name, len(hosts))
	return Host{}
}

// upstreamGens are the generations written from upstream's schema.sql, with
// the generation kojidb must detect and whether it has standard_buildroot
// and tz-naive sessions.
var upstreamGens = []struct {
	harness           pgsql.Generation
	want              Generation
	standardBuildroot bool
	naiveSessions     bool
}{
	{pgsql.Koji16, Legacy, false, true},
	{pgsql.Koji110, Legacy, false, true},
	{pgsql.Koji115, Legacy, true, true},
	{pgsql.Koji116, Versioned116, true, true},
	{pgsql.Koji132, Versioned116, true, false},
	{pgsql.KojiCurrent, Versioned, true, false},
}

// zonePairs are the hub's zone (the database's own timezone setting) and
// the bot's (PGTZ), always different.
var zonePairs = []struct{ db, client string }{
	{"UTC", "Asia/Tokyo"},
	{"Asia/Tokyo", "UTC"},
	{"America/New_York", "Asia/Kolkata"},
}

// newKojiIn creates a database of generation gen with the default seed,
// the database's own timezone dbZone, and opens it as the bot with opts.
func newKojiIn(t *testing.T, gen pgsql.Generation, dbZone string, opts ...Option) (pgsql.DSNs, *DB) {
	t.Helper()
	return newKojiZones(t, gen, dbZone, "", opts...)
}

// newKojiZones is newKojiIn with the bot's own zone botZone (when not "")
// in its DSN's timezone parameter, where PGTZ would put it too: unlike
// t.Setenv("PGTZ"), it lets the test run in parallel.
func newKojiZones(t *testing.T, gen pgsql.Generation, dbZone, botZone string, opts ...Option) (pgsql.DSNs, *DB) {
	t.Helper()
	ctx := context.Background()
	seed := pgsql.DefaultSeed()
	seed.TimeZone = dbZone
	dsns, err := cluster.CreateKojiDB(ctx, fmt.Sprintf("koji_%d", dbSeq.Add(1)), gen, seed)
	if err != nil {
		t.Fatalf("CreateKojiDB %v: %v", gen, err)
	}
	dsn := dsns.Kojibot
	if botZone != "" {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("timezone", botZone)
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	db, err := Open(ctx, dsn, "kojibot", testLogger(t), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(db.Close)
	return dsns, db
}

// near fails unless got is within a minute of want.
func near(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if d := got - want; d < -time.Minute || d > time.Minute {
		t.Errorf("%s = %v, want about %v", what, got, want)
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
