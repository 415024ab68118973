package state

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"sync"
)

// querier is what a write needs: the store's handle, or a transaction.
type querier interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// Bind makes every later write of the store (journal, job records, cancel
// requests taken, sync tokens) carry l's term: once a later term has
// begun, they are refused with ErrFenced and nothing is written. A store
// never bound (exec, or run on SQLite) writes as before.
func (s *Store) Bind(l *Leader) { s.fence.Store(l) }

// write runs f on the store: directly when it is not bound to a leader,
// else in a transaction that first checks the leader's term.
func (s *Store) write(ctx context.Context, f func(q querier) error) error {
	if s.fence.Load() == nil {
		return f(s.db)
	}
	t, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer t.Rollback()
	if err := s.checkTerm(ctx, t); err != nil {
		return err
	}
	if err := f(t); err != nil {
		return err
	}
	return t.Commit()
}

// checkTerm refuses (ErrFenced) a write of a store bound to a leader whose
// term has ended. The row is read FOR SHARE: no new term begins before t
// ends.
func (s *Store) checkTerm(ctx context.Context, t *tx) error {
	l := s.fence.Load()
	if l == nil {
		return nil
	}
	var term int64
	if err := t.QueryRowContext(ctx, `SELECT term FROM leader WHERE id = 1 FOR SHARE`).Scan(&term); err != nil {
		return fmt.Errorf("reading the term: %w", err)
	}
	if term != l.Term {
		return fmt.Errorf("%w (term %d, this leader's %d)", ErrFenced, term, l.Term)
	}
	return nil
}

var (
	holderOnce sync.Once
	holder     string
)

// Holder names this process for the operators, as the store records it
// (job records, the leader, the registered processes): host:pid.
func Holder() string {
	holderOnce.Do(func() {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		holder = host + ":" + strconv.Itoa(os.Getpid())
	})
	return holder
}
