// Package state is kojibot's own store: the journal of what jobs
// stopped or unmounted (so that a crash never leaves a service down
// unnoticed), the job records, cross-process cancel requests, the
// confirmations waiting for "confirm <token>", the outage drafts and a
// small key/value space (chat sync tokens). By default it is one SQLite file
// under state.dir, in WAL mode, so that `kojibot run` and `kojibot exec`
// can use it at the same time; with state.dsn it is a PostgreSQL database
// of kojibot's own (OpenPostgres). Both are the same Store, and their
// schemas are versioned and migrated at open by goose.
//
// Every process that opens the store registers itself and holds a lock
// for as long as it lives: a flock on a file of its own (SQLite), or a
// session advisory lock on a connection of its own (PostgreSQL). The
// kernel, or the server, drops that lock when the process dies, however
// it dies, so another process can tell the journal records of a dead
// process (to be restored) from those of a live one (to be left alone).
//
// Nothing here is ever written to the Koji database.
package state

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

// FileName is the store's file under state.dir.
const FileName = "kojibot.db"

// busyTimeout is how long a write waits for another process's write.
const busyTimeout = 10 * time.Second

// Kinds of journal entry.
const (
	// KindService is a service a job stopped (or restarts).
	KindService = "service"
	// KindMount is a mount point a job unmounts; it cannot be re-created by
	// the bot, so an open one is reported, never restored.
	KindMount = "mount"
)

// ErrClosed is returned by a Store that has been closed.
var ErrClosed = errors.New("state: store closed")

// Entry is one journal record: something a job took down.
type Entry struct {
	// ID is the record's id, set by Record.
	ID   int64
	Host string
	// Kind is KindService or KindMount.
	Kind string
	// Name is the service or the mount point.
	Name  string
	Job   string
	Owner string
	// Opened is when the record was written (before the action).
	Opened time.Time
	// Closed is when it was marked done; zero while open.
	Closed time.Time
	// PID is the process that wrote (or last claimed) the record.
	PID int
}

// JobRecord is what the store keeps of a job.
type JobRecord struct {
	// ID is the job id, allocated by NewJob; ids never repeat.
	ID      int64
	Owner   string
	Command string
	Place   string
	// PlaceName is how Place is shown beside it: a Matrix room's alias or
	// name; "" when there is none.
	PlaceName string
	// Result is "" while running, else "done", "failed: ...", "cancelled",
	// or "interrupted: ..." for a job whose process died.
	Result   string
	Started  time.Time
	Finished time.Time
	// PID is the process that ran the job.
	PID int
	// Holder names that process for the operators: host:pid.
	Holder string
}

// Store is an open state store: SQLite in state.dir (Open) or PostgreSQL
// (OpenPostgres). Its methods are safe for concurrent use.
type Store struct {
	db   *handle
	dir  string
	proc int64    // this process's row in procs
	lock *os.File // SQLite: flock held while this handle is open
	// pgLock is PostgreSQL's counterpart of lock: a connection of its own
	// holding a session advisory lock (lockClass, proc), kept (taken again
	// on a new connection when it breaks) by keepLock until lockStop.
	lockMu   sync.Mutex
	pgLock   *sql.Conn
	lockStop chan struct{}
	lockDone chan struct{}
	closed   bool
	// fence is the leadership this store's writes carry (Bind); nil: none.
	fence atomic.Pointer[Leader]
}

// Open opens (creating it if needed) the store in dir, which is created
// 0700 when missing. dir, its procs/ directory and the SQLite files must
// be real directories and files (no symbolic links) owned by this
// process's effective uid, and dir must not be group- or world-writable:
// a kojibot started as root switches to the owner of dir before it opens
// the store (see OwnerOf), never works in someone else's directory. The
// caller must Close it.
func Open(ctx context.Context, dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("state: no directory (state.dir)")
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("state: creating %s: %w", dir, err)
		}
	}
	if err := CheckOwned(dir, true); err != nil {
		return nil, err
	}
	locks := filepath.Join(dir, "procs")
	if err := os.Mkdir(locks, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("state: creating %s: %w", locks, err)
	}
	if err := CheckOwned(locks, true); err != nil {
		return nil, err
	}
	// SQLite opens its files by name, following links: make the database
	// file here (never through a link) and check every file it will use.
	// Between the check and SQLite's open only the owner of dir, which this
	// process is, can change them.
	db := filepath.Join(dir, FileName)
	f, err := os.OpenFile(db, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o600)
	switch {
	case err == nil:
		f.Close()
	case !errors.Is(err, fs.ErrExist):
		return nil, fmt.Errorf("state: creating %s: %w", db, err)
	}
	if err := checkFiles(dir); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL: every commit (journal records above all) is synced to disk
	// before it returns, so a record written before a stop survives a
	// power cut as well as a crash.
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	sqldb, err := sql.Open("sqlite", "file:"+db+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("state: opening %s: %w", dir, err)
	}
	s := &Store{db: &handle{DB: sqldb}, dir: dir}
	err = s.init(ctx)
	if err == nil {
		// The files SQLite made (-wal, -shm) are checked too.
		err = checkFiles(dir)
	}
	if err != nil {
		if !s.closed && s.lock != nil {
			s.Close()
		} else {
			sqldb.Close()
		}
		return nil, err
	}
	return s, nil
}

// dbFiles are the names SQLite uses in state.dir.
var dbFiles = []string{FileName, FileName + "-wal", FileName + "-shm", FileName + "-journal"}

// checkFiles checks that the SQLite files in dir that exist are regular
// files owned by this process's effective uid.
func checkFiles(dir string) error {
	for _, name := range dbFiles {
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := CheckOwned(p, false); err != nil {
			return err
		}
	}
	return nil
}

// CheckOwned checks, without following links, that path is a directory
// (dir) or a regular file owned by this process's effective uid; a
// directory must also not be group- or world-writable.
func CheckOwned(path string, dir bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("state: %s is a symbolic link: state.dir and what is in it must be real directories and files", path)
	case dir && !fi.IsDir():
		return fmt.Errorf("state: %s is not a directory", path)
	case !dir && !fi.Mode().IsRegular():
		return fmt.Errorf("state: %s is not a regular file", path)
	}
	if uid, _, ok := OwnerOf(fi); ok && uid != os.Geteuid() {
		return fmt.Errorf("state: %s belongs to uid %d, not to uid %d that runs this kojibot: run it as the owner of state.dir (started as root, kojibot switches to that owner)", path, uid, os.Geteuid())
	}
	if dir && fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("state: %s is group- or world-writable (mode %04o): make it 0700", path, fi.Mode().Perm())
	}
	return nil
}

// OwnerOf returns the owner uid and gid of a file's FileInfo.
func OwnerOf(fi fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

// init creates the schema and registers this handle as a live process.
func (s *Store) init(ctx context.Context) error {
	// One process migrates at a time (run and exec may start together on
	// a new store): the others wait for the lock on dir, then find the
	// schema up to date.
	d, err := os.OpenFile(s.dir, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer d.Close()
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("state: locking %s to migrate: %w", s.dir, err)
	}
	if err := migrate(ctx, s.db.DB, false, s.dir); err != nil {
		return err
	}
	syscall.Flock(int(d.Fd()), syscall.LOCK_UN)
	// Register and lock in one immediate transaction, so that no other
	// process's ClaimOrphans sees this row before its lock is held.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state: registering: %w", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `INSERT INTO procs (pid, started, holder) VALUES (?, ?, ?) RETURNING id`, os.Getpid(), time.Now().UnixNano(), Holder()).Scan(&s.proc); err != nil {
		return fmt.Errorf("state: registering: %w", err)
	}
	// O_EXCL: the lock file is new (ids never repeat), never something
	// already there, and O_NOFOLLOW never a link.
	f, err := os.OpenFile(s.lockPath(s.proc), os.O_CREATE|os.O_EXCL|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("state: lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("state: locking %s: %w", f.Name(), err)
	}
	if err := tx.Commit(); err != nil {
		os.Remove(f.Name())
		f.Close()
		return fmt.Errorf("state: registering: %w", err)
	}
	s.lock = f
	return nil
}

func (s *Store) lockPath(proc int64) string {
	return filepath.Join(s.dir, "procs", strconv.FormatInt(proc, 10)+".lock")
}

// Unverified is an earlier process whose lock file could not be checked
// (unreadable, or not a regular file). Whether it is gone is then told by
// its process id: when no process has that id any more, or the one that
// has it started after the record was made, its records are taken over;
// otherwise they are left alone, and reported again at the next claim.
type Unverified struct {
	PID  int
	Lock string
	Err  error
	// Running says the process id still runs: its records were left alone.
	Running bool
}

// String says what was found, for the operators.
func (u Unverified) String() string {
	if u.Running {
		return fmt.Sprintf("cannot check kojibot process %d through its lock file %s (%v); that process id still runs, so its journal records are left alone until it ends", u.PID, u.Lock, u.Err)
	}
	return fmt.Sprintf("kojibot process %d is gone (its lock file %s could not be checked: %v): its journal records were taken over", u.PID, u.Lock, u.Err)
}

// alive reports whether the process (handle) proc, which registered as
// pid at started, still holds its lock. Its own handle is alive by
// definition. A lock file that cannot be checked is reported (u) and the
// process id decides.
func (s *Store) alive(proc int64, pid int, started time.Time) (alive bool, u *Unverified) {
	if proc == s.proc {
		return true, nil
	}
	if s.db.pg {
		return s.pgAlive(proc), nil
	}
	path := s.lockPath(proc)
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // it closed (or was swept) without leaving a lock
	}
	if err == nil {
		defer f.Close()
		var fi fs.FileInfo
		if fi, err = f.Stat(); err == nil && !fi.Mode().IsRegular() {
			err = errors.New("not a regular file")
		}
	}
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			err = errors.New("a symbolic link")
		}
		u := &Unverified{PID: pid, Lock: path, Err: err, Running: pidRunning(pid, started)}
		return u.Running, u
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true, nil
	}
	// We got the lock: the owner is gone. Closing f drops it again.
	return false, nil
}

// pidRunning reports whether the process pid, registered at started, may
// still run: a process has that id and did not start after started.
func pidRunning(pid int, started time.Time) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	at, ok := processStart(pid)
	// Start times have a resolution of a clock tick, boot time of a second.
	return !ok || !at.After(started.Add(2*time.Second))
}

// processStart is when process pid started, from /proc.
func processStart(pid int) (time.Time, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return time.Time{}, false
	}
	// The fields after the command name (which may hold anything) start
	// after its last ')'; starttime is the 22nd field, the 20th of these.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return time.Time{}, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	boot, ok := bootTime()
	if !ok {
		return time.Time{}, false
	}
	const clockTicks = 100 // USER_HZ, fixed at 100 on Linux
	return boot.Add(time.Duration(ticks) * time.Second / clockTicks), true
}

// bootTime is the btime line of /proc/stat.
func bootTime() (time.Time, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(n, 0), true
		}
	}
	return time.Time{}, false
}

// Dir is the directory the store lives in; "" for PostgreSQL.
func (s *Store) Dir() string { return s.dir }

// Close releases the store. Records still open stay in the journal: they
// belong to a process that is gone, and the next process restores them.
func (s *Store) Close() error {
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	if s.db.pg {
		return s.closePostgres()
	}
	err := s.db.Close()
	// Remove the lock file before unlocking it, so that nobody takes a
	// stale lock file for a live one.
	os.Remove(s.lock.Name())
	s.lock.Close()
	s.lock = nil
	if err != nil {
		return fmt.Errorf("state: closing: %w", err)
	}
	return nil
}

// abandon drops the handle as a crash would: no bookkeeping, the lock is
// released by closing its file or its connection. With PostgreSQL it
// returns once the server has released the advisory lock (it does so when
// it sees the connection go, a moment after the close), so that the test
// that called it sees a dead process. For tests.
func (s *Store) abandon() {
	s.closed = true
	if s.db.pg {
		s.dropLock()
		for deadline := time.Now().Add(5 * time.Second); s.pgAlive(s.proc) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		s.db.Close()
		return
	}
	s.db.Close()
	s.lock.Close()
	s.lock = nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UnixNano()
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64)
}

// Record writes an open journal entry and returns its id once it is on
// disk. Call it before stopping the service or unmounting the mount; when
// it fails, do not go ahead.
func (s *Store) Record(ctx context.Context, e Entry) (int64, error) {
	if e.Kind != KindService && e.Kind != KindMount {
		return 0, fmt.Errorf("state: journal: unknown kind %q", e.Kind)
	}
	var id int64
	err := s.write(ctx, func(q querier) error {
		return q.QueryRowContext(ctx, `INSERT INTO journal (host, kind, name, job, owner, opened, proc, pid)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, e.Host, e.Kind, e.Name, e.Job, e.Owner, nanos(e.Opened), s.proc, os.Getpid()).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("state: journal %s %s on %s: %w", e.Kind, e.Name, e.Host, err)
	}
	return id, nil
}

// Done marks a journal entry done: the service runs again, or the mount
// has been dealt with. Marking an entry done twice is not an error.
func (s *Store) Done(ctx context.Context, id int64) error {
	if err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `UPDATE journal SET closed = ? WHERE id = ? AND closed IS NULL`, time.Now().UnixNano(), id)
		return err
	}); err != nil {
		return fmt.Errorf("state: journal done %d: %w", id, err)
	}
	return nil
}

const entryColumns = `id, host, kind, name, job, owner, opened, closed, pid`

func scanEntries(rows *sql.Rows) ([]Entry, error) {
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var opened int64
		var closed sql.NullInt64
		if err := rows.Scan(&e.ID, &e.Host, &e.Kind, &e.Name, &e.Job, &e.Owner, &opened, &closed, &e.PID); err != nil {
			return nil, err
		}
		e.Opened, e.Closed = time.Unix(0, opened), fromNanos(closed)
		out = append(out, e)
	}
	return out, rows.Err()
}

// OpenEntries lists the open journal entries written by this handle for
// job (all of this handle's when job is ""), oldest first.
func (s *Store) OpenEntries(ctx context.Context, job string) ([]Entry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+entryColumns+` FROM journal
		WHERE closed IS NULL AND proc = ? AND (? = '' OR job = ?) ORDER BY id`, s.proc, job, job)
	if err != nil {
		return nil, fmt.Errorf("state: journal: %w", err)
	}
	out, err := scanEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("state: journal: %w", err)
	}
	return out, nil
}

// ClaimOrphans finds the open journal entries of processes that are gone
// (crashed, killed, or closed with entries left open), makes them this
// handle's, and returns them oldest first: the caller restores them and
// marks each done. If the caller dies in turn, they are orphans again. Jobs
// of processes that are gone and never finished are marked
// "interrupted". Entries of a live process (a `run` next to an `exec`) are
// never taken.
func (s *Store) ClaimOrphans(ctx context.Context) ([]Entry, error) {
	out, _, err := s.Claim(ctx)
	return out, err
}

// Claim is ClaimOrphans, and it also returns the earlier processes whose
// lock file could not be checked (see Unverified).
func (s *Store) Claim(ctx context.Context) ([]Entry, []Unverified, error) {
	if s.db.pg {
		s.graceFreeLocks(ctx)
	}
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: one claimer at a time
	if err != nil {
		return nil, nil, fmt.Errorf("state: claiming orphans: %w", err)
	}
	defer tx.Rollback()
	if err := s.checkTerm(ctx, tx); err != nil {
		return nil, nil, fmt.Errorf("state: claiming orphans: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, pid, started FROM procs WHERE id != ?`, s.proc)
	if err != nil {
		return nil, nil, fmt.Errorf("state: claiming orphans: %w", err)
	}
	type proc struct {
		id, started int64
		pid         int
	}
	var procs []proc
	for rows.Next() {
		var p proc
		if err := rows.Scan(&p.id, &p.pid, &p.started); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("state: claiming orphans: %w", err)
		}
		procs = append(procs, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("state: claiming orphans: %w", err)
	}
	var dead []int64
	var unverified []Unverified
	for _, p := range procs {
		alive, u := s.alive(p.id, p.pid, time.Unix(0, p.started))
		if u != nil {
			unverified = append(unverified, *u)
		}
		if !alive {
			dead = append(dead, p.id)
		}
	}
	var claimed []int64
	for _, p := range dead {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM journal WHERE closed IS NULL AND proc = ?`, p)
		if err != nil {
			return nil, nil, fmt.Errorf("state: claiming orphans: %w", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("state: claiming orphans: %w", err)
			}
			claimed = append(claimed, id)
		}
		rows.Close()
		if _, err := tx.ExecContext(ctx, `UPDATE journal SET proc = ?, pid = ? WHERE closed IS NULL AND proc = ?`,
			s.proc, os.Getpid(), p); err != nil {
			return nil, nil, fmt.Errorf("state: claiming orphans: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET result = 'interrupted: kojibot stopped before the job ended', finished = ?
			WHERE proc = ? AND result = ''`, time.Now().UnixNano(), p); err != nil {
			return nil, nil, fmt.Errorf("state: closing the jobs of a dead process: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM procs WHERE id = ?`, p); err != nil {
			return nil, nil, fmt.Errorf("state: forgetting a dead process: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, nil, fmt.Errorf("state: claiming orphans: %w", err)
	}
	for _, p := range dead {
		if !s.db.pg {
			os.Remove(s.lockPath(p))
		}
	}
	if len(claimed) == 0 {
		return nil, unverified, nil
	}
	var out []Entry
	for _, id := range claimed {
		rows, err := s.db.QueryContext(ctx, `SELECT `+entryColumns+` FROM journal WHERE id = ?`, id)
		if err != nil {
			return nil, nil, fmt.Errorf("state: journal: %w", err)
		}
		es, err := scanEntries(rows)
		if err != nil {
			return nil, nil, fmt.Errorf("state: journal: %w", err)
		}
		out = append(out, es...)
	}
	return out, unverified, nil
}

// NewJob records a job that starts now and returns its id. Ids come from
// the store: they never repeat, across restarts and across processes.
func (s *Store) NewJob(ctx context.Context, j JobRecord) (int64, error) {
	var id int64
	if err := s.write(ctx, func(q querier) error {
		return q.QueryRowContext(ctx, `INSERT INTO jobs (owner, command, place, place_name, started, proc, pid, holder) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			j.Owner, j.Command, j.Place, j.PlaceName, nanos(j.Started), s.proc, os.Getpid(), Holder()).Scan(&id)
	}); err != nil {
		return 0, fmt.Errorf("state: recording a job: %w", err)
	}
	return id, nil
}

// FinishJob records a job's result and end.
func (s *Store) FinishJob(ctx context.Context, id int64, result string, finished time.Time) error {
	if result == "" {
		result = "done"
	}
	if err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `UPDATE jobs SET result = ?, finished = ? WHERE id = ?`, result, nanos(finished), id)
		return err
	}); err != nil {
		return fmt.Errorf("state: finishing job %d: %w", id, err)
	}
	return nil
}

// RecentJobs returns up to limit jobs, newest first, of every process.
func (s *Store) RecentJobs(ctx context.Context, limit int) ([]JobRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, owner, command, place, place_name, result, started, finished, pid, holder
		FROM jobs ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("state: listing jobs: %w", err)
	}
	defer rows.Close()
	var out []JobRecord
	for rows.Next() {
		var j JobRecord
		var started int64
		var finished sql.NullInt64
		if err := rows.Scan(&j.ID, &j.Owner, &j.Command, &j.Place, &j.PlaceName, &j.Result, &started, &finished, &j.PID, &j.Holder); err != nil {
			return nil, fmt.Errorf("state: listing jobs: %w", err)
		}
		j.Started, j.Finished = time.Unix(0, started), fromNanos(finished)
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: listing jobs: %w", err)
	}
	return out, nil
}

// Get returns the value stored under key, and whether there is one.
func (s *Store) Get(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = ?`, key).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("state: get %q: %w", key, err)
	}
	return v, true, nil
}

// Put stores value under key, replacing what was there.
func (s *Store) Put(ctx context.Context, key, value string) error {
	if err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `INSERT INTO kv (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
		return err
	}); err != nil {
		return fmt.Errorf("state: put %q: %w", key, err)
	}
	return nil
}
