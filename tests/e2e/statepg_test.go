package e2e

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fedora-infra/kojibot/commands/state"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// stateDB creates, in the sandbox's PostgreSQL, a database of the bot's
// own owned by a role of its own (no superuser, nothing on Koji's) and
// returns the DSN of that store.
func stateDB(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, sb.PG.AdminDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	role, password := name+"_bot", "pw-"+name
	for _, q := range []string{
		fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, role, password),
		fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, name, role),
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	admin := sb.PG.AdminDSN(name)
	dsn := strings.Replace(admin, "postgres@", role+":"+password+"@", 1)
	if dsn == admin {
		t.Fatalf("cannot make the store's DSN from %s", admin)
	}
	return dsn
}

// TestStateInPostgreSQL: with state.dsn, check-config --probe reports the
// store's schema version; run and exec share the store in PostgreSQL (a
// job of one is cancelled from the other, both ways), state.dir is never
// touched, and the store is left migrated with both processes' jobs.
func TestStateInPostgreSQL(t *testing.T) {
	const nick, channel = "kojibot-pgstate", "#pgstate"
	dsn := stateDB(t, "kojibot_state")
	unused := filepath.Join(t.TempDir(), "never")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	path, err := sb.WriteConfig(ctx, sandbox.BotConfig{Nick: nick, DB: "koji", Channel: channel,
		Extra: map[string]any{"state": map[string]any{"dir": unused, "dsn": dsn}}})
	if err != nil {
		t.Fatal(err)
	}

	out, _ := exec.Command(binary, "check-config", "--config", path, "--probe").CombinedOutput()
	if !strings.Contains(string(out), "state store: PostgreSQL, schema version 0 (this kojibot knows up to ") ||
		!strings.Contains(string(out), "the schema is migrated at start") {
		t.Errorf("check-config --probe on a new store:\n%s", out)
	}
	if strings.Contains(string(out), "pw-kojibot_state") {
		t.Errorf("check-config --probe shows the store's password:\n%s", out)
	}

	cancelAcrossProcesses(t, nick, channel, path)

	if _, err := os.Lstat(unused); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("state.dir %s was touched (%v) although state.dsn is set", unused, err)
	}
	p, err := state.ProbePostgres(ctx, dsn)
	if err != nil || p.Version != p.Known || p.Version == 0 {
		t.Errorf("store after run and exec: %+v %v, want migrated to the newest version", p, err)
	}
	s, err := state.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	jobs, err := s.RecentJobs(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	places := map[string]bool{}
	for _, j := range jobs {
		places[j.Place] = true
	}
	if !places["exec"] || !places[channel] {
		t.Errorf("jobs in the PostgreSQL store %+v, want the exec's and the run's", jobs)
	}
}
