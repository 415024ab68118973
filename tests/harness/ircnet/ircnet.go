// Package ircnet starts a real IRC network for kojibot's tests and for
// `make demo`: InspIRCd 3 with Anope 2.0 services (NickServ accounts, SASL
// PLAIN, account-tag, WHOIS 330) on loopback, run from a directory of its
// own and stopped by PID. It also holds a small raw-socket IRC client,
// independent of girc, to talk to the bot under test.
//
// Nothing here needs a *testing.T. As root the daemons run as user "irc".
package ircnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
)

//go:embed inspircd.conf.tmpl services.conf.tmpl
var templateFS embed.FS

var templates = template.Must(template.ParseFS(templateFS, "*.tmpl"))

// RunAs is the unprivileged user the daemons run as when this process is
// root (InspIRCd refuses root and Anope stalls as root).
const RunAs = "irc"

// Binary names, looked up in PATH (Debian installs them in /usr/sbin).
const (
	inspircdBin = "inspircd"
	anopeBin    = "anope"
)

// How long the daemons get to come up and to go down.
const (
	startTimeout = 20 * time.Second
	stopGrace    = 5 * time.Second
)

// servicesReady is what Anope prints once it has burst with the ircd; only
// then is SASL offered and NickServ answers.
var servicesReady = regexp.MustCompile(`services\.test \(.*\) is done syncing`)

// Options changes how the network is set up.
type Options struct {
	// NoAccountTag starts InspIRCd without ircv3_accounttag, so clients
	// must fall back to WHOIS 330 to learn a sender's account.
	NoAccountTag bool
}

// Network is a running InspIRCd + Anope pair. Its methods are safe for
// concurrent use.
type Network struct {
	dir     string
	ownDir  bool
	opts    Options
	vars    confVars
	mu      sync.Mutex
	ircd    *daemon
	anope   *daemon
	stopped bool
}

// confVars is what the embedded templates are rendered with.
type confVars struct {
	Dir        string
	ClientPort int
	StrictPort int
	LinkPort   int
	LinkPass   string
	AccountTag bool
}

// daemon is one started server process.
type daemon struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start renders the configuration into dir, starts InspIRCd and Anope on
// free loopback ports and returns once services have linked (SASL and
// NickServ usable). An empty dir makes a temporary one that Stop removes.
// When running as root, dir is given to user irc and, for directories under
// the system temporary directory, its ancestors get the search bit so that
// user can reach it (t.TempDir() works as is).
func Start(ctx context.Context, dir string, opts Options) (*Network, error) {
	n := &Network{opts: opts}
	if dir == "" {
		d, err := os.MkdirTemp("", "ircnet-")
		if err != nil {
			return nil, fmt.Errorf("ircnet: %w", err)
		}
		dir, n.ownDir = d, true
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("ircnet: %w", err)
	}
	n.dir = dir
	// Another process may take a port between FreePort and the daemon's
	// bind: try again with fresh ports.
	for attempt := 1; ; attempt++ {
		err = n.prepare()
		if err == nil {
			err = n.start(ctx)
		}
		if err == nil {
			return n, nil
		}
		if attempt == startAttempts || ctx.Err() != nil {
			n.removeOwnDir()
			return nil, err
		}
	}
}

// startAttempts is how many sets of ports Start tries.
const startAttempts = 3

// prepare picks ports and renders the configuration files.
func (n *Network) prepare() error {
	for _, sub := range []string{"anope/conf", "anope/data", "anope/logs"} {
		if err := os.MkdirAll(filepath.Join(n.dir, sub), 0o755); err != nil {
			return fmt.Errorf("ircnet: %w", err)
		}
	}
	if err := os.Chmod(n.dir, 0o755); err != nil {
		return fmt.Errorf("ircnet: %w", err)
	}
	if err := reachable(n.dir); err != nil {
		return err
	}
	var ports [3]int
	for i := range ports {
		p, err := harness.FreePort()
		if err != nil {
			return fmt.Errorf("ircnet: %w", err)
		}
		ports[i] = p
	}
	pass := make([]byte, 12)
	if _, err := rand.Read(pass); err != nil {
		return fmt.Errorf("ircnet: %w", err)
	}
	n.vars = confVars{
		Dir:        n.dir,
		ClientPort: ports[0],
		StrictPort: ports[1],
		LinkPort:   ports[2],
		LinkPass:   "lp" + hex.EncodeToString(pass),
		AccountTag: !n.opts.NoAccountTag,
	}
	files := []struct{ tmpl, path string }{
		{"inspircd.conf.tmpl", "inspircd.conf"},
		{"services.conf.tmpl", "anope/conf/services.conf"},
	}
	for _, f := range files {
		var buf bytes.Buffer
		if err := templates.ExecuteTemplate(&buf, f.tmpl, n.vars); err != nil {
			return fmt.Errorf("ircnet: render %s: %w", f.tmpl, err)
		}
		if err := os.WriteFile(filepath.Join(n.dir, f.path), buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("ircnet: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(n.dir, "motd.txt"), []byte("kojibot test network\n"), 0o644); err != nil {
		return fmt.Errorf("ircnet: %w", err)
	}
	if err := os.WriteFile(filepath.Join(n.dir, "anope/services.motd"), nil, 0o644); err != nil {
		return fmt.Errorf("ircnet: %w", err)
	}
	if err := harness.Chown(n.dir, RunAs); err != nil {
		return fmt.Errorf("ircnet: chown %s: %w", n.dir, err)
	}
	return nil
}

// reachable makes sure user irc can traverse to dir when we are root: the
// ancestors inside the system temporary directory get o+x.
func reachable(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	tmp, err := filepath.Abs(os.TempDir())
	if err != nil {
		return fmt.Errorf("ircnet: %w", err)
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("ircnet: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if p != tmp && !strings.HasPrefix(p, tmp+string(filepath.Separator)) {
				return fmt.Errorf("ircnet: user %s cannot reach %s: %s is not searchable by others", RunAs, dir, p)
			}
			if err := os.Chmod(p, fi.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("ircnet: %w", err)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// start launches InspIRCd, then Anope, and waits until services have synced.
func (n *Network) start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	ircd, err := n.launch("inspircd", inspircdBin,
		"--config", filepath.Join(n.dir, "inspircd.conf"), "--nofork", "--runasroot")
	if err != nil {
		return err
	}
	n.ircd = ircd
	for _, port := range []int{n.vars.LinkPort, n.vars.ClientPort, n.vars.StrictPort} {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := waitUntil(ctx, ircd, func() bool { return harness.Listening(addr) }); err != nil {
			n.stopLocked()
			return fmt.Errorf("ircnet: inspircd not listening on %s: %w\n%s", addr, err, n.tail("inspircd.out", "inspircd.log"))
		}
	}
	outPath := filepath.Join(n.dir, "services.out")
	anope, err := n.launch("services", anopeBin,
		"--confdir="+filepath.Join(n.dir, "anope/conf"),
		"--dbdir="+filepath.Join(n.dir, "anope/data"),
		"--logdir="+filepath.Join(n.dir, "anope/logs"),
		"--modulesdir=/usr/lib/anope", "--localedir=/usr/share/anope/locale", "--nofork")
	if err != nil {
		n.stopLocked()
		return err
	}
	n.anope = anope
	synced := func() bool {
		b, _ := os.ReadFile(outPath)
		return servicesReady.Match(b)
	}
	if err := waitUntil(ctx, anope, synced); err != nil {
		n.stopLocked()
		return fmt.Errorf("ircnet: services did not link: %w\n%s", err, n.tail("services.out", "inspircd.log"))
	}
	n.stopped = false
	return nil
}

// launch starts one daemon in the foreground of its own process, stdio
// redirected to <name>.out (truncated), as user irc when root.
func (n *Network) launch(name, bin string, args ...string) (*daemon, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("ircnet: %s is not installed (apt-get install inspircd anope): %w", bin, err)
	}
	out, err := os.Create(filepath.Join(n.dir, name+".out"))
	if err != nil {
		return nil, fmt.Errorf("ircnet: %w", err)
	}
	defer out.Close()
	_ = harness.Chown(out.Name(), RunAs)
	cmd := exec.Command(path, args...)
	cmd.Dir = n.dir
	cmd.Stdout, cmd.Stderr = out, out
	// If the test binary dies without Stop, the daemons are told to go too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := harness.AsUser(cmd, RunAs); err != nil {
		return nil, fmt.Errorf("ircnet: %w", err)
	}
	if err := harness.Spawn(cmd); err != nil {
		return nil, fmt.Errorf("ircnet: start %s: %w", name, err)
	}
	d := &daemon{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(d.exited) }()
	return d, nil
}

// waitUntil polls cond until it holds, the daemon exits, the context ends
// or startTimeout passes.
func waitUntil(ctx context.Context, d *daemon, cond func() bool) error {
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("%s exited: %s", d.name, d.cmd.ProcessState)
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("timed out after %v", startTimeout)
		case <-tick.C:
		}
	}
}

// tail returns the last lines of the named files in the work directory,
// for error messages.
func (n *Network) tail(names ...string) string {
	var b strings.Builder
	for _, name := range names {
		data, _ := os.ReadFile(filepath.Join(n.dir, name))
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 20 {
			lines = lines[len(lines)-20:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", name, strings.Join(lines, "\n"))
	}
	return b.String()
}

// stop ends the daemon: SIGTERM, SIGKILL after grace.
func (d *daemon) stop(grace time.Duration) {
	if d == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(grace):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// stopLocked stops services first (so they save their database), then the
// ircd. n.mu must be held.
func (n *Network) stopLocked() {
	n.anope.stop(stopGrace)
	n.ircd.stop(stopGrace)
	n.anope, n.ircd = nil, nil
	n.stopped = true
}

// Stop stops both daemons by PID. A directory made by Start is removed.
// Stop is safe to call more than once.
func (n *Network) Stop() {
	n.mu.Lock()
	n.stopLocked()
	n.mu.Unlock()
	n.removeOwnDir()
}

func (n *Network) removeOwnDir() {
	if n.ownDir {
		_ = os.RemoveAll(n.dir)
	}
}

// Restart stops InspIRCd and Anope and starts them again on the same ports
// with the same accounts: every client is disconnected, as in a server
// restart.
func (n *Network) Restart(ctx context.Context) error {
	n.mu.Lock()
	n.stopLocked()
	n.mu.Unlock()
	return n.start(ctx)
}

// Dir is the network's work directory (configuration, logs, services
// database).
func (n *Network) Dir() string { return n.dir }

// Addr is the host:port of the clients port whose connect class lifts the
// flood limits: for test clients.
func (n *Network) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.vars.ClientPort))
}

// StrictAddr is the host:port of the second clients port, whose connect
// class keeps InspIRCd's default flood limits (threshold 10, commandrate
// 1000, fake lag): the bot under test connects here.
func (n *Network) StrictAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.vars.StrictPort))
}

// Host is the address both client ports listen on, for configurations
// that take host and port apart.
func (n *Network) Host() string { return "127.0.0.1" }

// Port is the lifted clients port number.
func (n *Network) Port() int { return n.vars.ClientPort }

// StrictPort is the strict clients port number.
func (n *Network) StrictPort() int { return n.vars.StrictPort }

// ErrRegister is returned when NickServ refuses a registration.
var ErrRegister = errors.New("ircnet: NickServ REGISTER refused")

// RegisterAccount registers the services account name with password,
// through a throwaway client using that nick.
func (n *Network) RegisterAccount(ctx context.Context, name, password string) error {
	c, err := Dial(ctx, n.Addr(), name, ClientOptions{})
	if err != nil {
		return err
	}
	defer c.Quit()
	if err := c.Privmsg("NickServ", "REGISTER "+password+" "+name+"@example.org"); err != nil {
		return err
	}
	m, err := c.Expect(ctx, func(m Message) bool {
		return m.Command == "900" || (m.Command == "NOTICE" && strings.EqualFold(m.Source, "NickServ"))
	})
	if err != nil {
		return fmt.Errorf("ircnet: register %s: %w", name, err)
	}
	if m.Command == "900" || strings.Contains(m.Text, "registered") && !strings.Contains(m.Text, "already") {
		return nil
	}
	return fmt.Errorf("%w: %s: %s", ErrRegister, name, m.Text)
}
