package kojidb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestEveryCallHasADeadline: a database that accepts connections and never
// answers (a hung server) fails a call once callTimeout passes, even for a
// caller without a deadline of its own, instead of holding it for the
// connect timeout or forever.
func TestEveryCallHasADeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(held)
				return
			}
			held <- c // never answered, never closed until the end
		}
	}()
	defer func() {
		ln.Close()
		for c := range held {
			c.Close()
		}
	}()
	old := callTimeout
	callTimeout = 300 * time.Millisecond
	defer func() { callTimeout = old }()

	db, err := Open(context.Background(), "postgres://kojibot@"+ln.Addr().String()+"/koji?sslmode=disable&connect_timeout=60", "kojibot", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	_, err = db.Hosts(context.Background())
	took := time.Since(start)
	if err == nil {
		t.Fatal("Hosts on a hung database succeeded")
	}
	// Two attempts of callTimeout each, with room for a busy machine; the
	// connect timeout (60 s) is what a call without a deadline would wait.
	if took > 20*time.Second {
		t.Errorf("Hosts on a hung database returned after %s, want about %s", took, 2*callTimeout)
	}
}

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

// withOptions adds a libpq options parameter (e.g. "-c TimeZone=X") to a
// DSN URL.
func withOptions(t *testing.T, dsn, options string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	// %20 for spaces: libpq and pgx take a "+" in a URL literally.
	u.RawQuery += "&options=" + strings.ReplaceAll(url.QueryEscape(options), "+", "%20")
	return u.String()
}

var roleSeq int

// ownRole gives the database a role of its own for the bot (the documented
// grants), so that a role setting changes no other test's sessions, and
// returns its name and DSN.
func ownRole(t *testing.T, dsns pgsql.DSNs) (string, string) {
	t.Helper()
	roleSeq++
	role := fmt.Sprintf("kojibot_tz%d", roleSeq)
	dsn, err := dsns.GrantRole(context.Background(), cluster, role, "tz-role-secret")
	if err != nil {
		t.Fatal(err)
	}
	return role, dsn
}

// checkinAge opens dsn with opts and returns ppc1's check-in age, which the
// seed wrote 10 seconds before in the database's default zone.
func checkinAge(t *testing.T, dsn string, opts ...Option) (time.Duration, error) {
	t.Helper()
	db, err := Open(context.Background(), dsn, "kojibot", testLogger(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h, err := db.Host(context.Background(), "ppc1.fedora.redhat.com")
	return h.CheckinAge, err
}

// TestHubZoneIgnoresTheSession: on a schema whose check-ins are tz-naive
// (written in the hub's zone), the bot reads them in koji.db_timezone or,
// without it, in the database's default zone (ALTER DATABASE … SET
// timezone, else the server's), never in a zone its own session was given:
// a TimeZone in the DSN's options, or the bot's role's own setting (ALTER
// ROLE … SET timezone, with or without IN DATABASE). Against the real
// PostgreSQL.
func TestHubZoneIgnoresTheSession(t *testing.T) {
	const sessionZone = "Pacific/Auckland" // far from every zone below
	ctx := context.Background()
	for _, dbZone := range []string{"Asia/Kolkata", ""} { // "": the cluster's default, pgsql.TimeZone
		t.Run("db="+dbZone, func(t *testing.T) {
			t.Setenv("PGTZ", "")
			dsns, _ := newKojiIn(t, pgsql.Koji116, dbZone)

			t.Run("dsn options", func(t *testing.T) {
				for _, opt := range []string{"-c TimeZone=" + sessionZone, "-ctimezone=" + sessionZone,
					"--TimeZone=" + sessionZone, "-c search_path=public -c TimeZone=" + sessionZone} {
					age, err := checkinAge(t, withOptions(t, dsns.Kojibot, opt))
					if err != nil {
						t.Fatal(err)
					}
					near(t, "check-in age with options "+opt, age, 10*time.Second)
				}
			})
			t.Run("role in database", func(t *testing.T) {
				role, dsn := ownRole(t, dsns)
				if _, err := dsns.Exec(ctx, fmt.Sprintf("ALTER ROLE %s IN DATABASE %s SET timezone = '%s'",
					role, dsns.Database, sessionZone)); err != nil {
					t.Fatal(err)
				}
				age, err := checkinAge(t, dsn)
				if dbZone == "" {
					// The server's own setting is hidden from a role
					// with a zone of its own: say so, never guess.
					if !errors.Is(err, ErrHubZoneUnknown) {
						t.Fatalf("Host: %v, want ErrHubZoneUnknown", err)
					}
				} else {
					if err != nil {
						t.Fatal(err)
					}
					near(t, "check-in age with the role's zone", age, 10*time.Second)
				}
				// koji.db_timezone always wins.
				zone := dbZone
				if zone == "" {
					zone = pgsql.TimeZone
				}
				age, err = checkinAge(t, withOptions(t, dsn, "-c TimeZone="+sessionZone), WithHubTimeZone(zone))
				if err != nil {
					t.Fatal(err)
				}
				near(t, "check-in age with koji.db_timezone", age, 10*time.Second)
			})
			if dbZone == "" {
				return
			}
			t.Run("role", func(t *testing.T) {
				role, dsn := ownRole(t, dsns)
				if _, err := dsns.Exec(ctx, fmt.Sprintf("ALTER ROLE %s SET timezone = '%s'", role, sessionZone)); err != nil {
					t.Fatal(err)
				}
				age, err := checkinAge(t, withOptions(t, dsn, "-c TimeZone=Asia/Tokyo"))
				if err != nil {
					t.Fatal(err)
				}
				near(t, "check-in age with the role's zone and options", age, 10*time.Second)
			})
		})
	}
}

// TestHubZoneUnknownOnlyMattersWhenNaive: when the database's default zone
// is hidden by the role's own setting, schemas whose times carry their zone
// are read as usual.
func TestHubZoneUnknownOnlyMattersWhenNaive(t *testing.T) {
	ctx := context.Background()
	t.Setenv("PGTZ", "")
	dsns, _ := newKojiIn(t, pgsql.KojiCurrent, "")
	role, dsn := ownRole(t, dsns)
	if _, err := dsns.Exec(ctx, fmt.Sprintf("ALTER ROLE %s IN DATABASE %s SET timezone = 'Pacific/Auckland'", role, dsns.Database)); err != nil {
		t.Fatal(err)
	}
	age, err := checkinAge(t, dsn)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "check-in age", age, 10*time.Second)
}

// TestWithoutTimeZone: only the switches that set TimeZone are dropped from
// a libpq options string; the others keep their escapes.
func TestWithoutTimeZone(t *testing.T) {
	for in, want := range map[string]string{
		"-c TimeZone=UTC":                      "",
		"-cTimeZone=UTC  --timezone=UTC":       "",
		"-c time-zone=UTC":                     "-c time-zone=UTC", // not a TimeZone: the server refuses it itself
		"--time_zone=UTC -c geqo=off":          "--time_zone=UTC -c geqo=off",
		`-c search_path=a\ b -c TimeZone=X\ Y`: `-c search_path=a\ b`,
		"-c statement_timeout=5s\t-c TIMEZONE=Europe/Paris -c lock_timeout=1s": "-c statement_timeout=5s -c lock_timeout=1s",
		`-c application_name=x\\y`: `-c application_name=x\\y`,
		"-c":                       "-c",
	} {
		if got := withoutTimeZone(in); got != want {
			t.Errorf("withoutTimeZone(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestHubTimeZoneOption reads tz-naive check-ins in koji.db_timezone when it
// is set, even when the database's own setting differs (a hub whose httpd
// runs in another zone than PostgreSQL's default), and in the database's
// own zone when it is empty.
func TestHubTimeZoneOption(t *testing.T) {
	ctx := context.Background()
	for _, gen := range []pgsql.Generation{pgsql.Koji16, pgsql.Koji116} {
		t.Run(gen.String(), func(t *testing.T) {
			t.Setenv("PGTZ", "Asia/Tokyo")
			const host = "ppc2.fedora.redhat.com"
			// The hub wrote its local time (New York) into the tz-naive
			// column; the database's own zone says UTC.
			dsns, _ := newKojiIn(t, gen, "UTC")
			checkin := time.Now().Add(-20 * time.Minute)
			naive := checkin.In(mustZone(t, "America/New_York")).Format("2006-01-02 15:04:05.999999")
			if _, err := dsns.Exec(ctx, `UPDATE sessions SET update_time = $2::timestamp
				WHERE user_id = (SELECT user_id FROM host WHERE name = $1)
				AND update_time = (SELECT max(update_time) FROM sessions s JOIN host h ON h.user_id = s.user_id WHERE h.name = $1)`,
				host, naive); err != nil {
				t.Fatal(err)
			}
			db, err := Open(ctx, dsns.Kojibot, "kojibot", testLogger(t), WithHubTimeZone("America/New_York"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			h, err := db.Host(ctx, host)
			if err != nil {
				t.Fatal(err)
			}
			near(t, "CheckinAge with koji.db_timezone America/New_York", h.CheckinAge, 20*time.Minute)

			// Without the option the database's zone (UTC) is used: the
			// check-in is off by New York's UTC offset, which shows that
			// the option is what made the difference.
			db2, err := Open(ctx, dsns.Kojibot, "kojibot", testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db2.Close()
			h2, err := db2.Host(ctx, host)
			if err != nil {
				t.Fatal(err)
			}
			_, offset := checkin.In(mustZone(t, "America/New_York")).Zone()
			near(t, "CheckinAge read in UTC", h2.CheckinAge, 20*time.Minute-time.Duration(offset)*time.Second)
		})
	}
}

// TestSchemaTooOld: a Koji 1.3 schema (host without description and
// comment; external_repo, new in 1.3) and an older one are refused on every
// call with an error naming the version, and nothing is written.
func TestSchemaTooOld(t *testing.T) {
	ctx := context.Background()
	dsns, _ := newKojiIn(t, pgsql.Koji16, "")
	if _, err := dsns.Exec(ctx, "ALTER TABLE host DROP COLUMN description, DROP COLUMN comment"); err != nil {
		t.Fatal(err)
	}
	open := func() *DB {
		db, err := Open(ctx, dsns.Kojibot, "kojibot", testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		return db
	}
	db := open()
	if _, err := db.Generation(ctx); !errors.Is(err, ErrSchemaTooOld) || !strings.Contains(err.Error(), "Koji 1.2 or older") {
		t.Errorf("Generation without external_repo: %v, want ErrSchemaTooOld naming Koji 1.2 or older", err)
	}
	if _, err := dsns.Exec(ctx, "CREATE TABLE external_repo (id SERIAL NOT NULL PRIMARY KEY, name TEXT UNIQUE NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	db = open()
	calls := map[string]func() error{
		"Generation":       func() error { _, err := db.Generation(ctx); return err },
		"Hosts":            func() error { _, err := db.Hosts(ctx); return err },
		"Host":             func() error { _, err := db.Host(ctx, "ppc1.fedora.redhat.com"); return err },
		"SetCapacity":      func() error { _, _, err := db.SetCapacity(ctx, "ppc1.fedora.redhat.com", 5); return err },
		"SetEnabled":       func() error { _, _, err := db.SetEnabled(ctx, "ppc1.fedora.redhat.com", false, "x"); return err },
		"ActiveBuildroots": func() error { _, err := db.ActiveBuildroots(ctx, "ppc1.fedora.redhat.com"); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrSchemaTooOld) || !strings.Contains(err.Error(), "Koji 1.3") {
			t.Errorf("%s on a Koji 1.3 schema: %v, want ErrSchemaTooOld naming Koji 1.3", name, err)
		}
	}
	if n := scalar[int64](t, dsns, "SELECT count(*) FROM host WHERE capacity <> 2 AND name = 'ppc1.fedora.redhat.com'"); n != 0 {
		t.Errorf("a too-old schema was written to")
	}
}
