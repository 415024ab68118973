package state

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// lockClass is the first key of kojibot's advisory locks ("kojb"); the
// second is a process handle's id (procs.id).
const lockClass int32 = 0x6b6f6a62

// ParseDSN checks that dsn is a PostgreSQL connection string or URL. Its
// error never quotes the DSN, which may hold a password.
func ParseDSN(dsn string) error {
	if dsn == "" {
		return errors.New("state: empty DSN")
	}
	if _, err := pgx.ParseConfig(dsn); err != nil {
		return errors.New("state: the DSN cannot be parsed as a PostgreSQL connection string or URL")
	}
	return nil
}

// OpenPostgres opens the store in the PostgreSQL database dsn names
// (kojibot's own database, never Koji's), migrating its schema first; it
// needs CREATE on its schema for that. The caller must Close it.
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
	if err := ParseDSN(dsn); err != nil {
		return nil, err
	}
	sqldb, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, errors.New("state: opening the PostgreSQL store failed")
	}
	s := &Store{db: &handle{DB: sqldb, pg: true}}
	if err := s.initPostgres(ctx); err != nil {
		if s.pgLock != nil {
			s.dropLock()
		}
		sqldb.Close()
		return nil, err
	}
	return s, nil
}

// Where names the store for messages: state.dir, or "the PostgreSQL
// store" (never the DSN, which may hold a password).
func (s *Store) Where() string {
	if s.db.pg {
		return "the PostgreSQL store"
	}
	return s.dir
}

func (s *Store) initPostgres(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("state: connecting to the PostgreSQL store: %w", err)
	}
	if err := migrate(ctx, s.db.DB, true, "the PostgreSQL store"); err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("state: registering: %w", err)
	}
	s.pgLock = conn
	// Register and lock before the row is visible: a claimer, which sees
	// it only once committed, always finds its lock held.
	t, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state: registering: %w", err)
	}
	defer t.Rollback()
	if err := t.QueryRowContext(ctx, `INSERT INTO procs (pid, started, holder) VALUES (?, ?, ?) RETURNING id`,
		os.Getpid(), time.Now().UnixNano(), Holder()).Scan(&s.proc); err != nil {
		return fmt.Errorf("state: registering: %w", err)
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1, $2)`, lockClass, int32(s.proc)).Scan(&ok); err != nil || !ok {
		return fmt.Errorf("state: locking process handle %d: %v", s.proc, err)
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("state: registering: %w", err)
	}
	s.lockStop, s.lockDone = make(chan struct{}), make(chan struct{})
	go s.keepLock(s.lockStop, s.lockDone)
	return nil
}

// relockEvery is how often a PostgreSQL handle checks the connection that
// holds its lock; relockGrace is how long a claimer waits before it looks
// again at a lock it found free, to tell a dead process from a live one
// whose connection broke and which is taking its lock again.
var (
	relockEvery = 500 * time.Millisecond
	relockGrace = 4 * relockEvery
)

// keepLock checks the lock connection every relockEvery and, when it has
// broken (the server restarted, the connection was terminated), takes the
// process's lock again on a new connection, until stop: without it, a
// live process would look dead to every other kojibot after a restart of
// the store's server, and they would take its jobs and journal records.
func (s *Store) keepLock(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(relockEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.lockMu.Lock()
		conn := s.pgLock
		s.lockMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), relockEvery)
		err := conn.PingContext(ctx)
		cancel()
		if err == nil {
			continue
		}
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		fresh, err := s.db.Conn(ctx)
		if err != nil {
			cancel()
			continue // the server is still away: try again at the next tick
		}
		var ok bool
		err = fresh.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1, $2)`, lockClass, int32(s.proc)).Scan(&ok)
		cancel()
		if err != nil || !ok {
			// Still held by the old connection (it was only slow), or
			// the server is away again.
			closeConn(fresh)
			continue
		}
		s.lockMu.Lock()
		old := s.pgLock
		s.pgLock = fresh
		s.lockMu.Unlock()
		closeConn(old)
	}
}

// graceFreeLocks waits relockGrace, once, when another process's lock is
// free, before Claim looks at the locks for good: a live process whose
// lock connection broke (the server restarted, the connection was cut)
// takes its lock again within relockEvery of the server being back, and
// must not be taken for dead meanwhile. The wait is outside Claim's
// transaction, so that it holds up no writer.
func (s *Store) graceFreeLocks(ctx context.Context) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM procs WHERE id != ?`, s.proc)
	if err != nil {
		return
	}
	var procs []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			procs = append(procs, id)
		}
	}
	rows.Close()
	for _, p := range procs {
		if !s.pgAlive(p) {
			select {
			case <-ctx.Done():
			case <-time.After(relockGrace):
			}
			return
		}
	}
}

// closeConn closes c for good (not back into the pool), which releases
// any advisory lock it holds.
func closeConn(c *sql.Conn) {
	c.Raw(func(any) error { return errDropConn })
	c.Close()
}

// pgAlive reports whether the handle proc still holds its advisory lock,
// in this database. A failed check counts as alive: its records are left
// alone, and looked at again at the next claim.
func (s *Store) pgAlive(proc int64) bool {
	var held bool
	err := s.db.QueryRowContext(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid::bigint = ? AND objid::bigint = ? AND objsubid = 2
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`,
		int64(lockClass), oidKey(int32(proc))).Scan(&held)
	return err != nil || held
}

// dropLock closes the lock connection for good (not back into the pool),
// which releases the advisory lock.
func (s *Store) dropLock() {
	if s.lockStop != nil {
		close(s.lockStop)
		<-s.lockDone
		s.lockStop = nil
	}
	s.lockMu.Lock()
	conn := s.pgLock
	s.pgLock = nil
	s.lockMu.Unlock()
	if conn != nil {
		closeConn(conn)
	}
}

func (s *Store) closePostgres() error {
	s.dropLock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("state: closing: %w", err)
	}
	return nil
}

// Backend is what kojibot holds of its state store, whichever database
// it is in: the SQLite store of Open and the PostgreSQL store of
// OpenPostgres both are one, and both pass the same contract tests.
type Backend interface {
	Record(ctx context.Context, e Entry) (int64, error)
	Done(ctx context.Context, id int64) error
	OpenEntries(ctx context.Context, job string) ([]Entry, error)
	ClaimOrphans(ctx context.Context) ([]Entry, error)
	Claim(ctx context.Context) ([]Entry, []Unverified, error)
	NewJob(ctx context.Context, j JobRecord) (int64, error)
	FinishJob(ctx context.Context, id int64, result string, finished time.Time) error
	RecentJobs(ctx context.Context, limit int) ([]JobRecord, error)
	JobStatus(ctx context.Context, id int64) (JobStatus, bool, error)
	RequestCancel(ctx context.Context, id int64, by, place string) error
	TakeCancelRequests(ctx context.Context) ([]CancelRequest, error)
	Get(ctx context.Context, key string) (string, bool, error)
	Put(ctx context.Context, key, value string) error
	Enqueue(ctx context.Context, payload string, queued time.Time, bound int) (int, error)
	Outbox(ctx context.Context, limit int) ([]Queued, error)
	AddSample(ctx context.Context, check string, r Sample, keepFrom time.Time) error
	Samples(ctx context.Context, check string, since time.Time) ([]Sample, error)
	Sent(ctx context.Context, id int64) error
	AddConfirmation(ctx context.Context, c Confirmation, now time.Time, max int) error
	Confirmation(ctx context.Context, token string) (Confirmation, bool, error)
	TakeConfirmation(ctx context.Context, token string) (Confirmation, bool, error)
	NewDraft(ctx context.Context, token string, created time.Time, payload string, keep int) (int64, error)
	Draft(ctx context.Context, id int64) (DraftRecord, bool, error)
	DraftByToken(ctx context.Context, token string) (DraftRecord, bool, error)
	Drafts(ctx context.Context) ([]DraftRecord, error)
	// Where names the store for messages, never with a password.
	Where() string
	Close() error
}

var _ Backend = (*Store)(nil)

// OpenFor opens the store a configuration names: the PostgreSQL database
// dsn when it is set, else the SQLite store in dir.
func OpenFor(ctx context.Context, dir, dsn string) (Backend, error) {
	if dsn != "" {
		return OpenPostgres(ctx, dsn)
	}
	return Open(ctx, dir)
}

// Probe is what ProbePostgres finds of a PostgreSQL store.
type Probe struct {
	// Version is the store's schema version (0: never migrated); Known the
	// newest this kojibot knows.
	Version, Known int64
	// CanCreate says the DSN's role may create tables in its schema, as
	// migrations need.
	CanCreate bool
}

// ProbePostgres connects to the PostgreSQL store dsn and reads its schema
// version, changing nothing (check-config --probe).
func ProbePostgres(ctx context.Context, dsn string) (Probe, error) {
	if err := ParseDSN(dsn); err != nil {
		return Probe{}, err
	}
	sqldb, err := sql.Open("pgx", dsn)
	if err != nil {
		return Probe{}, errors.New("state: opening the PostgreSQL store failed")
	}
	defer sqldb.Close()
	if err := sqldb.PingContext(ctx); err != nil {
		return Probe{}, fmt.Errorf("state: connecting to the PostgreSQL store: %w", err)
	}
	var p Probe
	if p.Version, p.Known, err = Versions(ctx, sqldb, true); err != nil {
		return Probe{}, err
	}
	if err := sqldb.QueryRowContext(ctx, `SELECT has_schema_privilege(current_schema(), 'CREATE')`).Scan(&p.CanCreate); err != nil {
		return Probe{}, fmt.Errorf("state: reading the privileges of the PostgreSQL store: %w", err)
	}
	return p, nil
}

// errDropConn, returned from a connection's Raw, makes database/sql close
// that connection instead of putting it back into the pool.
var errDropConn = driver.ErrBadConn
