package kojidb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
)

func freePort() (string, error) {
	p, err := harness.FreePort()
	return strconv.Itoa(p), err
}

// assertUnavailable checks that err is ErrUnavailable and shows neither the
// DSN nor its password.
func assertUnavailable(t *testing.T, what string, err error, dsn string) {
	t.Helper()
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("%s: %v, want ErrUnavailable", what, err)
		return
	}
	msg := err.Error()
	if strings.Contains(msg, dsn) || strings.Contains(msg, pgsql.BotPassword) {
		t.Errorf("%s: message shows the DSN or password: %s", what, msg)
	}
	if !strings.Contains(msg, "Koji database unavailable") {
		t.Errorf("%s: message %q does not say the database is unavailable", what, msg)
	}
}

func TestUnavailableAtStart(t *testing.T) {
	ctx := context.Background()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dsn := "postgres://kojibot:" + pgsql.BotPassword + "@127.0.0.1:" + port + "/koji?sslmode=disable"
	db, err := Open(ctx, dsn, "kojibot", testLogger(t))
	if err != nil {
		t.Fatalf("Open with the database down: %v", err)
	}
	defer db.Close()
	_, err = db.Hosts(ctx)
	assertUnavailable(t, "Hosts", err, dsn)
	_, err = db.Generation(ctx)
	assertUnavailable(t, "Generation", err, dsn)
	assertUnavailable(t, "Ping", db.Ping(ctx), dsn)
	_, _, err = db.SetCapacity(ctx, ppc3, 3)
	assertUnavailable(t, "SetCapacity", err, dsn)
	_, _, err = db.SetEnabled(ctx, ppc3, false, "")
	assertUnavailable(t, "SetEnabled", err, dsn)
	_, err = db.ActiveBuildroots(ctx, ppc3)
	assertUnavailable(t, "ActiveBuildroots", err, dsn)
	_, err = db.Backends(ctx, "koji", time.Minute)
	assertUnavailable(t, "Backends", err, dsn)
	_, _, err = db.TerminateBackends(ctx, "koji", time.Minute, []Backend{{PID: 1, User: "koji"}})
	assertUnavailable(t, "TerminateBackends", err, dsn)
	_, _, err = db.ConnectionCount(ctx, "koji")
	assertUnavailable(t, "ConnectionCount", err, dsn)
}

func TestOpenBadDSN(t *testing.T) {
	for _, dsn := range []string{
		"postgres://kojibot:hunter2secret@127.0.0.1:notaport/koji",
		"host=127.0.0.1 password=hunter2secret port=x",
	} {
		_, err := Open(context.Background(), dsn, "kojibot", nil)
		if err == nil {
			t.Errorf("Open(%q): no error", dsn)
			continue
		}
		if strings.Contains(err.Error(), "hunter2secret") || strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("Open error shows the DSN: %v", err)
		}
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	dsns, db := newKoji(t, cluster, pgsql.Versioned, "kojibot")
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db.Close() // twice is harmless
	_, err := db.Hosts(ctx)
	assertUnavailable(t, "Hosts after Close", err, dsns.Kojibot)
}

// TestRestart stops and starts PostgreSQL under an open DB: calls fail with
// ErrUnavailable while it is down, work again once it is back, and the
// schema is detected again on the new connections.
func TestRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, cleanup, err := startCluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	dsns, db := newKoji(t, c, pgsql.Versioned116, "kojibot")

	// Down when the bot starts.
	c.Stop()
	_, err = db.Hosts(ctx)
	assertUnavailable(t, "Hosts before the first start", err, dsns.Kojibot)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	hosts, err := db.Hosts(ctx)
	if err != nil || len(hosts) != len(pgsql.DefaultSeed().Hosts) {
		t.Fatalf("Hosts once up: %d hosts, %v", len(hosts), err)
	}
	if g, err := db.Generation(ctx); err != nil || g != Versioned116 {
		t.Fatalf("Generation = %v, %v; want %v", g, err, Versioned116)
	}

	// The hub is upgraded to 1.33 behind the bot's back: the cached
	// generation stands while the connection does.
	if _, err := dsns.Exec(ctx, "ALTER TABLE host ADD COLUMN update_time TIMESTAMPTZ"); err != nil {
		t.Fatal(err)
	}
	if _, err := dsns.Exec(ctx, "UPDATE host SET update_time = now() - interval '5 minutes'"); err != nil {
		t.Fatal(err)
	}
	if g, _ := db.Generation(ctx); g != Versioned116 {
		t.Fatalf("Generation re-detected without losing the connection: %v", g)
	}

	// PostgreSQL goes away under the bot.
	c.Stop()
	_, err = db.Hosts(ctx)
	assertUnavailable(t, "Hosts while down", err, dsns.Kojibot)
	_, _, err = db.SetCapacity(ctx, ppc3, 3)
	assertUnavailable(t, "SetCapacity while down", err, dsns.Kojibot)
	assertUnavailable(t, "Ping while down", db.Ping(ctx), dsns.Kojibot)

	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
	if g, err := db.Generation(ctx); err != nil || g != Versioned {
		t.Errorf("Generation after restart = %v, %v; want %v (re-detected)", g, err, Versioned)
	}
	h, err := db.Host(ctx, ppc3)
	if err != nil || time.Since(h.LastCheckin) < 4*time.Minute || time.Since(h.LastCheckin) > 6*time.Minute {
		t.Errorf("Host after restart: LastCheckin %v, %v; want host.update_time, 5 minutes ago", h.LastCheckin, err)
	}
	if _, after, err := db.SetCapacity(ctx, ppc3, 3); err != nil || after.Capacity != 3 {
		t.Errorf("SetCapacity after restart: %+v, %v", after, err)
	}

	// Restarted while idle (no call saw it down), and downgraded meanwhile:
	// the pool's stale connections are replaced without an error reaching
	// the caller, and the new connection detects the schema again.
	if _, err := dsns.Exec(ctx, "ALTER TABLE host DROP COLUMN update_time"); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // idle long enough for the pool to check its connections
	if _, err := db.Hosts(ctx); err != nil {
		t.Errorf("Hosts after an unseen restart: %v", err)
	}
	if g, err := db.Generation(ctx); err != nil || g != Versioned116 {
		t.Errorf("Generation after an unseen restart = %v, %v; want %v", g, err, Versioned116)
	}
}

func TestErrorClassification(t *testing.T) {
	cases := []struct {
		err  error
		lost bool
	}{
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "53300"}, true},
		{&pgconn.PgError{Code: "23514"}, false},
		{&pgconn.PgError{Code: "42501"}, false},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{context.Canceled, false},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), false},
		{errClosed, true},
		{ErrNoHost, false},
		{nil, false},
	}
	for _, c := range cases {
		if got := lostConnection(c.err); got != c.lost {
			t.Errorf("lostConnection(%v) = %v, want %v", c.err, got, c.lost)
		}
	}
}

func TestErrorsScrubbed(t *testing.T) {
	dsn := "postgres://kojibot:hunter2secret@db3.example.org/koji"
	d := &DB{secrets: []string{dsn, "hunter2secret"}}
	inner := fmt.Errorf("server said: bad password hunter2secret for %s", dsn)
	err := d.fail("list hosts", inner)
	if strings.Contains(err.Error(), "hunter2secret") || strings.Contains(err.Error(), "db3.example.org/koji") {
		t.Errorf("scrubbed message still shows a secret: %s", err)
	}
	if !errors.Is(err, inner) || !strings.HasPrefix(err.Error(), "kojidb: list hosts: ") {
		t.Errorf("fail() = %v: want the operation named and the cause wrapped", err)
	}
	u, _ := url.Parse(dsn)
	if pw, _ := u.User.Password(); strings.Contains(d.scrub("x "+pw+" y"), pw) {
		t.Errorf("scrub kept the password")
	}
}
