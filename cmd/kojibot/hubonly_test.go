package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/tests/harness/realkoji"
)

// TestHubOnlyConfig runs kojibot exec with a configuration that has the
// hub (koji.hub.url, certificate login) and no koji.db at all: hosts,
// host, capacity, disable, enable and override work through the real hub,
// each change in `koji list-history` by the bot's Koji user, and
// `connections` says it needs koji.db. Then beside a database role that
// can read no Koji table: the same commands work, and so does
// `connections`.
func TestHubOnlyConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real Koji hub")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	hub, err := realkoji.Start(ctx)
	if err != nil {
		t.Fatalf("cannot start the Koji hub: %v", err)
	}
	defer hub.Close()
	const host = "ppc3.fedora.redhat.com"
	if _, err := hub.Seed(ctx, realkoji.Seed{
		Users:  map[string][]string{"kojibot": {"host", "tag"}},
		Hosts:  []realkoji.SeedHost{{Name: host, Arches: "ppc ppc64", Capacity: 4}},
		Tags:   []realkoji.SeedTag{{Name: "dist-f41-override", Packages: []string{"foo"}}},
		Builds: []realkoji.SeedBuild{{Name: "foo", Version: "1.0", Release: "1"}},
	}); err != nil {
		t.Fatal(err)
	}
	cert, err := hub.Cert("kojibot")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "kojibot.yaml")
	yaml := fmt.Sprintf(`irc:
  server: 127.0.0.1
  nick: kojibot
  channels: ["#fedora-admin"]
acl:
  source: static
  groups: {sysadmin-build: [alice]}
  commands:
    capacity: [sysadmin-build]
    enable: [sysadmin-build]
    disable: [sysadmin-build]
    override: [sysadmin-build]
koji:
  hub: {url: %q, ca_file: %q, auth: certificate, cert_file: %q}
  weburl: https://koji.example.org/koji
state: {dir: %q}
http: {listen: ""}
`, hub.URL, hub.CACert(), cert, filepath.Join(dir, "state"))
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(cfg); err != nil {
		t.Fatalf("the hub-only configuration does not validate: %v", err)
	}
	k, err := hub.StartKojid(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	runHubCommands(ctx, t, hub, cfg, host)

	// The hub beside a database role that may read none of Koji's tables,
	// only the server's activity (what `connections` needs): every host
	// command goes through the hub all the same (no SQL reaches Koji's
	// tables), and `connections` works.
	admin, err := pgx.Connect(ctx, hub.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	for _, q := range []string{
		"CREATE ROLE kojibot_conns LOGIN PASSWORD 'conns-pw'",
		"GRANT pg_read_all_stats, pg_signal_backend TO kojibot_conns",
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cfg.Koji.DB.DSN = config.Secret(fmt.Sprintf("postgres://kojibot_conns:conns-pw@127.0.0.1:%d/%s?sslmode=disable", hub.PG.Port(), realkoji.DBName))
	if err := validate(cfg); err != nil {
		t.Fatal(err)
	}
	limited, err := pgx.Connect(ctx, cfg.Koji.DB.DSN.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	defer limited.Close(context.Background())
	var n int
	if err := limited.QueryRow(ctx, "SELECT count(*) FROM host").Scan(&n); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("the connections-only role reads host: %v", err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"capacity", "ppc3", "3"}, host + " capacity 2 → 3"},
		{[]string{"disable", "ppc3"}, host + " disabled"},
		{[]string{"enable", "ppc3"}, host + " enabled"},
		{[]string{"hosts"}, "1 host, 1 enabled"},
		{[]string{"connections", "--older", "1s"}, "koji backends"},
	} {
		var out, errOut bytes.Buffer
		code := runExec(ctx, cfg, "alice", true, c.args, strings.NewReader(""), &out, &errOut)
		if got := out.String(); code != 0 || !strings.Contains(got, c.want) {
			t.Errorf("with a connections-only database role: exec %s: exit %d, %q; want %q\n%s", strings.Join(c.args, " "), code, got, c.want, errOut.String())
		}
	}
}

// runHubCommands runs the commands of TestHubOnlyConfig with cfg, and checks the
// changes in `koji list-history`.
func runHubCommands(ctx context.Context, t *testing.T, hub *realkoji.Hub, cfg *config.Config, host string) {
	t.Helper()
	exec := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := runExec(ctx, cfg, "alice", true, args, strings.NewReader(""), &out, &errOut)
		return strings.TrimSpace(out.String() + errOut.String()), code
	}
	for _, c := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"capacity", "ppc3", "2"}, host + " capacity 4 → 2", 0},
		{[]string{"disable", "ppc3", "fan", "replaced"}, host + " disabled", 0},
		{[]string{"enable", "ppc3"}, host + " enabled", 0},
		{[]string{"host", "ppc3"}, host + ": enabled", 0},
		{[]string{"hosts"}, "1 host, 1 enabled", 0},
		{[]string{"override", "f41", "foo-1.0-1"}, "tagged into dist-f41-override: foo-1.0-1 (task", 0},
		{[]string{"connections"}, "error: connections needs koji.db", 1},
	} {
		got, code := exec(c.args...)
		if code != c.code || !strings.Contains(got, c.want) {
			t.Errorf("exec %s: exit %d, %q; want exit %d and %q", strings.Join(c.args, " "), code, got, c.code, c.want)
		}
	}
	history, err := hub.CLI(ctx, "kojibot", "--noauth", "list-history", "--host", host)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(history, "altered by kojibot"); n != 4 {
		t.Errorf("list-history has %d changes by kojibot, want 4 (capacity, disable, its comment, enable):\n%s", n, history)
	}
	// Each exec logged in once (its commands share the session) and its
	// lifecycle logged out at the end.
	db, err := pgx.Connect(ctx, hub.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	var opened, open int
	if err := db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE NOT s.closed AND NOT s.expired)
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.name = 'kojibot' AND s.authtype = 2`).Scan(&opened, &open); err != nil {
		t.Fatal(err)
	}
	if opened == 0 || open != 0 {
		t.Errorf("the bot's sessions: %d opened, %d left open; want every one logged out", opened, open)
	}
}

// TestProbeWithoutDatabase: check-config --probe on a hub-only
// configuration does not try a database: it says the database is not
// configured and what is off, and finds nothing missing there.
func TestProbeWithoutDatabase(t *testing.T) {
	cfg := config.Default()
	cfg.Koji.Hub.URL = "https://koji.example.org/kojihub"
	var out, errOut bytes.Buffer
	if code := runProbe(context.Background(), cfg, &out, &errOut); code != 0 || errOut.Len() != 0 {
		t.Errorf("runProbe = %d, stderr %q", code, errOut.String())
	}
	if want := "koji database: not configured (koji.db.dsn is empty): `connections` and the connections watch are off\n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
}
