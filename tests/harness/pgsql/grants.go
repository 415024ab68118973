package pgsql

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"

	"github.com/jackc/pgx/v5"
)

// GrantsFile is the path of docs/koji-db-grants.sql in this source tree:
// the grant script the README gives operators, which the harness applies.
func GrantsFile() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("pgsql: cannot locate the source tree")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "docs", "koji-db-grants.sql"), nil
}

var roleWord = regexp.MustCompile(`\bkojibot\b`)

// GrantsSQL returns docs/koji-db-grants.sql for role: the file names the
// role kojibot, and tells operators to replace that name with theirs, which
// is what this does.
func GrantsSQL(role string) (string, error) {
	path, err := GrantsFile()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("pgsql: grant script: %w", err)
	}
	if !regexp.MustCompile(`^[a-z_][a-z0-9_]*$`).MatchString(role) {
		return "", fmt.Errorf("pgsql: role name %q needs quoting", role)
	}
	return roleWord.ReplaceAllString(string(b), role), nil
}

// applyGrants runs the grant script for role in tx as the superuser, then
// sets the transaction's role to after (unless after is empty).
func applyGrants(ctx context.Context, tx pgx.Tx, role, after string) error {
	script, err := GrantsSQL(role)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "RESET ROLE"); err != nil {
		return err
	}
	// No arguments: the simple protocol runs every statement of the file.
	if _, err := tx.Exec(ctx, script); err != nil {
		return fmt.Errorf("docs/koji-db-grants.sql: %w", err)
	}
	if after == "" {
		return nil
	}
	_, err = tx.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{after}.Sanitize())
	return err
}

// GrantRole creates role (LOGIN, with password) unless it exists and
// applies docs/koji-db-grants.sql for it to this database, as an operator
// would for a second bot; tests then take away what they need missing.
// It returns the DSN of the database as that role.
func (d DSNs) GrantRole(ctx context.Context, c *Cluster, role, password string) (string, error) {
	conn, err := pgx.Connect(ctx, d.Admin)
	if err != nil {
		return "", fmt.Errorf("pgsql: %w", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", role).Scan(&exists); err != nil {
		return "", fmt.Errorf("pgsql: role %s: %w", role, err)
	}
	if !exists {
		if err := execFormatted(ctx, conn, "CREATE ROLE %I LOGIN PASSWORD %L", role, password); err != nil {
			return "", fmt.Errorf("pgsql: create role %s: %w", role, err)
		}
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return applyGrants(ctx, tx, role, "") })
	if err != nil {
		return "", fmt.Errorf("pgsql: grants for %s: %w", role, err)
	}
	return c.dsn(role, password, d.Database), nil
}

// ensurePermissions gives schemas written without Koji's permissions and
// user_perms tables (the reduced legacy.sql and versioned.sql) those tables
// as upstream has them, with the admin permission, and host in Versioned
// (Koji 1.19 and later have it). Schemas that have them are left alone.
func ensurePermissions(ctx context.Context, tx pgx.Tx, gen Generation) error {
	var has bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass('user_perms') IS NOT NULL").Scan(&has); err != nil {
		return err
	}
	if has {
		return nil
	}
	stmts := []string{
		`CREATE TABLE permissions (
			id SERIAL NOT NULL PRIMARY KEY,
			name VARCHAR(50) UNIQUE NOT NULL)`,
		`CREATE TABLE user_perms (
			user_id INTEGER NOT NULL REFERENCES users(id),
			perm_id INTEGER NOT NULL REFERENCES permissions(id),
			create_event INTEGER NOT NULL REFERENCES events(id) DEFAULT get_event(),
			revoke_event INTEGER REFERENCES events(id),
			creator_id INTEGER NOT NULL REFERENCES users(id),
			revoker_id INTEGER REFERENCES users(id),
			active BOOLEAN DEFAULT 'true' CHECK (active),
			CONSTRAINT active_revoke_sane CHECK (
				(active IS NULL AND revoke_event IS NOT NULL AND revoker_id IS NOT NULL)
				OR (active IS NOT NULL AND revoke_event IS NULL AND revoker_id IS NULL)),
			PRIMARY KEY (create_event, user_id, perm_id),
			UNIQUE (user_id, perm_id, active))`,
		`INSERT INTO permissions (name) VALUES ('admin'), ('build'), ('repo')`,
	}
	if gen == Versioned {
		stmts = append(stmts, `INSERT INTO permissions (name) VALUES ('host')`)
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("permissions: %w", err)
		}
	}
	return nil
}
