package state

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
)

// cluster is the PostgreSQL server of the package's tests (started by
// TestMain); each test gets a database of its own in it.
var cluster *pgsql.Cluster

// stateRole is the role the PostgreSQL store is opened as: it owns its
// database, and is no superuser, so the tests also prove the grants the
// store needs.
const stateRole, statePassword = "kojibot_state", "state-secret"

// startCluster starts the package's PostgreSQL and creates stateRole.
func startCluster() (stop func(), err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "state-pg-")
	if err != nil {
		return nil, err
	}
	c, err := pgsql.Start(ctx, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stop = func() { c.Stop(); os.RemoveAll(dir) }
	conn, err := pgx.Connect(ctx, c.AdminDSN("postgres"))
	if err == nil {
		_, err = conn.Exec(ctx, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, stateRole, statePassword))
		conn.Close(ctx)
	}
	if err != nil {
		stop()
		return nil, err
	}
	cluster = c
	return stop, nil
}

var dbSeq atomic.Int64

// newPostgres creates a database owned by stateRole and returns the DSN
// of the store in it.
func newPostgres(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("state_%d", dbSeq.Add(1))
	conn, err := pgx.Connect(ctx, cluster.AdminDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name+` OWNER `+stateRole); err != nil {
		t.Fatal(err)
	}
	admin := cluster.AdminDSN(name)
	dsn := strings.Replace(admin, "postgres@", stateRole+":"+statePassword+"@", 1)
	if dsn == admin {
		t.Fatalf("cannot make the store's DSN from %s", admin)
	}
	return dsn
}

// isDSN tells a test store's location that is a PostgreSQL DSN from a
// state.dir.
func isDSN(loc string) bool { return strings.HasPrefix(loc, "postgres://") }

// openAt opens the store at loc: a state.dir or a DSN.
func openAt(ctx context.Context, loc string) (*Store, error) {
	if isDSN(loc) {
		return OpenPostgres(ctx, loc)
	}
	return Open(ctx, loc)
}

// contract runs test, a part of the contract every store keeps, against
// SQLite (in a temporary state.dir) and PostgreSQL (in a new database);
// loc is where the store is, for open. Under -short (make unit), which
// starts no server, it runs against SQLite only.
func contract(t *testing.T, test func(t *testing.T, loc string)) {
	t.Run("sqlite", func(t *testing.T) { test(t, t.TempDir()) })
	if cluster != nil {
		t.Run("postgres", func(t *testing.T) { test(t, newPostgres(t)) })
	}
}

// TestFirstOpensAtOnce: several processes opening a new store at once
// (run and exec started together) all get it, migrated once.
func TestFirstOpensAtOnce(t *testing.T) { contract(t, testFirstOpensAtOnce) }

func testFirstOpensAtOnce(t *testing.T, loc string) {
	const n = 4
	errs := make(chan error, n)
	stores := make(chan *Store, n)
	for range n {
		go func() {
			s, err := openAt(context.Background(), loc)
			errs <- err
			stores <- s
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
		if s := <-stores; s != nil {
			defer s.Close()
		}
	}
}

// TestDSNNeverShown: a DSN's password is in no error of the PostgreSQL
// store, whether the DSN cannot be parsed or the server cannot be reached.
func TestDSNNeverShown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const password = "s3cret-pw"
	for _, dsn := range []string{
		"postgres://kojibot:" + password + "@127.0.0.1:notaport/kojibot",
		"postgres://kojibot:" + password + "@127.0.0.1:1/kojibot?connect_timeout=2",
		"host=127.0.0.1 port=1 user=kojibot password=" + password + " connect_timeout=2",
	} {
		_, err := OpenPostgres(ctx, dsn)
		if err == nil || strings.Contains(err.Error(), password) {
			t.Errorf("OpenPostgres: %v, want an error without the password", err)
		}
		if _, err := ProbePostgres(ctx, dsn); err == nil || strings.Contains(err.Error(), password) {
			t.Errorf("ProbePostgres: %v, want an error without the password", err)
		}
	}
}

// TestLockOutlivesItsConnection: when the connection holding a live
// process's lock breaks (its server restarted, the connection was
// terminated), the process takes its lock again, and another process's
// claim leaves its running job and its journal records alone.
func TestLockOutlivesItsConnection(t *testing.T) {
	if cluster == nil {
		t.Skip("no PostgreSQL under -short")
	}
	ctx := context.Background()
	dsn := newPostgres(t)
	live, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	job, err := live.NewJob(ctx, JobRecord{Owner: "alice", Command: "cleanup b1", Place: "#ops", Started: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := live.Record(ctx, Entry{Host: "b1", Kind: KindService, Name: "kojid", Job: fmt.Sprint(job), Owner: "alice"}); err != nil {
		t.Fatal(err)
	}
	// Cut the lock's connection, as a restart of the server does.
	admin, err := pgx.Connect(ctx, cluster.AdminDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var cut int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 2`,
		int64(lockClass), live.proc).Scan(&cut); err != nil || cut != 1 {
		t.Fatalf("terminated %d lock connections (%v), want 1", cut, err)
	}
	other, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	claimed, _, err := other.Claim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 0 {
		t.Errorf("another process claimed the live one's records: %+v", claimed)
	}
	st, ok, err := other.JobStatus(ctx, job)
	if err != nil || !ok || st.Result != "" {
		t.Errorf("the live process's job after the claim: %+v %v %v, want it running", st, ok, err)
	}
	if !other.pgAlive(live.proc) {
		t.Error("the live process does not hold its lock again")
	}
}

// TestOutbox: messages wait in order, survive a reopen, and past the
// bound the oldest are dropped and counted.
func TestOutbox(t *testing.T) { contract(t, testOutbox) }

func testOutbox(t *testing.T, loc string) {
	ctx := context.Background()
	s, err := openAt(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		dropped, err := s.Enqueue(ctx, fmt.Sprintf("m%d", i), time.Now(), 3)
		if err != nil {
			t.Fatal(err)
		}
		if want := max(0, min(1, i-3)); dropped != want {
			t.Fatalf("enqueue %d dropped %d, want %d", i, dropped, want)
		}
	}
	s.Close()
	if s, err = openAt(ctx, loc); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q, err := s.Outbox(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range q {
		got = append(got, m.Payload)
	}
	if strings.Join(got, ",") != "m3,m4,m5" {
		t.Fatalf("outbox after reopen = %v, want m3,m4,m5", got)
	}
	if err := s.Sent(ctx, q[0].ID); err != nil {
		t.Fatal(err)
	}
	if q, _ = s.Outbox(ctx, 1); len(q) != 1 || q[0].Payload != "m4" {
		t.Fatalf("after Sent, head = %v, want m4", q)
	}
}

// TestSamples: readings come back in order after a reopen, only those
// since the instant asked for and of the check asked for; a reading at an
// instant already kept replaces it; and each write drops its check's
// readings older than it keeps.
func TestSamples(t *testing.T) { contract(t, testSamples) }

func testSamples(t *testing.T, loc string) {
	ctx := context.Background()
	s, err := openAt(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0) // before now: the zero time is the beginning, not now
	for i := range 5 {
		r := Sample{At: t0.Add(time.Duration(i) * time.Minute), Percent: float64(50 + i), Size: 1 << 40}
		if err := s.AddSample(ctx, "disk /mnt/koji", r, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddSample(ctx, "disk /mnt/other", Sample{At: t0, Percent: 10}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// The same instant again: it replaces the reading, never adds one.
	if err := s.AddSample(ctx, "disk /mnt/koji", Sample{At: t0.Add(4 * time.Minute), Percent: 55, Size: 1 << 40}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = openAt(ctx, loc); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Samples(ctx, "disk /mnt/koji", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var pct []float64
	for _, r := range got {
		pct = append(pct, r.Percent)
	}
	if fmt.Sprint(pct) != "[51 52 53 55]" || !got[0].At.Equal(t0.Add(time.Minute)) || got[0].Size != 1<<40 {
		t.Fatalf("readings since t0+1m = %v (%v), want 51 52 53 55 from t0+1m, size 1 TiB", pct, got)
	}
	// A write that keeps only from t0+3m drops the older ones of its check,
	// and nothing of another check.
	if err := s.AddSample(ctx, "disk /mnt/koji", Sample{At: t0.Add(5 * time.Minute), Percent: 56}, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.Samples(ctx, "disk /mnt/koji", time.Time{}); len(got) != 3 {
		t.Fatalf("after pruning: %d readings, want 3 (t0+3m..t0+5m)", len(got))
	}
	if got, _ = s.Samples(ctx, "disk /mnt/other", time.Time{}); len(got) != 1 {
		t.Fatalf("another check's readings: %d, want 1", len(got))
	}
	if err := s.AddSample(ctx, "", Sample{At: t0}, time.Time{}); err == nil {
		t.Fatal("a sample with no check was kept")
	}
}
