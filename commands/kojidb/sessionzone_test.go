package kojidb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
)

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
