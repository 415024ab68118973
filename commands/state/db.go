package state

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// handle is the store's database handle. The queries are written with "?"
// placeholders, as SQLite takes them; for PostgreSQL they are rewritten
// to $1, $2, ... (no query here has a "?" inside a literal).
type handle struct {
	*sql.DB
	pg bool
}

// rebind rewrites q's placeholders for the database.
func rebind(pg bool, q string) string {
	if !pg || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (d *handle) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return d.DB.ExecContext(ctx, rebind(d.pg, q), args...)
}

func (d *handle) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return d.DB.QueryContext(ctx, rebind(d.pg, q), args...)
}

func (d *handle) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return d.DB.QueryRowContext(ctx, rebind(d.pg, q), args...)
}

// BeginTx starts a transaction that only one writer of the store holds
// at a time: SQLite's is immediate (the DSN says so); PostgreSQL's takes
// a transaction-level advisory lock.
func (d *handle) BeginTx(ctx context.Context, opts *sql.TxOptions) (*tx, error) {
	t, err := d.DB.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	if d.pg {
		if _, err := t.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, lockClass); err != nil {
			t.Rollback()
			return nil, err
		}
	}
	return &tx{Tx: t, pg: d.pg}, nil
}

// tx is a transaction of handle, with the same placeholder rewriting.
type tx struct {
	*sql.Tx
	pg bool
}

func (t *tx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, rebind(t.pg, q), args...)
}

func (t *tx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, rebind(t.pg, q), args...)
}

func (t *tx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, rebind(t.pg, q), args...)
}
