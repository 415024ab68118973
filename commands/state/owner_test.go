package state

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

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
