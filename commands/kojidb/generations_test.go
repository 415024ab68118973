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

// upstreamGens are the generations written from upstream's schema.sql, with
// the generation kojidb must detect and whether it has standard_buildroot
// and tz-naive sessions.
var upstreamGens = []struct {
	harness           pgsql.Generation
	want              Generation
	standardBuildroot bool
	naiveSessions     bool
}{
	{pgsql.Koji16, Legacy, false, true},
	{pgsql.Koji110, Legacy, false, true},
	{pgsql.Koji115, Legacy, true, true},
	{pgsql.Koji116, Versioned116, true, true},
	{pgsql.Koji132, Versioned116, true, false},
	{pgsql.KojiCurrent, Versioned, true, false},
}

// zonePairs are the hub's zone (the database's own timezone setting) and
// the bot's (PGTZ), always different.
var zonePairs = []struct{ db, client string }{
	{"UTC", "Asia/Tokyo"},
	{"Asia/Tokyo", "UTC"},
	{"America/New_York", "Asia/Kolkata"},
}

// newKojiIn creates a database of generation gen with the default seed,
// the database's own timezone dbZone, and opens it as the bot with opts.
func newKojiIn(t *testing.T, gen pgsql.Generation, dbZone string, opts ...Option) (pgsql.DSNs, *DB) {
	t.Helper()
	return newKojiZones(t, gen, dbZone, "", opts...)
}

// newKojiZones is newKojiIn with the bot's own zone botZone (when not "")
// in its DSN's timezone parameter, where PGTZ would put it too: unlike
// t.Setenv("PGTZ"), it lets the test run in parallel.
func newKojiZones(t *testing.T, gen pgsql.Generation, dbZone, botZone string, opts ...Option) (pgsql.DSNs, *DB) {
	t.Helper()
	ctx := context.Background()
	seed := pgsql.DefaultSeed()
	seed.TimeZone = dbZone
	dsns, err := cluster.CreateKojiDB(ctx, fmt.Sprintf("koji_%d", dbSeq.Add(1)), gen, seed)
	if err != nil {
		t.Fatalf("CreateKojiDB %v: %v", gen, err)
	}
	dsn := dsns.Kojibot
	if botZone != "" {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("timezone", botZone)
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	db, err := Open(ctx, dsn, "kojibot", testLogger(t), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(db.Close)
	return dsns, db
}

// near fails unless got is within a minute of want.
func near(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if d := got - want; d < -time.Minute || d > time.Minute {
		t.Errorf("%s = %v, want about %v", what, got, want)
	}
}

// TestGenerationsReadAndWrite runs Hosts, Host, SetCapacity, SetEnabled,
// ActiveBuildroots and the check-in age on every upstream generation, with
// the bot's zone (the DSN's timezone, as PGTZ sets it) different from the
// database's own zone: a check-in must not move by the zones' difference.
func TestGenerationsReadAndWrite(t *testing.T) {
	t.Parallel()
	seed := pgsql.DefaultSeed()
	for _, g := range upstreamGens {
		for _, z := range zonePairs[:2] {
			t.Run(fmt.Sprintf("%v/db=%s/bot=%s", g.harness, z.db, z.client), func(t *testing.T) {
				t.Parallel() // each in its own database
				ctx := context.Background()
				dsns, db := newKojiZones(t, g.harness, z.db, z.client)

				gen, err := db.Generation(ctx)
				if err != nil || gen != g.want {
					t.Fatalf("Generation = %v, %v; want %v", gen, err, g.want)
				}
				if f := db.features(); f.standardBuildroot != g.standardBuildroot || f.naiveSessions != g.naiveSessions {
					t.Errorf("features = %+v, want standard_buildroot %v, tz-naive sessions %v", f, g.standardBuildroot, g.naiveSessions)
				}

				hosts, err := db.Hosts(ctx)
				if err != nil || len(hosts) != len(seed.Hosts) {
					t.Fatalf("Hosts: %d, %v; want %d", len(hosts), err, len(seed.Hosts))
				}
				now := time.Now()
				for _, s := range seed.Hosts {
					h := hostByName(t, hosts, s.Name)
					if h.Arches != s.Arches || h.Capacity != s.Capacity || h.Enabled != s.Enabled || h.Comment != s.Comment {
						t.Errorf("%s = %+v, want seeded %+v", s.Name, h, s)
					}
					near(t, s.Name+" CheckinAge", h.CheckinAge, s.CheckinAge)
					near(t, s.Name+" now - LastCheckin", now.Sub(h.LastCheckin), s.CheckinAge)
				}

				// A check-in three hours ago, written as the hub writes it.
				const x86 = "x86-01.iad2.fedoraproject.org"
				if err := dsns.SetUpdateTime(ctx, x86, time.Now().Add(-3*time.Hour)); err != nil {
					t.Fatal(err)
				}
				h, err := db.Host(ctx, x86)
				if err != nil {
					t.Fatal(err)
				}
				near(t, "CheckinAge after a check-in 3h ago", h.CheckinAge, 3*time.Hour)
				near(t, "now - LastCheckin after a check-in 3h ago", time.Since(h.LastCheckin), 3*time.Hour)

				const ppc1 = "ppc1.fedora.redhat.com"
				before, after, err := db.SetCapacity(ctx, ppc1, 3.5)
				if err != nil || before.Capacity != 2 || after.Capacity != 3.5 {
					t.Fatalf("SetCapacity = %v -> %v, %v", before.Capacity, after.Capacity, err)
				}
				if h, err := db.Host(ctx, ppc1); err != nil || h.Capacity != 3.5 {
					t.Errorf("Host after SetCapacity: %v, %v", h.Capacity, err)
				}

				_, after, err = db.SetEnabled(ctx, ppc1, false, "disk full")
				if err != nil || after.Enabled || after.Comment != "disk full" {
					t.Fatalf("disable: %+v, %v", after, err)
				}
				_, after, err = db.SetEnabled(ctx, ppc1, true, "")
				if err != nil || !after.Enabled || after.Capacity != 3.5 {
					t.Fatalf("enable: %+v, %v", after, err)
				}

				const xen1 = "xenbuilder1.fedora.redhat.com"
				for id, state := range map[int64]int{13: 3, 10: 0, 12: 2, 11: 1} {
					if err := dsns.AddBuildroot(ctx, xen1, id, state); err != nil {
						t.Fatalf("AddBuildroot: %v", err)
					}
				}
				if err := dsns.AddBuildroot(ctx, "xenbuilder2.fedora.redhat.com", 20, 1); err != nil {
					t.Fatal(err)
				}
				ids, err := db.ActiveBuildroots(ctx, xen1)
				if err != nil || fmt.Sprint(ids) != "[10 11 12]" {
					t.Errorf("ActiveBuildroots = %v, %v; want [10 11 12]", ids, err)
				}
				if ids, err := db.ActiveBuildroots(ctx, ppc1); err != nil || len(ids) != 0 {
					t.Errorf("ActiveBuildroots of an idle host = %v, %v", ids, err)
				}
				if _, err := db.ActiveBuildroots(ctx, "ppc9.fedora.redhat.com"); !errors.Is(err, ErrNoHost) {
					t.Errorf("ActiveBuildroots of an unknown host: %v, want ErrNoHost", err)
				}
			})
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

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
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
