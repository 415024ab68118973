// Package kojidb reads and writes the Koji hub's PostgreSQL database for the
// bot: build hosts and their configuration (edited the way Koji's own editHost
// edits it), active buildroots, and the hub role's backends. It detects which
// generation of Koji's schema it talks to by itself.
package kojidb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Host is one Koji build host as the commands see it.
type Host struct {
	ID          int64
	Name        string
	Arches      string
	Capacity    float64
	TaskLoad    float64
	Ready       bool
	Enabled     bool
	Description string
	Comment     string
	LastCheckin time.Time // zero when unknown
	// CheckinAge is the database's now() minus LastCheckin, computed by the
	// database itself so that neither the bot's clock nor its time zone
	// matter; meaningful only when LastCheckin is not zero.
	CheckinAge time.Duration
	// ConfigEvent is the create_event of the host's active host_config row
	// (the event `koji list-history` shows); 0 in the legacy schema.
	ConfigEvent int64
}

// Generation is the shape of the Koji schema, as far as the bot cares.
type Generation int

// The schema generations the bot knows.
const (
	// Unknown means not detected yet.
	Unknown Generation = iota
	// Legacy is Koji 1.4 to 1.15: capacity, arches, enabled, description
	// and comment live in host and are edited in place; the last check-in is
	// the newest sessions.update_time of the host's user. Before 1.11 a
	// buildroot's host and state are in buildroot itself.
	Legacy
	// Versioned116 is Koji 1.16 to 1.32: host_config is versioned, but host
	// has no update_time, so the last check-in is read from sessions.
	Versioned116
	// Versioned is Koji 1.33 and later: host_config is versioned and
	// host.update_time is the last check-in.
	Versioned
)

// String names the generation for replies and logs.
func (g Generation) String() string {
	switch g {
	case Legacy:
		return "legacy (Koji 1.4-1.15)"
	case Versioned116:
		return "versioned (Koji 1.16-1.32)"
	case Versioned:
		return "versioned (Koji 1.33+)"
	}
	return "unknown"
}

// IsVersioned reports whether host configuration lives in the versioned
// host_config table.
func (g Generation) IsVersioned() bool { return g == Versioned116 || g == Versioned }

// Sentinel errors, to be tested with errors.Is. The errors this package
// returns never contain the DSN or its password.
var (
	// ErrNoHost: no Koji host has that exact name. It is wrapped with the name.
	ErrNoHost = errors.New("no such Koji host")
	// ErrBadCapacity: a capacity must be a finite number greater than 1
	// (Koji's own CHECK); nothing was sent to the database.
	ErrBadCapacity = errors.New("capacity must be a number greater than 1")
	// ErrUnavailable: the Koji database could not be reached, or the
	// connection was lost during the operation.
	ErrUnavailable = errors.New("Koji database unavailable")
	// ErrNoKojiUser: the Koji user the bot acts as (koji.user) has no row in
	// the users table, so no host change is made (the error is also a
	// *PermissionError wrapping ErrNotAllowed).
	ErrNoKojiUser = errors.New("Koji user (koji.user) not found in the Koji database")
	// ErrUnknownSchema: the database has neither Koji's legacy host table nor
	// host_config.
	ErrUnknownSchema = errors.New("not a Koji schema this bot knows (no host.capacity, no host_config)")
	// ErrSchemaTooOld: the Koji schema predates Koji 1.4 (host has no
	// description and comment, versioned tables record no creator_id); the
	// error names the version detected.
	ErrSchemaTooOld = errors.New("Koji schema too old (the bot needs Koji 1.4 or later)")
	// ErrNoStats: the bot's role cannot see other roles' backends in
	// pg_stat_activity (it needs pg_read_all_stats or pg_monitor).
	ErrNoStats = errors.New("the bot's database role cannot see other roles' backends (grant pg_read_all_stats)")
	// ErrHubZoneUnknown: the schema stores check-ins without a time zone
	// (Koji 1.21 and older), koji.db_timezone is empty, and the database's
	// default zone cannot be read because the bot's role has a timezone
	// setting of its own (ALTER ROLE … SET timezone) that hides the
	// server's; the reads refuse rather than guess.
	ErrHubZoneUnknown = errors.New("the hub's time zone is unknown: the bot's database role has its own timezone setting (ALTER ROLE ... SET timezone), which hides the server's; set koji.db_timezone, or ALTER DATABASE ... SET timezone")
)

var errClosed = errors.New("kojidb: closed")

// DB is the bot's handle on the Koji database: a small connection pool that
// connects lazily and reconnects by itself. It is safe for concurrent use.
type DB struct {
	pool     *pgxpool.Pool
	kojiUser string
	log      *slog.Logger
	secrets  []string // scrubbed from every error message
	closed   atomic.Bool

	mu      sync.Mutex
	gen     Generation // Unknown until detected on the current connections
	feat    features   // detected with gen
	lastGen Generation // last generation logged
	zone    string     // koji.db_timezone; "" means the database's default
	// zoneHidden: zone is empty and the newest connection could not learn
	// the database's default zone (see ErrHubZoneUnknown).
	zoneHidden atomic.Bool

	appName string          // the pool's application_name
	ownMu   sync.Mutex      // guards own
	own     map[uint32]bool // pids of the pool's backends
}

// DefaultMaxConns is the pool size used unless the DSN sets pool_max_conns:
// the bot needs few connections, and connection slots are what the hub runs
// out of.
const DefaultMaxConns = 4

// Option changes how Open connects.
type Option func(*DB)

// WithHubTimeZone names the IANA time zone (koji.db_timezone) the hub writes
// its TIMESTAMP WITHOUT TIME ZONE columns in (sessions.update_time until Koji
// 1.21); those columns are read as times in that zone. When zone is empty,
// or without this option, the database's default zone is used: its own
// setting (ALTER DATABASE ... SET timezone, or ALTER ROLE ALL ... SET), else
// the server's. A zone the bot's session alone would get is never used: the
// client's PGTZ, a timezone or "-c TimeZone=" option in the DSN, nor the
// bot's role's own setting (ALTER ROLE ... SET timezone), since the hub's
// sessions have none of them.
func WithHubTimeZone(zone string) Option { return func(d *DB) { d.zone = zone } }

// Open prepares a connection pool to the Koji database at dsn, acting as the
// Koji user kojiUser (koji.user) for versioned changes. It does no I/O: it
// fails only when dsn cannot be parsed, so the bot starts while the database
// is down and each call reports ErrUnavailable until it is back. The schema
// generation is detected on first use and again whenever a new connection
// is made (e.g. after the database restarted). A nil log discards.
func Open(ctx context.Context, dsn string, kojiUser string, log *slog.Logger, opts ...Option) (*DB, error) {
	_ = ctx // Open does no I/O; kept for symmetry with the other calls.
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote parts of the DSN: keep it out of the text.
		return nil, &dbError{msg: "kojidb: koji.db.dsn cannot be parsed", errs: []error{err}}
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	// The bot's own backends are known by this name (and by their pids):
	// `connections kill` never lists nor terminates them.
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = ApplicationName
	}
	d := &DB{kojiUser: kojiUser, log: log, appName: cfg.ConnConfig.RuntimeParams["application_name"], own: map[uint32]bool{}}
	for _, o := range opts {
		o(d)
	}
	// Every session runs in the hub's zone, so that casting a tz-naive
	// column to timestamptz reads it as the hub wrote it: the client's own
	// zone (PGTZ, a timezone parameter, a -c TimeZone= option) is not sent.
	for k, v := range cfg.ConnConfig.RuntimeParams {
		switch {
		case strings.EqualFold(k, "timezone"):
			delete(cfg.ConnConfig.RuntimeParams, k)
		case k == "options":
			if o := withoutTimeZone(v); o != "" {
				cfg.ConnConfig.RuntimeParams[k] = o
			} else {
				delete(cfg.ConnConfig.RuntimeParams, k)
			}
		}
	}
	if d.zone != "" {
		// A client parameter outranks every role and database setting.
		cfg.ConnConfig.RuntimeParams["timezone"] = d.zone
	}
	d.secrets = append(d.secrets, dsn)
	if pw := cfg.ConnConfig.Password; len(pw) >= 3 {
		d.secrets = append(d.secrets, pw)
	}
	// A new physical connection may follow a restart, a fail-over or a hub
	// upgrade: detect the schema again on it.
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		d.invalidate()
		d.ownBackend(conn.PgConn().PID(), true)
		if d.zone == "" {
			return d.useDatabaseZone(ctx, conn)
		}
		return nil
	}
	cfg.BeforeClose = func(conn *pgx.Conn) { d.ownBackend(conn.PgConn().PID(), false) }
	d.pool, err = pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, d.fail("open", err)
	}
	log.Info("koji database configured", "host", cfg.ConnConfig.Host, "port", cfg.ConnConfig.Port,
		"database", cfg.ConnConfig.Database, "role", cfg.ConnConfig.User, "koji_user", kojiUser)
	return d, nil
}

// Close closes every connection; later calls fail with ErrUnavailable.
func (d *DB) Close() {
	if d.closed.Swap(true) {
		return
	}
	d.pool.Close()
}

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error {
	return d.read(ctx, "ping", func(ctx context.Context, conn *pgxpool.Conn, _ Generation) error {
		return conn.Ping(ctx)
	})
}

// Generation returns the schema generation, detecting it if needed.
func (d *DB) Generation(ctx context.Context) (Generation, error) {
	var g Generation
	err := d.read(ctx, "detect schema", func(_ context.Context, _ *pgxpool.Conn, gen Generation) error {
		g = gen
		return nil
	})
	return g, err
}

func (d *DB) invalidate() {
	d.mu.Lock()
	d.gen = Unknown
	d.mu.Unlock()
}

// features are the differences between Koji schemas within a generation
// that the reads care about.
type features struct {
	// standardBuildroot: Koji 1.11+ keeps a buildroot's host_id and state in
	// standard_buildroot; before, they are columns of buildroot.
	standardBuildroot bool
	// naiveSessions: sessions.update_time is TIMESTAMP WITHOUT TIME ZONE in
	// the hub's local time (Koji 1.21 and older).
	naiveSessions bool
	// groupPerms: the hub counts the permissions of the groups a user
	// belongs to (user_groups), as Koji 1.34 and later do; the sign of such
	// a schema is scheduler_task_runs, new in 1.34.
	groupPerms bool
}

// features returns what was detected with the generation.
func (d *DB) features() features {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.feat
}

// generation returns the cached generation or detects it on conn.
func (d *DB) generation(ctx context.Context, conn *pgxpool.Conn) (Generation, error) {
	d.mu.Lock()
	g := d.gen
	d.mu.Unlock()
	if g != Unknown {
		return g, nil
	}
	g, f, err := detect(ctx, conn)
	if errors.Is(err, ErrSchemaTooOld) {
		d.log.Error("koji schema too old", "error", err.Error())
	}
	if err != nil {
		return Unknown, err
	}
	if f.naiveSessions && d.zoneHidden.Load() {
		// Not cached: asked again on every call until it is fixed.
		return Unknown, ErrHubZoneUnknown
	}
	d.mu.Lock()
	d.gen = g
	d.feat = f
	changed := g != d.lastGen
	d.lastGen = g
	d.mu.Unlock()
	if changed {
		d.log.Info("koji schema detected", "generation", g.String(),
			"standard_buildroot", f.standardBuildroot, "tz_naive_sessions", f.naiveSessions,
			"group_permissions", f.groupPerms)
	}
	return g, nil
}

// detect reads the catalog: host.capacity means legacy, host_config means
// versioned, and host.update_time means 1.33+; standard_buildroot (1.11+)
// and the type of sessions.update_time (tz-naive until 1.21) refine it, and
// user_groups with scheduler_task_runs (1.34+) means group permissions. A
// host without description is older than Koji 1.4 (ErrSchemaTooOld, naming
// 1.3 when external_repo, new in 1.3, exists). It needs no privilege.
func detect(ctx context.Context, conn *pgxpool.Conn) (Generation, features, error) {
	const q = `WITH cols AS (
		SELECT c.relname, a.attname, a.atttypid FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid
		WHERE a.attrelid IN (to_regclass('host'), to_regclass('sessions'))
			AND a.attnum > 0 AND NOT a.attisdropped)
	SELECT
		to_regclass('host') IS NOT NULL,
		EXISTS (SELECT 1 FROM cols WHERE relname = 'host' AND attname = 'capacity'),
		to_regclass('host_config') IS NOT NULL,
		EXISTS (SELECT 1 FROM cols WHERE relname = 'host' AND attname = 'update_time'),
		EXISTS (SELECT 1 FROM cols WHERE relname = 'host' AND attname = 'description'),
		to_regclass('external_repo') IS NOT NULL,
		to_regclass('standard_buildroot') IS NOT NULL,
		EXISTS (SELECT 1 FROM cols WHERE relname = 'sessions' AND attname = 'update_time'
			AND atttypid = 'timestamp'::regtype),
		to_regclass('user_groups') IS NOT NULL AND to_regclass('scheduler_task_runs') IS NOT NULL`
	var host, capacity, config, updateTime, description, externalRepo bool
	var f features
	if err := conn.QueryRow(ctx, q).Scan(&host, &capacity, &config, &updateTime, &description, &externalRepo,
		&f.standardBuildroot, &f.naiveSessions, &f.groupPerms); err != nil {
		return Unknown, f, err
	}
	switch {
	case !host:
		return Unknown, f, fmt.Errorf("%w: no host table", ErrUnknownSchema)
	case capacity && !description:
		version := "Koji 1.2 or older"
		if externalRepo {
			version = "Koji 1.3"
		}
		return Unknown, f, fmt.Errorf("%w: detected %s (host has no description and comment)", ErrSchemaTooOld, version)
	case capacity:
		return Legacy, f, nil
	case config && updateTime:
		return Versioned, f, nil
	case config:
		return Versioned116, f, nil
	}
	return Unknown, f, ErrUnknownSchema
}

// CallTimeout bounds every call to the database (each attempt of it), so
// that a hung database cannot hold a worker or the watcher forever. A
// caller's earlier deadline wins.
const CallTimeout = 30 * time.Second

// callTimeout is CallTimeout; tests shorten it.
var callTimeout = CallTimeout

// withConn runs f on a pooled connection once the generation is known,
// within CallTimeout.
func (d *DB) withConn(ctx context.Context, f func(context.Context, *pgxpool.Conn, Generation) error) error {
	if d.closed.Load() {
		return errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	gen, err := d.generation(ctx, conn)
	if err != nil {
		return err
	}
	return f(ctx, conn, gen)
}

// read runs the read-only f, once more on a fresh connection if the one it
// got turned out to be dead.
func (d *DB) read(ctx context.Context, op string, f func(context.Context, *pgxpool.Conn, Generation) error) error {
	err := d.withConn(ctx, f)
	if retryable(ctx, err) {
		err = d.withConn(ctx, f)
	}
	return d.fail(op, err)
}

// write runs f in one transaction and commits it. When the connection is
// lost before COMMIT was sent, nothing happened and it is tried once more.
func (d *DB) write(ctx context.Context, op string, f func(context.Context, pgx.Tx, Generation) error) error {
	var committing bool
	attempt := func(ctx context.Context, conn *pgxpool.Conn, gen Generation) error {
		committing = false
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
		if err := f(ctx, tx, gen); err != nil {
			return err
		}
		committing = true
		return tx.Commit(ctx)
	}
	err := d.withConn(ctx, attempt)
	if !committing && retryable(ctx, err) {
		err = d.withConn(ctx, attempt)
	}
	if err != nil && committing && lostConnection(err) {
		op += " (connection lost during COMMIT: the change may or may not have been made)"
	}
	return d.fail(op, err)
}

// retryable: the connection died under an operation that could run again;
// a failure to connect at all is not retried.
func retryable(ctx context.Context, err error) bool {
	var ce *pgconn.ConnectError
	return err != nil && ctx.Err() == nil && lostConnection(err) && !errors.As(err, &ce) && !errors.Is(err, errClosed)
}

// lostConnection reports whether err means the database is unreachable or
// the connection broke, rather than a problem with the statement.
func lostConnection(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, errClosed) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P03", "53300": // admin/crash shutdown, cannot connect now, too many connections
			return true
		}
		return strings.HasPrefix(pe.Code, "08") // connection exception
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	for _, e := range []error{io.EOF, io.ErrUnexpectedEOF, syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE} {
		if errors.Is(err, e) {
			return true
		}
	}
	return errors.Is(err, pgconn.ErrConnClosed)
}

// dbError carries a message made safe to show (no DSN, no password) and the
// errors it wraps.
type dbError struct {
	msg  string
	errs []error
}

func (e *dbError) Error() string   { return e.msg }
func (e *dbError) Unwrap() []error { return e.errs }

// fail wraps err from operation op: connection problems become
// ErrUnavailable (and forget the detected generation), and the text is
// scrubbed of the DSN and its password.
func (d *DB) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Unwrap() != nil {
		// Drop pgx's "failed to connect to `user=… database=…`" prefix.
		text = "cannot connect: " + ce.Unwrap().Error()
	}
	text = d.scrub(text)
	if lostConnection(err) {
		d.invalidate()
		if errors.Is(err, errClosed) {
			text = "closed"
		}
		return &dbError{msg: "kojidb: " + op + ": " + ErrUnavailable.Error() + ": " + text, errs: []error{ErrUnavailable, err}}
	}
	return &dbError{msg: "kojidb: " + op + ": " + text, errs: []error{err}}
}

func (d *DB) scrub(s string) string {
	for _, secret := range d.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "xxxxx")
		}
	}
	return s
}

// serverZoneSources are the pg_settings sources of a TimeZone that every
// session of the database gets (a setting of the server, not of a role or
// a client).
var serverZoneSources = map[string]bool{
	"default": true, "environment variable": true, "configuration file": true, "command line": true,
	"global": true, "database": true,
}

// useDatabaseZone sets the TimeZone of the new session conn to the
// database's default zone: the database's own setting or that of every
// role (pg_db_role_setting, readable by any role), else the server's. The
// server's is the session's own unless a setting of the bot's role
// overrides it (the client sends none, see Open); then it cannot be read,
// and zoneHidden says so.
func (d *DB) useDatabaseZone(ctx context.Context, conn *pgx.Conn) error {
	const q = `SELECT
		(SELECT substr(c, strpos(c, '=') + 1) FROM pg_db_role_setting s, unnest(s.setconfig) c
			WHERE s.setrole = 0 AND lower(split_part(c, '=', 1)) = 'timezone'
				AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
			ORDER BY s.setdatabase DESC LIMIT 1),
		(SELECT source FROM pg_settings WHERE name = 'TimeZone'),
		current_setting('TimeZone')`
	var dbZone *string
	var source, current string
	if err := conn.QueryRow(ctx, q).Scan(&dbZone, &source, &current); err != nil {
		return err
	}
	switch {
	case dbZone != nil:
		d.zoneHidden.Store(false)
		if *dbZone != current {
			_, err := conn.Exec(ctx, "SELECT set_config('TimeZone', $1, false)", *dbZone)
			return err
		}
	case serverZoneSources[source]:
		d.zoneHidden.Store(false)
	default:
		if !d.zoneHidden.Swap(true) {
			d.log.Warn("the database's default time zone is hidden by the role's own setting; tz-naive check-ins (Koji 1.21 and older) will not be read",
				"session_zone", current, "source", source, "fix", "set koji.db_timezone")
		}
	}
	return nil
}

// withoutTimeZone returns the libpq options string opts (command-line
// switches for the server, split at unescaped white space, a backslash
// escaping the next character) without the switches that set TimeZone:
// "-c TimeZone=…", "-cTimeZone=…" and "--TimeZone=…", in any case.
func withoutTimeZone(opts string) string {
	var words []string
	var w strings.Builder
	inWord, escaped := false, false
	for _, r := range opts {
		switch {
		case escaped:
			w.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped, inWord = true, true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	setsZone := func(setting string) bool {
		name, _, _ := strings.Cut(setting, "=")
		return strings.EqualFold(strings.ReplaceAll(name, "-", "_"), "timezone")
	}
	var kept []string
	for i := 0; i < len(words); i++ {
		word := words[i]
		switch {
		case word == "-c" && i+1 < len(words):
			if !setsZone(words[i+1]) {
				kept = append(kept, word, words[i+1])
			}
			i++
		case strings.HasPrefix(word, "--") && setsZone(word[2:]),
			strings.HasPrefix(word, "-c") && setsZone(word[2:]):
		default:
			kept = append(kept, word)
		}
	}
	for i, word := range kept {
		var b strings.Builder
		for _, r := range word {
			if r == '\\' || r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v' {
				b.WriteRune('\\')
			}
			b.WriteRune(r)
		}
		kept[i] = b.String()
	}
	return strings.Join(kept, " ")
}
