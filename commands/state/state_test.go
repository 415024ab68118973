package state

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := openAt(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOpenCreatesPrivateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := open(t, dir)
	defer s.Close()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", fi.Mode().Perm())
	}
	var mode string
	if err := s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q (%v), want wal", mode, err)
	}
	var sync int
	if err := s.db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
		t.Errorf("synchronous %d (%v), want 2 (FULL)", sync, err)
	}
	if _, err := Open(context.Background(), ""); err == nil {
		t.Error("Open with no dir succeeded")
	}
}

func TestJournalOpenAndDone(t *testing.T) {
	contract(t, testJournalOpenAndDone)
}

func testJournalOpenAndDone(t *testing.T, loc string) {
	ctx := context.Background()
	s := open(t, loc)
	defer s.Close()
	id, err := s.Record(ctx, Entry{Host: "b1", Kind: KindService, Name: "kojid", Job: "7", Owner: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Record(ctx, Entry{Host: "b1", Kind: "bogus", Name: "x"}); err == nil {
		t.Error("an unknown kind was recorded")
	}
	mid, _ := s.Record(ctx, Entry{Host: "b1", Kind: KindMount, Name: "/var/lib/mock/a/proc", Job: "8", Owner: "bob"})
	got, err := s.OpenEntries(ctx, "7")
	if err != nil || len(got) != 1 || got[0].Name != "kojid" || got[0].Owner != "alice" || got[0].PID != os.Getpid() || !got[0].Closed.IsZero() {
		t.Fatalf("open entries of job 7: %+v, %v", got, err)
	}
	if all, _ := s.OpenEntries(ctx, ""); len(all) != 2 {
		t.Errorf("all open entries: %+v", all)
	}
	if err := s.Done(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.Done(ctx, id); err != nil {
		t.Errorf("done twice: %v", err)
	}
	if got, _ := s.OpenEntries(ctx, "7"); len(got) != 0 {
		t.Errorf("still open after done: %+v", got)
	}
	s.Done(ctx, mid)
	if got, _ := s.OpenEntries(ctx, ""); len(got) != 0 {
		t.Errorf("still open after done: %+v", got)
	}
}

// A crash is a handle dropped without Close: the next one finds and
// claims what it left open, and the dead process's jobs are interrupted.
func TestCrashLeavesOrphans(t *testing.T) {
	contract(t, testCrashLeavesOrphans)
}

func testCrashLeavesOrphans(t *testing.T, loc string) {
	ctx := context.Background()
	dir := loc
	a := open(t, dir)
	jid, _ := a.NewJob(ctx, JobRecord{Owner: "alice", Command: "cleanup b1", Place: "#ops"})
	a.Record(ctx, Entry{Host: "b1", Kind: KindService, Name: "kojid", Job: strconv.FormatInt(jid, 10), Owner: "alice"})
	a.Record(ctx, Entry{Host: "b1", Kind: KindMount, Name: "/mnt/build/x/dev", Job: strconv.FormatInt(jid, 10), Owner: "alice"})
	done, _ := a.Record(ctx, Entry{Host: "b1", Kind: KindService, Name: "plague-builder", Job: strconv.FormatInt(jid, 10), Owner: "alice"})
	a.Done(ctx, done)
	a.abandon()

	b := open(t, dir)
	got, err := b.ClaimOrphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "kojid" || got[0].Kind != KindService || got[1].Kind != KindMount {
		t.Fatalf("orphans: %+v", got)
	}
	jobs, _ := b.RecentJobs(ctx, 10)
	if len(jobs) != 1 || !strings.HasPrefix(jobs[0].Result, "interrupted") || jobs[0].Finished.IsZero() {
		t.Errorf("the dead process's job: %+v", jobs)
	}
	// b now owns them: a third handle does not take them while b lives.
	c := open(t, dir)
	defer c.Close()
	if again, _ := c.ClaimOrphans(ctx); len(again) != 0 {
		t.Errorf("claimed from a live handle: %+v", again)
	}
	// b dies during recovery: they are orphans again.
	b.abandon()
	again, err := c.ClaimOrphans(ctx)
	if err != nil || len(again) != 2 {
		t.Fatalf("after the recoverer died: %+v, %v", again, err)
	}
	for _, e := range again {
		c.Done(ctx, e.ID)
	}
	d := open(t, dir)
	defer d.Close()
	if left, _ := d.ClaimOrphans(ctx); len(left) != 0 {
		t.Errorf("done entries claimed: %+v", left)
	}
}

// Entries left open by a handle that closed cleanly (a start that failed)
// are restored by the next process too.
func TestClosedWithOpenEntries(t *testing.T) {
	contract(t, testClosedWithOpenEntries)
}

func testClosedWithOpenEntries(t *testing.T, loc string) {
	ctx := context.Background()
	dir := loc
	a := open(t, dir)
	a.Record(ctx, Entry{Host: "b1", Kind: KindService, Name: "kojid", Job: "1"})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	b := open(t, dir)
	defer b.Close()
	if got, _ := b.ClaimOrphans(ctx); len(got) != 1 {
		t.Errorf("orphans after a clean close: %+v", got)
	}
}

func TestJobIDsNeverRepeat(t *testing.T) {
	contract(t, testJobIDsNeverRepeat)
}

func testJobIDsNeverRepeat(t *testing.T, loc string) {
	ctx := context.Background()
	dir := loc
	seen := map[int64]bool{}
	var last int64
	for round := 0; round < 3; round++ {
		s := open(t, dir)
		for i := 0; i < 3; i++ {
			id, err := s.NewJob(ctx, JobRecord{Owner: "alice", Command: "restart master", Place: "exec"})
			if err != nil {
				t.Fatal(err)
			}
			if seen[id] || id <= last {
				t.Fatalf("round %d: id %d after %d (seen %v)", round, id, last, seen[id])
			}
			seen[id], last = true, id
			if err := s.FinishJob(ctx, id, "done", time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		// Even when the newest rows are gone, ids do not come back.
		if _, err := s.db.Exec(`DELETE FROM jobs`); err != nil {
			t.Fatal(err)
		}
		if round == 1 {
			s.abandon()
		} else {
			s.Close()
		}
	}
}

// Two handles on one file at once: concurrent writers never fail (busy
// timeout), ids are unique, and neither takes the other's entries.
func TestTwoHandlesAtOnce(t *testing.T) {
	contract(t, testTwoHandlesAtOnce)
}

func testTwoHandlesAtOnce(t *testing.T, loc string) {
	ctx := context.Background()
	dir := loc
	a, b := open(t, dir), open(t, dir)
	defer a.Close()
	defer b.Close()
	var mu sync.Mutex
	ids := map[int64]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for _, s := range []*Store{a, b} {
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 25; i++ {
					id, err := s.NewJob(ctx, JobRecord{Owner: "x", Command: "c", Place: "p"})
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					if ids[id] {
						errs <- fmt.Errorf("id %d twice", id)
					}
					ids[id] = true
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(ids) != 200 {
		t.Errorf("%d ids, want 200", len(ids))
	}
	a.Record(ctx, Entry{Host: "b1", Kind: KindService, Name: "kojid", Job: "1"})
	if got, _ := b.ClaimOrphans(ctx); len(got) != 0 {
		t.Errorf("b took a live handle's entries: %+v", got)
	}
	if got, _ := b.OpenEntries(ctx, ""); len(got) != 0 {
		t.Errorf("b lists a's entries as its own: %+v", got)
	}
	if jobs, _ := b.RecentJobs(ctx, 1000); len(jobs) != 200 {
		t.Errorf("b sees %d jobs, want 200", len(jobs))
	}
}

func TestKeyValue(t *testing.T) {
	contract(t, testKeyValue)
}

func testKeyValue(t *testing.T, loc string) {
	ctx := context.Background()
	dir := loc
	s := open(t, dir)
	if _, ok, err := s.Get(ctx, "matrix.since"); ok || err != nil {
		t.Errorf("empty get: %v %v", ok, err)
	}
	s.Put(ctx, "matrix.since", "s1")
	if err := s.Put(ctx, "matrix.since", "s2"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	if v, ok, err := s.Get(ctx, "matrix.since"); v != "s2" || !ok || err != nil {
		t.Errorf("get after reopen: %q %v %v", v, ok, err)
	}
}

// legacySchema is the store as kojibot made it before its schema was
// versioned: no version table, jobs.place_name added by hand (or not yet).
const legacySchema = `
CREATE TABLE procs (id INTEGER PRIMARY KEY AUTOINCREMENT, pid INTEGER NOT NULL, started INTEGER NOT NULL);
CREATE TABLE journal (id INTEGER PRIMARY KEY AUTOINCREMENT, host TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
	job TEXT NOT NULL, owner TEXT NOT NULL, opened INTEGER NOT NULL, closed INTEGER, proc INTEGER NOT NULL, pid INTEGER NOT NULL);
CREATE INDEX journal_open ON journal (closed, proc);
CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL, command TEXT NOT NULL, place TEXT NOT NULL,
	result TEXT NOT NULL DEFAULT '', started INTEGER NOT NULL, finished INTEGER, proc INTEGER NOT NULL, pid INTEGER NOT NULL);
CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE cancels (job INTEGER PRIMARY KEY, requester TEXT NOT NULL, place TEXT NOT NULL, requested INTEGER NOT NULL, taken INTEGER);
INSERT INTO procs (pid, started) VALUES (1, 1);
INSERT INTO jobs (owner, command, place, started, proc, pid) VALUES ('alice', 'cleanup b1', '#ops', 1, 1, 1);
INSERT INTO journal (host, kind, name, job, owner, opened, proc, pid) VALUES ('b1', 'service', 'kojid', '1', 'alice', 1, 1, 1);
INSERT INTO kv (key, value) VALUES ('matrix.since', 's1');
`

// makeLegacy writes a store in dir as the kojibot before versioning made
// it, with jobs.place_name when placeName.
func makeLegacy(t *testing.T, dir string, placeName bool) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(legacySchema); err != nil {
		t.Fatal(err)
	}
	if placeName {
		if _, err := db.Exec(`ALTER TABLE jobs ADD COLUMN place_name TEXT NOT NULL DEFAULT ''`); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLegacyStoreMigrates: a store made before the schema was versioned,
// with or without jobs.place_name, opens, is migrated to the newest
// version and keeps its jobs, journal and keys.
func TestLegacyStoreMigrates(t *testing.T) {
	for _, withPlace := range []bool{false, true} {
		t.Run(fmt.Sprintf("place_name=%v", withPlace), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			makeLegacy(t, dir, withPlace)
			s := open(t, dir)
			defer s.Close()
			cur, known, err := Versions(ctx, s.db.DB, s.db.pg)
			if err != nil || cur != known || cur < 2 {
				t.Fatalf("versions %d/%d %v, want migrated to the newest", cur, known, err)
			}
			id, err := s.NewJob(ctx, JobRecord{Owner: "bob", Command: "restart master", Place: "matrix:!abc:fedora.im", PlaceName: "#admin:fedora.im"})
			if err != nil {
				t.Fatal(err)
			}
			jobs, err := s.RecentJobs(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(jobs) != 2 || jobs[0].ID != id || jobs[0].PlaceName != "#admin:fedora.im" ||
				jobs[1].Command != "cleanup b1" || jobs[1].PlaceName != "" || jobs[1].Place != "#ops" {
				t.Errorf("jobs %+v, want the new one named, the old one kept", jobs)
			}
			if v, ok, err := s.Get(ctx, "matrix.since"); v != "s1" || !ok || err != nil {
				t.Errorf("kv after migration: %q %v %v", v, ok, err)
			}
			orphans, err := s.ClaimOrphans(ctx)
			if err != nil || len(orphans) != 1 || orphans[0].Name != "kojid" {
				t.Errorf("orphans %+v %v, want the old kojid record", orphans, err)
			}
		})
	}
}

// TestNewerStoreRefused: a store whose schema is newer than this kojibot
// is refused with a clear error, and left as it is.
func TestNewerStoreRefused(t *testing.T) {
	contract(t, testNewerStoreRefused)
}

func testNewerStoreRefused(t *testing.T, loc string) {
	ctx := context.Background()
	dir := loc
	s := open(t, dir)
	_, known, err := Versions(ctx, s.db.DB, s.db.pg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO `+versionTable+` (version_id, is_applied) VALUES (?, true)`, known+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = openAt(ctx, dir)
	if !errors.Is(err, ErrTooNew) || !strings.Contains(err.Error(), fmt.Sprintf("schema version %d", known+1)) {
		t.Fatalf("open of a newer store: %v, want ErrTooNew naming the version", err)
	}
}

// helperEnv makes the test binary act as a second kojibot process.
const helperEnv = "KOJIBOT_STATE_HELPER_DIR"

// TestMain runs the package's tests, or, when helperEnv is set, acts as
// the second process of TestTwoProcesses (runHelper) and never returns.
func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		runHelper(dir)
	}
	if role := os.Getenv(roleEnv); role != "" {
		runRole(role, os.Getenv(roleDirEnv))
	}
	if flag.Parse(); testing.Short() {
		// -short (make unit): the contract runs against SQLite only.
		os.Exit(m.Run())
	}
	stop, err := startCluster()
	if err != nil {
		// A missing PostgreSQL is a failure, never a skip.
		fmt.Fprintln(os.Stderr, "FAIL: cannot start PostgreSQL:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// runHelper is the other kojibot process of TestTwoProcesses: it opens
// the store, writes jobs and an open entry, says "ready", and waits to be
// killed.
func runHelper(dir string) {
	ctx := context.Background()
	s, err := openAt(ctx, dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := 0; i < 50; i++ {
		id, err := s.NewJob(ctx, JobRecord{Owner: "helper", Command: "c", Place: "exec"})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("job", id)
	}
	if _, err := s.Record(ctx, Entry{Host: "b2", Kind: KindService, Name: "kojid", Job: "h", Owner: "helper"}); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// Two real processes share the store: ids are unique across both, a live
// process's entries are left alone, and a SIGKILLed one's are claimed.
func TestTwoProcesses(t *testing.T) {
	contract(t, testTwoProcesses)
}

func testTwoProcesses(t *testing.T, loc string) {
	ctx := context.Background()
	dir := loc
	s := open(t, dir)
	defer s.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ids := map[int64]bool{}
	var mine []int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			id, err := s.NewJob(ctx, JobRecord{Owner: "me", Command: "c", Place: "#ops"})
			if err != nil {
				t.Error(err)
				return
			}
			mine = append(mine, id)
		}
	}()
	sc := bufio.NewScanner(stdout)
	ready := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "job" {
			id, _ := strconv.ParseInt(f[1], 10, 64)
			ids[id] = true
		}
		if sc.Text() == "ready" {
			ready = true
			break
		}
		if strings.HasPrefix(sc.Text(), "error") {
			t.Fatal("helper: ", sc.Text())
		}
	}
	wg.Wait()
	if !ready {
		t.Fatal("the helper process did not get ready")
	}
	for _, id := range mine {
		if ids[id] {
			t.Errorf("job id %d given to both processes", id)
		}
	}
	if got, err := s.ClaimOrphans(ctx); err != nil || len(got) != 0 {
		t.Fatalf("claimed a live process's entries: %+v %v", got, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	got, err := s.ClaimOrphans(ctx)
	if err != nil || len(got) != 1 || got[0].Host != "b2" || got[0].Name != "kojid" || got[0].PID != os.Getpid() {
		t.Fatalf("after SIGKILL: %+v %v", got, err)
	}
}

// Processes of another uid: the test binary, copied where that user can
// run it, acts as a kojibot process of that user (runRole).
const (
	roleEnv    = "KOJIBOT_STATE_ROLE"
	roleDirEnv = "KOJIBOT_STATE_ROLE_DIR"
)

// claimReport is what the "claim" role prints.
type claimReport struct {
	Entries    []Entry
	Unverified []string
	Running    []bool
	Err        string
}

// runRole acts as a kojibot process in dir and never returns. "hold"
// opens the store, records a stopped service, says "ready" and exits,
// without closing, when its stdin ends (its lock file stays, unlocked, as
// after a crash). "claim" opens the store, claims the orphans, prints a
// claimReport and closes.
func runRole(role, dir string) {
	ctx := context.Background()
	s, err := Open(ctx, dir)
	if err != nil {
		json.NewEncoder(os.Stdout).Encode(claimReport{Err: err.Error()})
		os.Exit(1)
	}
	switch role {
	case "hold":
		if _, err := s.Record(ctx, Entry{Host: "b1", Kind: KindService, Name: "kojid", Job: "3", Owner: "alice"}); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	case "claim":
		var r claimReport
		var us []Unverified
		r.Entries, us, err = s.Claim(ctx)
		if err != nil {
			r.Err = err.Error()
		}
		for _, u := range us {
			r.Unverified = append(r.Unverified, u.String())
			r.Running = append(r.Running, u.Running)
		}
		s.Close()
		json.NewEncoder(os.Stdout).Encode(r)
		os.Exit(0)
	}
	os.Exit(2)
}

// otherUser is an unprivileged user of this machine, and a directory it
// can reach holding a copy of the test binary it can run.
func otherUser(t *testing.T) (uid, gid int, base, binary string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests switch users: run them as root")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	base, err = os.MkdirTemp("", "kojibot-state-owner-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	binary = filepath.Join(base, "state.test")
	if err := os.WriteFile(binary, self, 0o755); err != nil {
		t.Fatal(err)
	}
	return uid, gid, base, binary
}

// asUser is the test binary in role, run as uid in dir.
func asUser(binary string, uid, gid int, role, dir string) *exec.Cmd {
	cmd := exec.Command(binary, "-test.run=^$")
	cmd.Env = []string{roleEnv + "=" + role, roleDirEnv + "=" + dir, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
		Pdeathsig: syscall.SIGKILL}
	return cmd
}

func claimAs(t *testing.T, binary string, uid, gid int, dir string) claimReport {
	t.Helper()
	out, err := asUser(binary, uid, gid, "claim", dir).Output()
	var r claimReport
	if jerr := json.Unmarshal(out, &r); jerr != nil || err != nil || r.Err != "" {
		t.Fatalf("claim as uid %d: %v %v %q\n%s", uid, err, jerr, r.Err, out)
	}
	return r
}

// A lock file its owner's processes cannot open (root's, mode 0600, left
// by a root exec) does not make that process alive forever: while its
// process id runs, its records are left alone and that is reported; once
// the process is gone, they are claimed, and that is reported too.
func TestUnreadableLockFile(t *testing.T) {
	uid, gid, base, binary := otherUser(t)
	dir := filepath.Join(base, "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	hold := asUser(binary, uid, gid, "hold", dir)
	stdin, _ := hold.StdinPipe()
	stdout, _ := hold.StdoutPipe()
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	defer hold.Process.Kill()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("holder: %q", sc.Text())
	}
	locks, _ := filepath.Glob(filepath.Join(dir, "procs", "*.lock"))
	if len(locks) != 1 {
		t.Fatalf("lock files %q", locks)
	}
	// As a root exec of before left it: root's, 0600.
	if err := os.Chown(locks[0], 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(locks[0], 0o600); err != nil {
		t.Fatal(err)
	}

	r := claimAs(t, binary, uid, gid, dir)
	if len(r.Entries) != 0 {
		t.Errorf("claimed the records of a process that runs: %+v", r.Entries)
	}
	if len(r.Unverified) != 1 || !r.Running[0] || !strings.Contains(r.Unverified[0], strconv.Itoa(hold.Process.Pid)) ||
		!strings.Contains(r.Unverified[0], "permission denied") || !strings.Contains(r.Unverified[0], "left alone") {
		t.Errorf("while the holder runs: unverified %q", r.Unverified)
	}

	stdin.Close()
	if err := hold.Wait(); err != nil {
		t.Fatal(err)
	}
	r = claimAs(t, binary, uid, gid, dir)
	if len(r.Entries) != 1 || r.Entries[0].Name != "kojid" || r.Entries[0].Host != "b1" {
		t.Errorf("after the holder died: claimed %+v", r.Entries)
	}
	if len(r.Unverified) != 1 || r.Running[0] || !strings.Contains(r.Unverified[0], "is gone") {
		t.Errorf("after the holder died: unverified %q", r.Unverified)
	}
	// Reported once: the process and its lock file are forgotten.
	if r = claimAs(t, binary, uid, gid, dir); len(r.Unverified) != 0 {
		t.Errorf("third claim: %+v", r)
	}
}

// A process id that another process took since (the pid was reused) does
// not make the dead process alive.
func TestPIDReused(t *testing.T) {
	if pidRunning(os.Getpid(), time.Now().Add(-time.Hour)) {
		t.Error("a process started after the registration counts as that process")
	}
	if !pidRunning(os.Getpid(), time.Now()) {
		t.Error("this very process does not count as running")
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if pidRunning(cmd.Process.Pid, time.Now()) {
		t.Error("a process that ended counts as running")
	}
}

// Nothing in state.dir is followed when it is a link, and nothing there
// that belongs to another uid (or is writable by others) is used: the
// store refuses to open, and no file is made through a link.
func TestOpenRefusesLinksAndStrangers(t *testing.T) {
	uid, gid, base, _ := otherUser(t)
	victim := filepath.Join(base, "victim")
	for _, c := range []struct {
		name  string
		setup func(dir string) error
		want  string
	}{
		{"lock file is a link", func(dir string) error {
			os.Mkdir(filepath.Join(dir, "procs"), 0o700)
			return os.Symlink(victim, filepath.Join(dir, "procs", "1.lock"))
		}, "lock file"},
		{"procs is a link", func(dir string) error {
			os.Mkdir(victim, 0o700)
			return os.Symlink(victim, filepath.Join(dir, "procs"))
		}, "symbolic link"},
		{"database is a link", func(dir string) error {
			return os.Symlink(victim, filepath.Join(dir, FileName))
		}, "symbolic link"},
		{"wal is a link", func(dir string) error {
			return os.Symlink(victim, filepath.Join(dir, FileName+"-wal"))
		}, "symbolic link"},
		{"shm is a link", func(dir string) error {
			return os.Symlink(victim, filepath.Join(dir, FileName+"-shm"))
		}, "symbolic link"},
		{"database of another user", func(dir string) error {
			if err := os.WriteFile(filepath.Join(dir, FileName), nil, 0o600); err != nil {
				return err
			}
			return os.Chown(filepath.Join(dir, FileName), uid, gid)
		}, fmt.Sprintf("belongs to uid %d", uid)},
		{"procs of another user", func(dir string) error {
			os.Mkdir(filepath.Join(dir, "procs"), 0o700)
			return os.Chown(filepath.Join(dir, "procs"), uid, gid)
		}, fmt.Sprintf("belongs to uid %d", uid)},
		{"directory of another user", func(dir string) error {
			return os.Chown(dir, uid, gid)
		}, fmt.Sprintf("belongs to uid %d", uid)},
		{"directory writable by its group", func(dir string) error {
			return os.Chmod(dir, 0o770)
		}, "group- or world-writable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.RemoveAll(victim)
			dir := t.TempDir()
			if err := c.setup(dir); err != nil {
				t.Fatal(err)
			}
			s, err := Open(context.Background(), dir)
			if err == nil {
				s.Close()
				t.Fatalf("opened")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q lacks %q", err, c.want)
			}
			if fi, err := os.Lstat(victim); err == nil && !fi.IsDir() {
				t.Errorf("a file was made through the link: %v", fi.Mode())
			}
			if ents, _ := os.ReadDir(victim); len(ents) != 0 {
				t.Errorf("files were made through the link: %v", ents)
			}
		})
	}
	// The state dir itself a link.
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "state")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(context.Background(), link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		if s != nil {
			s.Close()
		}
		t.Errorf("a state dir that is a link: %v", err)
	}
	if ents, _ := os.ReadDir(real); len(ents) != 0 {
		t.Errorf("files were made through the link: %v", ents)
	}
}
