package kojidb

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
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
