package e2e

import (
	"context"
	"errors"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// TestCheckConfigProbe: check-config --probe against the sandbox's Koji
// database passes with the documented grants (which the harness applies),
// and with a role lacking pg_signal_backend names it and exits 1.
func TestCheckConfigProbe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := cliConfig(t, "kbprobe", nil)
	out, err := exec.CommandContext(ctx, binary, "check-config", "--probe", "--config", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "every privilege the configuration needs is there") ||
		!strings.Contains(string(out), "ok       membership in pg_signal_backend") ||
		!strings.Contains(string(out), "ok       koji.user kojibot may edit hosts") {
		t.Fatalf("check-config --probe with the full grants: %v\n%s", err, out)
	}

	// Every machine of the farm: logged in as the unprivileged user, the
	// helper runs through sudo and allows what the configuration asks.
	for _, host := range append([]string{sandbox.HubHost, sandbox.AdminHost, sandbox.XenHost}, sandbox.Builders...) {
		if want := "ok       ssh " + host + ": logged in as kojibot, helper allows what the configuration needs"; !strings.Contains(string(out), want) {
			t.Errorf("check-config --probe does not say %q:\n%s", want, out)
		}
	}
	// A service the machine's helper does not allow is named, exit 1.
	gap := cliConfig(t, "kbprobegap", map[string]any{"hosts": map[string]any{
		"xenbuilder4": map[string]any{"address": sb.Farm.Address("xenbuilder4"), "services": []string{"kojid", "notallowed"}}}})
	out, err = exec.CommandContext(ctx, binary, "check-config", "--probe", "--config", gap).CombinedOutput()
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 1 ||
		!strings.Contains(string(out), "FAILED   ssh xenbuilder4: its /etc/kojibot-helper.conf does not allow service notallowed") ||
		strings.Count(string(out), "FAILED") != 1 {
		t.Errorf("check-config --probe with a service the helper does not allow: %v\n%s", err, out)
	}

	// Offline without --probe: a database that is not there is not asked.
	offline := cliConfig(t, "kbprobeoff", map[string]any{"koji": map[string]any{
		"db": map[string]any{"dsn": "postgres://kojibot@127.0.0.1:1/koji?connect_timeout=1"}}})
	if out, err := exec.CommandContext(ctx, binary, "check-config", "--config", offline).CombinedOutput(); err != nil {
		t.Errorf("check-config without --probe asked the database: %v\n%s", err, out)
	}

	const role, password = "kojibot_nosignal", "nosignal-db-secret"
	dsns := sb.DBs["koji"]
	dsn, err := dsns.GrantRole(ctx, sb.Koji.PG, role, password)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dsns.Exec(ctx, "REVOKE pg_signal_backend FROM "+role); err != nil {
		t.Fatal(err)
	}
	path = cliConfig(t, "kbprobenosig", map[string]any{"koji": map[string]any{"db": map[string]any{"dsn": dsn}}})
	cmd := exec.CommandContext(ctx, binary, "check-config", "--probe", "--config", path)
	out, err = cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("check-config --probe without pg_signal_backend: %v, want exit 1\n%s", err, out)
	}
	text := string(out)
	if !strings.Contains(text, "MISSING  membership in pg_signal_backend (connections kill)") ||
		!strings.Contains(text, "GRANT pg_signal_backend TO") || strings.Count(text, "MISSING") != 1 {
		t.Errorf("output does not name exactly pg_signal_backend as missing:\n%s", text)
	}
	if strings.Contains(text, password) {
		t.Errorf("the database password is in the output:\n%s", text)
	}
}

// dbRows is every row of host, host_config and events, as JSON text.
func dbRows(t *testing.T, dsns pgsql.DSNs) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsns.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT 'host ' || row_to_json(h)::text FROM (SELECT * FROM host ORDER BY id) h
		UNION ALL SELECT 'host_config ' || row_to_json(c)::text FROM (SELECT * FROM host_config ORDER BY create_event, host_id) c
		UNION ALL SELECT 'events ' || row_to_json(e)::text FROM (SELECT * FROM events ORDER BY id) e`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExecBlockedKojiUser: kojibot exec capacity as a blocked koji.user
// answers the hub's refusal, exits 1 and leaves the database unchanged.
func TestExecBlockedKojiUser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dsns, err := sb.CreateDB(ctx, "koji_blocked", pgsql.Versioned)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dsns.Exec(ctx, "UPDATE users SET status = 1 WHERE name = 'kojibot'"); err != nil {
		t.Fatal(err)
	}
	path, err := sb.WriteConfig(ctx, sandbox.BotConfig{Nick: "kbblocked", DB: "koji_blocked", Channel: "#kbblocked"})
	if err != nil {
		t.Fatal(err)
	}
	before := dbRows(t, dsns)
	out, err := exec.CommandContext(ctx, binary, "exec", "--config", path, "--as", "alice", "--", "capacity", "ppc3", "2").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exec capacity as a blocked koji.user: %v, want exit 1\n%s", err, out)
	}
	const want = "error: koji.user kojibot may not edit hosts (needs the host or admin permission)"
	if !strings.Contains(string(out), want) {
		t.Errorf("exec output lacks %q:\n%s", want, out)
	}
	if after := dbRows(t, dsns); !reflect.DeepEqual(before, after) {
		t.Errorf("the refused capacity changed the database:\nbefore %v\nafter  %v", before, after)
	}
}
