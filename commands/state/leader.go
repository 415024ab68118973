package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// leaderKey is the second key of the leader's advisory lock; process
// handles use their ids (from 1), the writers' transaction lock 0.
const leaderKey int32 = -1

// ErrFenced is returned by Leader.Write when a later term has begun: this
// leader is no longer one, and its write was not made.
var ErrFenced = errors.New("state: fenced: a later leadership term has begun")

// ErrNoLeadership is returned by TryLead on a store that cannot elect a
// leader: the SQLite store, which only one machine uses.
var ErrNoLeadership = errors.New("state: leadership needs the PostgreSQL store (state.dsn)")

// Leader is this process's leadership of the store: a session advisory
// lock held on a connection of its own, and the term it began, which only
// ever goes up. Writes made through Write carry the term and are refused
// once a later term has begun.
type Leader struct {
	// Term is this leadership's number.
	Term int64
	s    *Store
	conn *sql.Conn
	// backend is the lock connection's server process id.
	backend int
	lost    chan struct{}
	once    sync.Once
	stop    chan struct{}
	done    chan struct{}
}

// leaderCheckEvery is how often a leader checks its lock connection.
const leaderCheckEvery = 500 * time.Millisecond

// TryLead tries to become the leader of the store, as holder (a name for
// the operators: host and pid). ok is false when another process leads.
// On success a new term, above every earlier one, is recorded.
func (s *Store) TryLead(ctx context.Context, holder string) (l *Leader, ok bool, err error) {
	if !s.db.pg {
		return nil, false, ErrNoLeadership
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("state: leadership: %w", err)
	}
	l = &Leader{s: s, conn: conn, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	fail := func(err error) (*Leader, bool, error) {
		l.drop()
		return nil, false, err
	}
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1, $2), pg_backend_pid()`, lockClass, leaderKey).Scan(&ok, &l.backend); err != nil {
		return fail(fmt.Errorf("state: leadership: %w", err))
	}
	if !ok {
		return fail(nil)
	}
	// Holding the lock, this is the only process that begins a term.
	err = conn.QueryRowContext(ctx, `INSERT INTO leader (id, term, holder, since) VALUES (1, 1, $1, $2)
		ON CONFLICT (id) DO UPDATE SET term = leader.term + 1, holder = excluded.holder, since = excluded.since
		RETURNING term`, holder, time.Now().UnixNano()).Scan(&l.Term)
	if err != nil {
		return fail(fmt.Errorf("state: leadership: beginning a term: %w", err))
	}
	go l.watch()
	return l, true, nil
}

// watch closes lost when the lock connection breaks: the server has
// dropped the lock, and another process may lead.
func (l *Leader) watch() {
	defer close(l.done)
	t := time.NewTicker(leaderCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), leaderCheckEvery)
		err := l.conn.PingContext(ctx)
		if err == nil {
			var held bool
			err = l.conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
				AND granted AND pid = pg_backend_pid() AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 2)`,
				int64(lockClass), oidKey(leaderKey)).Scan(&held)
			if err == nil && !held {
				err = errors.New("lock not held")
			}
		}
		cancel()
		if err != nil {
			l.once.Do(func() { close(l.lost) })
			return
		}
	}
}

// Lost is closed when the leadership is lost (its lock connection
// broke): stop acting at once.
func (l *Leader) Lost() <-chan struct{} { return l.lost }

// Backend is the server process id of the lock connection.
func (l *Leader) Backend() int { return l.backend }

// Write runs f in a transaction that carries this leader's term: when a
// later term has begun, nothing is written and ErrFenced is returned.
func (l *Leader) Write(ctx context.Context, f func(ctx context.Context, tx *sql.Tx) error) error {
	t, err := l.s.db.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state: fenced write: %w", err)
	}
	defer t.Rollback()
	// FOR SHARE: a new term cannot begin until this write is committed.
	var term int64
	if err := t.QueryRowContext(ctx, `SELECT term FROM leader WHERE id = 1 FOR SHARE`).Scan(&term); err != nil {
		return fmt.Errorf("state: fenced write: %w", err)
	}
	if term != l.Term {
		return fmt.Errorf("%w (term %d, this leader's %d)", ErrFenced, term, l.Term)
	}
	if err := f(ctx, t); err != nil {
		return err
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("state: fenced write: %w", err)
	}
	return nil
}

// Term returns the store's current leadership term (0 before the first).
func (s *Store) Term(ctx context.Context) (int64, error) {
	if !s.db.pg {
		return 0, ErrNoLeadership
	}
	var term int64
	err := s.db.QueryRowContext(ctx, `SELECT term FROM leader WHERE id = 1`).Scan(&term)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("state: reading the term: %w", err)
	}
	return term, nil
}

// Resign gives up the leadership: the lock connection is closed, which
// releases the lock; the term stays recorded.
func (l *Leader) Resign() {
	l.once.Do(func() { close(l.lost) })
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
	// Unlock first: the server releases a closed connection's locks only
	// when it sees the connection go, a moment later, and the next leader
	// should not wait for that.
	if l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), leaderCheckEvery)
		_, _ = l.conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1, $2)`, lockClass, leaderKey)
		cancel()
	}
	l.drop()
}

// drop closes the lock connection for good (not back into the pool).
func (l *Leader) drop() {
	if l.conn == nil {
		return
	}
	l.conn.Raw(func(any) error { return errDropConn })
	l.conn.Close()
	l.conn = nil
}

// oidKey is how pg_locks shows a 32-bit advisory lock key (an oid).
func oidKey(k int32) int64 { return int64(uint32(k)) }
