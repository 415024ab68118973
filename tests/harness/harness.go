// Package harness starts the real servers kojibot's end-to-end tests and
// `make demo` talk to: an InspIRCd + Anope IRC network, a throwaway
// PostgreSQL cluster with a Koji schema, sshd builders and a FASJSON stand-in.
// Every server runs from a temporary directory on loopback and is stopped by
// PID; nothing here needs a *testing.T so the demo can reuse it.
package harness

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var portMu sync.Mutex
var handedOut = map[int]bool{}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now and
// that this process has not handed out before. The kernel picks it from
// the ephemeral range, so test binaries running side by side do not
// collide the way counters would.
func FreePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for i := 0; i < 100; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("harness: free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut[port] {
			handedOut[port] = true
			return port, nil
		}
	}
	return 0, errors.New("harness: no free port")
}

// WaitFor calls cond every 50ms until it returns true or the timeout passes.
func WaitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Listening reports whether something accepts TCP connections on addr.
func Listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// AsUser makes cmd run as the named unprivileged user when this process is
// root (PostgreSQL, InspIRCd and Anope refuse or misbehave as root).
func AsUser(cmd *exec.Cmd, name string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("harness: user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	return nil
}

// Traversable lets every user reach dir (o+x, never read or write) and
// each of its parents inside the system's temporary directory, so that an
// unprivileged account in a test (the bot's SSH user on the sandbox's
// machines) can run programs and open files below dir that tests put
// there, as a temporary directory's 0700 would forbid.
func Traversable(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	tmp := filepath.Clean(os.TempDir())
	for d := dir; ; d = filepath.Dir(d) {
		if d != dir && !strings.HasPrefix(d, tmp+string(filepath.Separator)) {
			return nil
		}
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
				return err
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// Chown gives path and everything below it to the named user when root.
func Chown(path, name string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return exec.Command("chown", "-R", name+":", path).Run()
}

var (
	spawnOnce sync.Once
	spawns    chan spawnRequest
)

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

// Spawn starts cmd from one goroutine locked to its OS thread for the life
// of the process. A daemon started with SysProcAttr.Pdeathsig (so that it
// dies with the test binary) gets that signal when the *thread* that forked
// it exits, and the Go runtime ends threads whose goroutine exits locked;
// starting every daemon from one thread that never exits keeps Pdeathsig
// meaning "the test binary died".
func Spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawns = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread()
			for r := range spawns {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawns <- spawnRequest{cmd, done}
	return <-done
}

// StopProcess sends SIGTERM to the process and SIGKILL after grace.
func StopProcess(p *os.Process, grace time.Duration) {
	if p == nil {
		return
	}
	_ = p.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _, _ = p.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		_ = p.Kill()
		<-done
	}
}

// ServerBound raises go test's -parallel to n unless the command line set
// it: the parallel tests of a package that mostly waits on its servers
// (pacing, handshakes, timeouts) then wait together instead of GOMAXPROCS
// at a time. n is what the servers bear (a PostgreSQL cluster's
// connections, say). Call it from TestMain after flag.Parse.
func ServerBound(n int) {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set && flag.Lookup("test.parallel") != nil {
		_ = flag.Set("test.parallel", strconv.Itoa(n))
	}
}
