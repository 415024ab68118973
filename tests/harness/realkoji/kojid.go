package realkoji

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
)

// KojidUser is the unprivileged account a Kojid runs as when the caller is
// root (as root, kojid writes /var/log/kojid.log).
const KojidUser = "nobody"

// kojidShim runs builder/kojid with one change, made in memory: the task
// manager's scan of /etc/mock/koji (the mock configurations of local
// buildroots, which a builder without mock does not have and which must
// not be made in this machine's /etc) finds none. Everything else is the
// release's kojid.
const kojidShim = `import runpy, sys
import koji.daemon
koji.daemon.TaskManager._scanLocalBuildroots = lambda self: {}
sys.argv[0] = KOJID
runpy.run_path(KOJID, run_name="__main__")
`

// Kojid is the release's builder daemon running as one Koji host.
type Kojid struct {
	Host string
	Dir  string

	proc   *os.Process
	exited chan struct{}
}

// KojidOptions tune a kojid's setup.
type KojidOptions struct {
	// SleepTime is kojid's polling interval (sleeptime), in seconds; 0 is
	// one second. Every cycle checks the host in.
	SleepTime int
	// MockConfigDir says the machine kojid runs on has /etc/mock/koji of
	// its own (a builder's /etc): kojid runs as released. Otherwise it
	// runs through a shim whose task manager finds no local buildroots
	// there, so that nothing is made in this machine's /etc.
	MockConfigDir bool
}

// KojidSetup is what runs one kojid: its directory (configuration,
// certificate, work dirs and the multilib stub), its command line and
// environment (besides the caller's), to be run as KojidUser in Dir.
type KojidSetup struct {
	Dir  string
	Argv []string
	Env  []string
}

// SetupKojid prepares, in a directory of its own under the hub's, a kojid
// for host name (added with addHost before), logged in by its certificate
// (CN=name): the recipe's kojid.conf with opts.SleepTime, the
// certificate, a stub of the multilib module (kojid imports it, only
// createrepo tasks use it, and Debian does not package it) and, without
// opts.MockConfigDir, the shim. The directory belongs to KojidUser.
func (h *Hub) SetupKojid(name string, opts KojidOptions) (*KojidSetup, error) {
	dir, err := os.MkdirTemp(h.Dir, "kojid-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	for _, d := range []string{"work", "mock", "py/multilib"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	pem, err := h.Cert(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(pem)
	if err != nil {
		return nil, err
	}
	sleep := opts.SleepTime
	if sleep <= 0 {
		sleep = 1
	}
	files := map[string]string{
		"client.pem": string(b),
		"kojid.conf": fmt.Sprintf(`[kojid]
server = %s
topurl = https://%s/kojifiles
topdir = %s
workdir = %s/work
mockdir = %s/mock
cert = %s/client.pem
serverca = %s
sleeptime = %d
minspace = 1
maxjobs = 2
log_level = INFO
; a hub restart costs a couple of seconds, not the default minute
retry_interval = 1
max_retries = 600
offline_retry_interval = 1
`, h.URL, ServiceHost, filepath.Join(h.Dir, "mnt", "koji"), dir, dir, dir, h.CACert(), sleep),
		"py/multilib/__init__.py": "",
		"py/multilib/multilib.py": "",
		// kojid takes no task while the load average is above four per
		// CPU, a figure it does not let be configured. The machine's
		// load says nothing of a sandbox builder's, and make test's
		// packages running side by side on two cores reach it.
		"py/sitecustomize.py": "import os\nos.getloadavg = lambda: (0.0, 0.0, 0.0)\n",
	}
	kojid := filepath.Join(h.Src, "builder", "kojid")
	argv := []string{Python, kojid}
	if !opts.MockConfigDir {
		files["kojid-shim.py"] = strings.Replace(kojidShim, "KOJID", fmt.Sprintf("%q", kojid), -1)
		argv = []string{Python, filepath.Join(dir, "kojid-shim.py")}
	}
	for f, text := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "client.pem"), 0o600); err != nil {
		return nil, err
	}
	if err := harness.Chown(dir, KojidUser); err != nil {
		return nil, err
	}
	return &KojidSetup{
		Dir:  dir,
		Argv: append(argv, "-c", filepath.Join(dir, "kojid.conf"), "--fg", "--force-lock", "--verbose"),
		Env: []string{"PYTHONPATH=" + h.Src + ":" + filepath.Join(dir, "py"),
			"PYTHONDONTWRITEBYTECODE=1", "HOME=" + dir, "LANG=C.UTF-8"},
	}, nil
}

// StartKojid runs builder/kojid as host name (added with addHost before),
// logged in by its certificate (CN=name), in the foreground as KojidUser,
// polling every second, through the shim (see KojidOptions). It returns
// once the process runs; the host checks in (host.update_time) within a
// few seconds. Stop it before Close.
func (h *Hub) StartKojid(ctx context.Context, name string) (_ *Kojid, err error) {
	setup, err := h.SetupKojid(name, KojidOptions{})
	if err != nil {
		return nil, err
	}
	dir := setup.Dir
	k := &Kojid{Host: name, Dir: dir}
	defer func() {
		if err != nil {
			k.Stop()
		}
	}()
	cmd := exec.Command(setup.Argv[0], setup.Argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), setup.Env...)
	out, err := os.Create(filepath.Join(dir, "kojid.out"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := harness.AsUser(cmd, KojidUser); err != nil {
		return nil, err
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := harness.Spawn(cmd); err != nil {
		return nil, fmt.Errorf("realkoji: kojid: %w", err)
	}
	k.proc = cmd.Process
	k.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(k.exited) }()
	// A kojid that cannot log in or start exits at once.
	select {
	case <-k.exited:
		return nil, fmt.Errorf("realkoji: kojid for %s exited: %s", name, k.Output())
	case <-time.After(300 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return k, nil
}

// Output is what kojid wrote (its log goes to standard error in the
// foreground), at most the last 4000 bytes.
func (k *Kojid) Output() string {
	b, _ := os.ReadFile(filepath.Join(k.Dir, "kojid.out"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Running reports whether the daemon still runs.
func (k *Kojid) Running() bool {
	if k.exited == nil {
		return false
	}
	select {
	case <-k.exited:
		return false
	default:
		return true
	}
}

// Stop stops kojid (its process group) by PID: SIGTERM, then SIGKILL after
// 10 s. Its directory stays, for its output, until the hub's Close.
func (k *Kojid) Stop() {
	if k.proc == nil {
		return
	}
	_ = syscall.Kill(-k.proc.Pid, syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-k.proc.Pid, syscall.SIGKILL)
		<-k.exited
	}
	k.proc = nil
}

// errNotCheckedIn is returned by WaitCheckin when the host never checks in.
var errNotCheckedIn = errors.New("realkoji: the host did not check in")

// WaitCheckin waits until the hub records a check-in of host name after
// since (the update_ts of getHost: host.update_time, which kojid's
// updateHost sets every cycle), and returns its time.
func (h *Hub) WaitCheckin(ctx context.Context, name string, since time.Time, timeout time.Duration) (time.Time, error) {
	anon := h.Anonymous()
	var last time.Time
	ok := harness.WaitFor(ctx, timeout, func() bool {
		var err error
		last, err = h.LastCheckin(ctx, anon, name)
		return err == nil && last.After(since)
	})
	if !ok {
		return last, fmt.Errorf("%w after %v within %v (last %v)", errNotCheckedIn, since, timeout, last)
	}
	return last, nil
}

// LastCheckin is host name's last check-in as the hub reports it (getHost's
// update_ts), zero when it never checked in.
func (h *Hub) LastCheckin(ctx context.Context, c *Client, name string) (time.Time, error) {
	host, err := c.Struct(ctx, "getHost", name)
	if err != nil {
		return time.Time{}, err
	}
	if host == nil {
		return time.Time{}, fmt.Errorf("realkoji: no host %s", name)
	}
	switch ts := host["update_ts"].(type) {
	case nil:
		return time.Time{}, nil
	case float64:
		sec, frac := math.Modf(ts)
		return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3), nil
	default:
		return time.Time{}, fmt.Errorf("realkoji: getHost %s: update_ts %T %v", name, ts, ts)
	}
}

// ServiceLine is a shell command line that runs this kojid as a machine's
// service, as root inside that machine: it makes the recipe's
// /etc/mock/koji in the machine's own /etc (with MockConfigDir), drops to
// KojidUser and runs kojid in the foreground in its directory, its log
// appended to Dir/kojid.out. The daemon keeps the line's process id.
func (s *KojidSetup) ServiceLine() (string, error) {
	u, err := user.Lookup(KojidUser)
	if err != nil {
		return "", err
	}
	q := func(words []string) string {
		out := make([]string, len(words))
		for i, w := range words {
			out[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		return strings.Join(out, " ")
	}
	return fmt.Sprintf("mkdir -p /etc/mock/koji && cd %s && exec setpriv --reuid=%s --regid=%s --clear-groups -- env %s %s >>%s 2>&1",
		q([]string{s.Dir}), u.Uid, u.Gid, q(s.Env), q(s.Argv), q([]string{filepath.Join(s.Dir, "kojid.out")})), nil
}
