package pgsql

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

//go:embed schema/versioned.sql
var versionedSQL string

//go:embed schema/legacy.sql
var legacySQL string

// The schemas written from upstream's schema.sql of a release, one per
// generation that differs in what kojibot reads or writes.
var (
	//go:embed schema/koji-1.6.sql
	koji16SQL string
	//go:embed schema/koji-1.15.sql
	koji115SQL string
	//go:embed schema/koji-1.16.sql
	koji116SQL string
	//go:embed schema/koji-1.32.sql
	koji132SQL string
	//go:embed schema/koji-1.35.sql
	koji135SQL string
)

// Generation is the shape of the Koji schema a database is created with.
type Generation int

// The Koji schema generations the harness can create.
const (
	// Legacy is Koji before 1.16: capacity, arches and enabled live in host
	// and are edited in place; the last check-in is the newest
	// sessions.update_time of the host's user.
	Legacy Generation = iota + 1
	// Versioned116 is Koji 1.16 to 1.32: host_config is versioned but host
	// has no update_time yet (check-in read from sessions).
	Versioned116
	// Versioned is Koji 1.33 and later: host_config versioned and
	// host.update_time written by every check-in.
	Versioned

	// The generations below are written from upstream's schema.sql of the
	// release they name (koji-project/koji), keeping its NOT NULLs, CHECKs
	// and foreign keys for the tables kojibot touches.

	// Koji16 is Koji 1.6 (the SOP's year, 2011): host carries capacity,
	// description and comment; buildroot carries host_id, task_id and state
	// (no standard_buildroot); timestamps are tz-naive, in the hub's zone.
	Koji16
	// Koji110 is Koji 1.10, the last release before standard_buildroot; its
	// tables are Koji16's.
	Koji110
	// Koji115 is Koji 1.11 to 1.15: standard_buildroot, host still legacy,
	// sessions tz-naive.
	Koji115
	// Koji116 is Koji 1.16 to 1.21: host_config versioned, sessions still
	// tz-naive, no host.update_time.
	Koji116
	// Koji132 is Koji 1.22 to 1.32: sessions TIMESTAMPTZ, no
	// host.update_time.
	Koji132
	// KojiCurrent is Koji 1.33 and later (written from 1.35.3):
	// host.update_time.
	KojiCurrent
)

// UpstreamGenerations are the generations written from upstream's schemas,
// oldest first.
var UpstreamGenerations = []Generation{Koji16, Koji110, Koji115, Koji116, Koji132, KojiCurrent}

// genInfo is what differs between generations, for the harness.
type genInfo struct {
	schema            *string
	hostConfig        bool // host_config versioned (else host edited in place)
	hostUpdateTime    bool // host.update_time is the check-in
	standardBuildroot bool // standard_buildroot exists (else buildroot has host_id, state)
	upstream          bool // written from upstream: task, permissions, channels
}

func (g Generation) info() genInfo {
	switch g {
	case Legacy:
		return genInfo{schema: &legacySQL, standardBuildroot: true}
	case Versioned116:
		return genInfo{schema: &versionedSQL, hostConfig: true, standardBuildroot: true}
	case Versioned:
		return genInfo{schema: &versionedSQL, hostConfig: true, hostUpdateTime: true, standardBuildroot: true}
	case Koji16, Koji110:
		return genInfo{schema: &koji16SQL, upstream: true}
	case Koji115:
		return genInfo{schema: &koji115SQL, standardBuildroot: true, upstream: true}
	case Koji116:
		return genInfo{schema: &koji116SQL, hostConfig: true, standardBuildroot: true, upstream: true}
	case Koji132:
		return genInfo{schema: &koji132SQL, hostConfig: true, standardBuildroot: true, upstream: true}
	case KojiCurrent:
		return genInfo{schema: &koji135SQL, hostConfig: true, hostUpdateTime: true, standardBuildroot: true, upstream: true}
	}
	return genInfo{}
}

// String names the generation.
func (g Generation) String() string {
	switch g {
	case Legacy:
		return "legacy (<1.16)"
	case Versioned116:
		return "versioned (1.16-1.32)"
	case Versioned:
		return "versioned (1.33+)"
	case Koji16:
		return "koji-1.6"
	case Koji110:
		return "koji-1.10"
	case Koji115:
		return "koji-1.15"
	case Koji116:
		return "koji-1.16-1.21"
	case Koji132:
		return "koji-1.32"
	case KojiCurrent:
		return "koji-1.35"
	}
	return fmt.Sprintf("Generation(%d)", int(g))
}

// The roles CreateKojiDB creates (once per cluster) and their passwords. The
// cluster trusts loopback connections, so the passwords are carried in the
// DSNs but not checked; they exist so that tests can assert that no error
// message ever shows them.
const (
	HubRole     = "koji"
	HubPassword = "koji-hub-secret"
	BotRole     = "kojibot"
	BotPassword = "kojibot-db-secret"
)

// DSNs are the connection URLs of one Koji database made by CreateKojiDB,
// with the generation it was made with. Its methods change the database as
// the tests need, through the Admin DSN.
type DSNs struct {
	Kojibot  string // as the bot's role (BotRole)
	Koji     string // as the hub's role (HubRole), the tables' owner
	Admin    string // as the cluster superuser
	Database string
	Gen      Generation
	// TimeZone is the database's own timezone setting (Seed.TimeZone), in
	// which the hub writes tz-naive columns; "" is the cluster's default.
	TimeZone string
}

// SeedHost is one build host to create.
type SeedHost struct {
	Name        string
	Arches      string
	Capacity    float64
	Enabled     bool
	Ready       bool
	TaskLoad    float64
	Description string
	Comment     string
	// CheckinAge is how long before the seeding the host last checked in:
	// host.update_time in Versioned, the newest sessions.update_time of the
	// host's user otherwise.
	CheckinAge time.Duration
	// NeverCheckedIn leaves host.update_time NULL and the host's user without
	// sessions.
	NeverCheckedIn bool
}

// Seed is the content of a new Koji database.
type Seed struct {
	// BotUser is the Koji user the bot acts as (koji.user), created as a
	// normal user (usertype 0) when not empty.
	BotUser string
	// BotPerms are the Koji permissions BotUser is granted (active
	// user_perms rows created by AdminUser), e.g. "admin" or "host".
	BotPerms []string
	// AdminUser is the normal user recorded as the creator of the initial
	// host_config rows; it must not be empty.
	AdminUser string
	// Hosts get a users row each (usertype 1, named after the host), a host
	// row, and an active host_config row in the versioned generations.
	Hosts []SeedHost
	// Tag is the tag of the repo that AddBuildroot's buildroots use.
	Tag string
	// TimeZone, when not empty, becomes the database's own timezone setting
	// (ALTER DATABASE ... SET timezone): the zone of the hub's sessions, in
	// which it writes tz-naive timestamps.
	TimeZone string
}

// DefaultSeed is the farm of the Koji SOP: ppc1-ppc3 (ppc3 with capacity 4
// and load 1.5), xenbuilder1-xenbuilder4, two x86-01 hosts in different
// data centres (so the short name "x86-01" is ambiguous), and one disabled,
// long-silent host x86-02.phx2.fedoraproject.org. Every enabled host checked
// in 10 seconds before seeding. The bot's Koji user is "kojibot" and the
// initial configs were made by "kojiadmin".
func DefaultSeed() Seed {
	fresh := 10 * time.Second
	h := func(name, arches string, capacity, load float64) SeedHost {
		return SeedHost{Name: name, Arches: arches, Capacity: capacity, Enabled: true, Ready: true,
			TaskLoad: load, CheckinAge: fresh}
	}
	disabled := SeedHost{Name: "x86-02.phx2.fedoraproject.org", Arches: "i386 x86_64", Capacity: 2,
		Enabled: false, Ready: false, Comment: "retired with phx2", CheckinAge: 30 * 24 * time.Hour}
	return Seed{
		BotUser:   "kojibot",
		BotPerms:  []string{"admin"},
		AdminUser: "kojiadmin",
		Tag:       "dist-f40-build",
		Hosts: []SeedHost{
			h("ppc1.fedora.redhat.com", "ppc ppc64", 2, 0),
			h("ppc2.fedora.redhat.com", "ppc ppc64", 2, 0.5),
			h("ppc3.fedora.redhat.com", "ppc ppc64", 4, 1.5),
			h("xenbuilder1.fedora.redhat.com", "i386 x86_64", 2, 0),
			h("xenbuilder2.fedora.redhat.com", "i386 x86_64", 2, 1),
			h("xenbuilder3.fedora.redhat.com", "i386 x86_64", 2, 0),
			h("xenbuilder4.fedora.redhat.com", "i386 x86_64", 2, 0),
			h("x86-01.phx2.fedoraproject.org", "i386 x86_64", 2, 0),
			h("x86-01.iad2.fedoraproject.org", "x86_64 i686", 3, 0.25),
			disabled,
		},
	}
}

// CreateKojiDB creates database name owned by the hub's role, the roles
// HubRole and BotRole if the cluster does not have them yet, the Koji schema
// of generation gen and the seed's rows, and returns the DSNs to reach it.
//
// The bot's role gets what kojibot needs and no more, by running
// docs/koji-db-grants.sql (the script the README gives operators), so the
// documented grants are the tested ones.
func (c *Cluster) CreateKojiDB(ctx context.Context, name string, gen Generation, seed Seed) (DSNs, error) {
	if gen < Legacy || gen > KojiCurrent {
		return DSNs{}, fmt.Errorf("pgsql: unknown generation %d", int(gen))
	}
	if seed.AdminUser == "" {
		return DSNs{}, errors.New("pgsql: seed has no AdminUser")
	}
	if err := c.ensureRoles(ctx); err != nil {
		return DSNs{}, err
	}
	admin, err := pgx.Connect(ctx, c.AdminDSN("postgres"))
	if err != nil {
		return DSNs{}, fmt.Errorf("pgsql: %w", err)
	}
	err = execFormatted(ctx, admin, "CREATE DATABASE %I OWNER %I TEMPLATE template0", name, HubRole)
	if err == nil && seed.TimeZone != "" {
		err = execFormatted(ctx, admin, "ALTER DATABASE %I SET timezone TO %L", name, seed.TimeZone)
	}
	admin.Close(context.Background())
	if err != nil {
		return DSNs{}, fmt.Errorf("pgsql: create database %s: %w", name, err)
	}

	d := DSNs{
		Kojibot:  c.dsn(BotRole, BotPassword, name),
		Koji:     c.dsn(HubRole, HubPassword, name),
		Admin:    c.AdminDSN(name),
		Database: name,
		Gen:      gen,
		TimeZone: seed.TimeZone,
	}
	conn, err := pgx.Connect(ctx, d.Admin)
	if err != nil {
		return DSNs{}, fmt.Errorf("pgsql: %w", err)
	}
	defer conn.Close(context.Background())
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// The hub's role owns the Koji tables, as on a real hub.
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{HubRole}.Sanitize()); err != nil {
			return err
		}
		if err := d.hubZone(ctx, tx); err != nil {
			return err
		}
		if err := loadSchema(ctx, tx, gen); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		if err := grantBot(ctx, tx, gen); err != nil {
			return fmt.Errorf("grants: %w", err)
		}
		if err := loadSeed(ctx, tx, gen, seed); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		return nil
	})
	if err != nil {
		return DSNs{}, fmt.Errorf("pgsql: fill %s: %w", name, err)
	}
	return d, nil
}

// ensureRoles creates the hub's and the bot's roles unless they exist.
func (c *Cluster) ensureRoles(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	conn, err := pgx.Connect(ctx, c.AdminDSN("postgres"))
	if err != nil {
		return fmt.Errorf("pgsql: %w", err)
	}
	defer conn.Close(context.Background())
	roles := []struct{ name, password string }{{HubRole, HubPassword}, {BotRole, BotPassword}}
	for _, r := range roles {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", r.name).Scan(&exists); err != nil {
			return fmt.Errorf("pgsql: role %s: %w", r.name, err)
		}
		if exists {
			continue
		}
		if err := execFormatted(ctx, conn, "CREATE ROLE %I LOGIN PASSWORD %L", r.name, r.password); err != nil {
			return fmt.Errorf("pgsql: create role %s: %w", r.name, err)
		}
		// The bot's role memberships (pg_read_all_stats,
		// pg_signal_backend) come with docs/koji-db-grants.sql, applied to
		// every database by grantBot.
	}
	return nil
}

// execFormatted has the server quote the arguments into a utility statement
// (which cannot take bind parameters) with format(), then runs it.
func execFormatted(ctx context.Context, conn *pgx.Conn, format string, args ...any) error {
	q := "SELECT format($1::text"
	params := []any{format}
	for i, a := range args {
		q += fmt.Sprintf(", $%d::text", i+2)
		params = append(params, a)
	}
	q += ")"
	var stmt string
	if err := conn.QueryRow(ctx, q, params...).Scan(&stmt); err != nil {
		return err
	}
	_, err := conn.Exec(ctx, stmt)
	return err
}

// hubZone makes tx run in the database's own zone (Seed.TimeZone), the
// zone of the hub's sessions, whatever PGTZ the test process has. Without a
// Seed.TimeZone the connection's zone is left as it is.
func (d DSNs) hubZone(ctx context.Context, tx pgx.Tx) error {
	if d.TimeZone == "" {
		return nil
	}
	_, err := tx.Exec(ctx, "SELECT set_config('TimeZone', $1, true)", d.TimeZone)
	return err
}

func loadSchema(ctx context.Context, tx pgx.Tx, gen Generation) error {
	schema := *gen.info().schema
	// No arguments: pgx sends it with the simple protocol, which runs every
	// statement of the file.
	if _, err := tx.Exec(ctx, schema); err != nil {
		return err
	}
	if gen == Versioned116 {
		if _, err := tx.Exec(ctx, "ALTER TABLE host DROP COLUMN update_time"); err != nil {
			return err
		}
	}
	return nil
}

// grantBot gives the bot's role what docs/koji-db-grants.sql grants, by
// running that file (as the superuser: it grants role memberships), so that
// the documented grants are the tested ones.
func grantBot(ctx context.Context, tx pgx.Tx, gen Generation) error {
	if err := ensurePermissions(ctx, tx, gen); err != nil {
		return err
	}
	return applyGrants(ctx, tx, BotRole, HubRole)
}

func loadSeed(ctx context.Context, tx pgx.Tx, gen Generation, seed Seed) error {
	addUser := func(name string, usertype int) (int64, error) {
		var id int64
		err := tx.QueryRow(ctx, "INSERT INTO users (name, status, usertype) VALUES ($1, 0, $2) RETURNING id", name, usertype).Scan(&id)
		if err != nil {
			return 0, fmt.Errorf("user %s: %w", name, err)
		}
		return id, nil
	}
	adminID, err := addUser(seed.AdminUser, 0)
	if err != nil {
		return err
	}
	if seed.BotUser != "" {
		botID, err := addUser(seed.BotUser, 0)
		if err != nil {
			return err
		}
		for _, perm := range seed.BotPerms {
			if _, err := tx.Exec(ctx, `INSERT INTO user_perms (user_id, perm_id, creator_id)
				SELECT $1, id, $3 FROM permissions WHERE name = $2`, botID, perm, adminID); err != nil {
				return fmt.Errorf("permission %s of %s: %w", perm, seed.BotUser, err)
			}
		}
	}
	tag := seed.Tag
	if tag == "" {
		tag = "dist-f40-build"
	}
	if _, err := tx.Exec(ctx, `INSERT INTO tag (name) VALUES ($1)`, tag); err != nil {
		return fmt.Errorf("tag: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO repo (tag_id, state) SELECT id, 1 FROM tag WHERE name = $1`, tag); err != nil {
		return fmt.Errorf("repo: %w", err)
	}
	for _, h := range seed.Hosts {
		uid, err := addUser(h.Name, 1)
		if err != nil {
			return err
		}
		// age in seconds, NULL when the host never checked in.
		var age *float64
		if !h.NeverCheckedIn {
			s := h.CheckinAge.Seconds()
			age = &s
		}
		var hostID int64
		info := gen.info()
		switch {
		case !info.hostConfig:
			err = tx.QueryRow(ctx, `INSERT INTO host (user_id, name, arches, task_load, capacity, description, comment, ready, enabled)
				VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''), NULLIF($7, ''), $8, $9) RETURNING id`,
				uid, h.Name, h.Arches, h.TaskLoad, h.Capacity, h.Description, h.Comment, h.Ready, h.Enabled).Scan(&hostID)
		case !info.hostUpdateTime:
			err = tx.QueryRow(ctx, `INSERT INTO host (user_id, name, task_load, ready) VALUES ($1, $2, $3, $4) RETURNING id`,
				uid, h.Name, h.TaskLoad, h.Ready).Scan(&hostID)
		default:
			err = tx.QueryRow(ctx, `INSERT INTO host (user_id, name, task_load, ready, update_time)
				VALUES ($1, $2, $3, $4, now() - make_interval(secs => $5::float8)) RETURNING id`,
				uid, h.Name, h.TaskLoad, h.Ready, age).Scan(&hostID)
		}
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		if info.hostConfig {
			_, err = tx.Exec(ctx, `INSERT INTO host_config (host_id, arches, capacity, description, comment, enabled, creator_id)
				VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), $6, $7)`,
				hostID, h.Arches, h.Capacity, h.Description, h.Comment, h.Enabled, adminID)
			if err != nil {
				return fmt.Errorf("host_config %s: %w", h.Name, err)
			}
		}
		if age == nil {
			continue
		}
		// An expired session from the day before and the current one, whose
		// update_time is the last check-in.
		_, err = tx.Exec(ctx, `INSERT INTO sessions (user_id, expired, key, authtype, hostip, callnum, start_time, update_time)
			VALUES ($1, TRUE, md5(random()::text), 2, '127.0.0.1', 7, now() - make_interval(secs => $2::float8 + 90000),
			        now() - make_interval(secs => $2::float8 + 86400)),
			       ($1, FALSE, md5(random()::text), 2, '127.0.0.1', 42, now() - make_interval(secs => $2::float8 + 3600),
			        now() - make_interval(secs => $2::float8))`, uid, *age)
		if err != nil {
			return fmt.Errorf("sessions %s: %w", h.Name, err)
		}
	}
	return nil
}

// SetUpdateTime makes t the last check-in of host: host.update_time in
// Versioned and KojiCurrent; otherwise the newest session of the host's user gets t and no
// session of that user is left newer than t (one is created if it has none).
func (d DSNs) SetUpdateTime(ctx context.Context, host string, t time.Time) error {
	return d.withTx(ctx, func(tx pgx.Tx) error {
		if d.Gen.info().hostUpdateTime {
			tag, err := tx.Exec(ctx, "UPDATE host SET update_time = $2 WHERE name = $1", host, t)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("no host %q", host)
			}
			return nil
		}
		var uid int64
		if err := tx.QueryRow(ctx, "SELECT user_id FROM host WHERE name = $1", host).Scan(&uid); err != nil {
			return fmt.Errorf("host %q: %w", host, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE sessions SET update_time = $2::timestamptz
			WHERE user_id = $1 AND update_time::timestamptz > $2::timestamptz`, uid, t); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE sessions SET update_time = $2::timestamptz WHERE id =
			(SELECT id FROM sessions WHERE user_id = $1 ORDER BY update_time DESC, id DESC LIMIT 1)`, uid, t)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			_, err = tx.Exec(ctx, `INSERT INTO sessions (user_id, key, authtype, hostip, callnum, start_time, update_time)
				VALUES ($1, md5(random()::text), 2, '127.0.0.1', 1, $2::timestamptz, $2::timestamptz)`, uid, t)
		}
		return err
	})
}

// AddBuildroot creates buildroot id on host in the given state (0 INIT,
// 1 WAITING, 2 BUILDING, 3 EXPIRED), in the seed's repo, as the hub does:
// in the generations written from upstream, for a real task row (a buildArch
// task of the admin user, OPEN for an active buildroot, CLOSED for an
// expired one) with a buildroot row holding host_id, task_id and state
// before Koji 1.11, and from 1.11 a buildroot row (br_type 0, chroot
// container, host_os/host_arch) plus its standard_buildroot row.
func (d DSNs) AddBuildroot(ctx context.Context, host string, id int64, state int) error {
	info := d.Gen.info()
	return d.withTx(ctx, func(tx pgx.Tx) error {
		var hostID int64
		if err := tx.QueryRow(ctx, "SELECT id FROM host WHERE name = $1", host).Scan(&hostID); err != nil {
			return fmt.Errorf("host %q: %w", host, err)
		}
		taskID := id + 100000
		if info.upstream {
			taskState := 1 // OPEN
			if state == 3 {
				taskState = 2 // CLOSED
			}
			err := tx.QueryRow(ctx, `INSERT INTO task (state, channel_id, host_id, owner, method, arch, priority, weight)
				SELECT $1, (SELECT id FROM channels WHERE name = 'default'), $2,
					(SELECT min(id) FROM users WHERE usertype = 0), 'buildArch', 'x86_64', 19, 1.5
				RETURNING id`, taskState, hostID).Scan(&taskID)
			if err != nil {
				return fmt.Errorf("task: %w", err)
			}
		}
		if !info.standardBuildroot {
			_, err := tx.Exec(ctx, `INSERT INTO buildroot (id, host_id, repo_id, arch, task_id, state, retire_event)
				VALUES ($1, $2, (SELECT min(id) FROM repo), 'x86_64', $3, $4::int, CASE WHEN $4::int = 3 THEN get_event() END)`,
				id, hostID, taskID, state)
			return err
		}
		q := "INSERT INTO buildroot (id, br_type, host_os, host_arch) VALUES ($1, 0, 'fedora', 'x86_64')"
		if info.upstream {
			q = `INSERT INTO buildroot (id, br_type, container_type, container_arch, host_os, host_arch)
				VALUES ($1, 0, 'chroot', 'x86_64', 'fedora', 'x86_64')`
		}
		if _, err := tx.Exec(ctx, q, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO standard_buildroot (buildroot_id, host_id, repo_id, task_id, state, retire_event)
			VALUES ($1, $2, (SELECT min(id) FROM repo), $3, $4::int, CASE WHEN $4::int = 3 THEN get_event() END)`,
			id, hostID, taskID, state)
		return err
	})
}

// Exec runs one statement on the database as the superuser, for tests that
// need to reshape it.
func (d DSNs) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	conn, err := pgx.Connect(ctx, d.Admin)
	if err != nil {
		return pgconn.CommandTag{}, fmt.Errorf("pgsql: %w", err)
	}
	defer conn.Close(context.Background())
	tag, err := conn.Exec(ctx, sql, args...)
	if err != nil {
		return tag, fmt.Errorf("pgsql: %w", err)
	}
	return tag, nil
}

func (d DSNs) withTx(ctx context.Context, f func(pgx.Tx) error) error {
	conn, err := pgx.Connect(ctx, d.Admin)
	if err != nil {
		return fmt.Errorf("pgsql: %w", err)
	}
	defer conn.Close(context.Background())
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := d.hubZone(ctx, tx); err != nil {
			return err
		}
		return f(tx)
	})
	if err != nil {
		return fmt.Errorf("pgsql: %s: %w", d.Database, err)
	}
	return nil
}
