package state

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrations are the schema's versions, one directory per database.
//
//go:embed migrations
var migrations embed.FS

// versionTable is goose's record of the migrations applied.
const versionTable = "kojibot_schema_version"

// ErrTooNew is returned by Open and OpenPostgres for a store whose schema
// is newer than this kojibot knows: a newer kojibot made it.
var ErrTooNew = errors.New("state: the store was made by a newer kojibot")

// provider is the migration provider of the database.
func provider(sqldb *sql.DB, pg bool) (*goose.Provider, error) {
	dialect, dir := goose.DialectSQLite3, "migrations/sqlite"
	var opts []goose.ProviderOption
	if pg {
		dialect, dir = goose.DialectPostgres, "migrations/postgres"
		// Two kojibots starting together: one migrates, the other waits.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(lockClass)<<32 | 1))
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		return nil, err
	}
	if !pg {
		opts = append(opts, goose.WithGoMigrations(goose.NewGoMigration(2, &goose.GoFunc{RunTx: placeName}, nil)))
	}
	opts = append(opts, goose.WithTableName(versionTable), goose.WithDisableGlobalRegistry(true))
	return goose.NewProvider(dialect, sqldb, sub, opts...)
}

// Versions returns the schema version of the store in sqldb (0 for a store
// never migrated) and the newest version this kojibot knows.
func Versions(ctx context.Context, sqldb *sql.DB, pg bool) (current, known int64, err error) {
	p, err := provider(sqldb, pg)
	if err != nil {
		return 0, 0, fmt.Errorf("state: migrations: %w", err)
	}
	srcs := p.ListSources()
	known = srcs[len(srcs)-1].Version
	current, err = p.GetDBVersion(ctx)
	if err != nil {
		if !tableMissing(ctx, sqldb, pg) {
			return 0, known, fmt.Errorf("state: reading the schema version: %w", err)
		}
		current = 0
	}
	return current, known, nil
}

// tableMissing reports whether the version table does not exist yet.
func tableMissing(ctx context.Context, sqldb *sql.DB, pg bool) bool {
	q := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	if pg {
		q = `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1`
	}
	var n int
	if err := sqldb.QueryRowContext(ctx, q, versionTable).Scan(&n); err != nil {
		return false
	}
	return n == 0
}

// migrate brings the schema of the store in sqldb up to date; a store
// newer than this kojibot is refused (ErrTooNew) and left as it is.
func migrate(ctx context.Context, sqldb *sql.DB, pg bool, where string) error {
	current, known, err := Versions(ctx, sqldb, pg)
	if err != nil {
		return err
	}
	if current > known {
		return fmt.Errorf("%w: %s has schema version %d, this kojibot knows up to %d: run the newer kojibot, or restore a backup of the store", ErrTooNew, where, current, known)
	}
	p, err := provider(sqldb, pg)
	if err != nil {
		return fmt.Errorf("state: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("state: migrating the schema in %s: %w", where, err)
	}
	return nil
}

// placeName is SQLite's version 2: jobs.place_name, which kojibot added
// by hand before its schema was versioned, so a store may have it already.
func placeName(ctx context.Context, t *sql.Tx) error {
	var n int
	if err := t.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('jobs') WHERE name = 'place_name'`).Scan(&n); err != nil || n > 0 {
		return err
	}
	_, err := t.ExecContext(ctx, `ALTER TABLE jobs ADD COLUMN place_name TEXT NOT NULL DEFAULT ''`)
	return err
}
