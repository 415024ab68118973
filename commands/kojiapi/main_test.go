package kojiapi

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fedora-infra/kojibot/tests/harness/realkoji"
)

func TestMain(m *testing.M) {
	if flag.Parse(); testing.Short() {
		fmt.Println("skipped with -short: these tests start real servers")
		os.Exit(0)
	}
	code := m.Run()
	if realHub != nil {
		realHub.Close()
	}
	os.Exit(code)
}

// The upstream hub, started by the first test that needs it and shared by
// every test here; TestMain stops it.
var (
	realHubOnce sync.Once
	realHub     *realkoji.Hub
	realHubErr  error
)

// botUser is the Koji user of the bot in these tests.
const botUser = "kojibot"

// upstreamHub returns the shared hub with a fresh database.
func upstreamHub(t *testing.T) *realkoji.Hub {
	t.Helper()
	realHubOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		realHub, realHubErr = realkoji.Start(ctx)
		if realHubErr == nil {
			// The bot may log in its callers (act_as_caller), by Kerberos
			// and by certificate.
			realHubErr = realHub.AllowProxy(ctx, []string{botUser}, []string{botUser})
		}
	})
	if realHubErr != nil {
		// A missing package or Koji source is a failure, never a skip.
		t.Fatalf("cannot start the Koji hub: %v", realHubErr)
	}
	if err := realHub.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	return realHub
}

// seededHub returns the shared hub, reset and seeded with the bot's user
// (with perms) and s.
func seededHub(t *testing.T, s realkoji.Seed, perms ...string) *realkoji.Hub {
	t.Helper()
	hub := upstreamHub(t)
	if s.Users == nil {
		s.Users = map[string][]string{}
	}
	if perms == nil {
		perms = []string{}
	}
	s.Users[botUser] = perms
	if _, err := hub.Seed(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return hub
}

// certClient is a Client of hub logging in by certificate as botUser.
func certClient(t *testing.T, hub *realkoji.Hub, mod func(*Options)) *Client {
	t.Helper()
	pem, err := hub.Cert(botUser)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{URL: hub.URL, CAFile: hub.CACert(), Auth: AuthCertificate, CertFile: pem, Logger: testLogger(t)}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// hubDB opens the hub's database as its superuser, closed when the test
// ends.
func hubDB(t *testing.T, hub *realkoji.Hub) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), hub.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// scalar runs a one-value query in the hub's database.
func scalar[T any](t *testing.T, db *pgx.Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := db.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
