// Package builders starts a farm of real OpenSSH "builders" for kojibot's
// tests and `make demo`: one sshd per builder on its own loopback address
// (127.0.0.2 onwards), each in its own mount and PID namespaces with tmpfs
// mounts of a chosen size at /var/lib/mock and /mnt/build (so "disk full"
// is real), a service stand-in (fakesvc) whose services are real
// processes, and its own /etc: nobody logs in as root; the bot's user
// (User) may run contrib's helper, and nothing else, through Debian's
// sudo. It needs root and no *testing.T.
package builders

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/contrib"
	"github.com/fedora-infra/kojibot/tests/harness"
)

//go:embed fakesvc.sh
var fakesvcScript []byte

// Paths inside every builder.
const (
	// MockDir and BuildDir are the builder's tmpfs mounts (Spec.MockMiB,
	// Spec.BuildMiB).
	MockDir  = "/var/lib/mock"
	BuildDir = "/mnt/build"
	// ServiceStateDir is fakesvc's own tmpfs: SERVICE.pid, SERVICE.broken
	// (makes start fail) and journal (one line per start/stop/restart).
	ServiceStateDir = "/run/fakesvc"
	// DefaultMiB is the size of MockDir and BuildDir when a Spec leaves it 0.
	DefaultMiB = 64
	// User is the unprivileged account the farm's client key logs in as on
	// every machine (root cannot log in over SSH). Its UID and GID exist
	// only inside the machines.
	User = "kojibot"
	// UserID is User's UID and GID inside the machines.
	UserID = 4242
	// HelperCommand is ssh.helper for the farm: the contrib helper through
	// sudo, as in production.
	HelperCommand = "sudo -n " + contrib.HelperPath
)

// Spec describes one builder.
type Spec struct {
	// Name is the host's name in Farm.Hosts (a Koji host name or its first
	// label): letters, digits and ._- only.
	Name string
	// MockMiB and BuildMiB size the tmpfs at /var/lib/mock and /mnt/build
	// (DefaultMiB when 0).
	MockMiB, BuildMiB int
	// Mounts are extra tmpfs mounts, absolute path → size in MiB (for
	// example /mnt/koji on the hub).
	Mounts map[string]int
	// Services go to config.Host.Services and are started (through
	// fakesvc) when the builder starts.
	Services []string
	// ServiceCommands are the unit files of some of Services: service →
	// a shell command line that fakesvc runs as root inside the machine
	// (in its own session, output redirected by the line itself) in place
	// of its sleeping stand-in, for a real daemon. See also
	// Farm.SetServiceCommand.
	ServiceCommands map[string]string
	// Port is sshd's port; 0 picks a free one.
	Port int
	// Bastion lets the bot's key forward connections through this machine
	// (its authorized_keys entry adds port-forwarding to restrict), for a
	// jump host.
	Bastion bool
	// HelperConf are extra lines for the machine's /etc/kojibot-helper.conf
	// (for example "xen_config_dir /srv/xen" on a xen host). The farm
	// writes the rest: the fakesvc stand-in as systemctl, a service line
	// for each of Services and cleanup_dir lines for MockDir and BuildDir.
	HelperConf []string
}

// Farm is a set of running builders. Its methods are safe for concurrent
// use; Stop ends every process it started.
type Farm struct {
	dir        string
	keyFile    string
	knownHosts string
	svcCommand string

	mu    sync.Mutex
	hosts map[string]*host
	names []string
}

// host is one builder.
type host struct {
	spec    Spec
	ip      string
	port    int
	dir     string
	hostKey ssh.PublicKey

	cmd    *exec.Cmd     // unshare; nil when down
	exited chan struct{} // closed when cmd has been waited for
	stderr *bytes.Buffer
	init   int    // host PID of the namespace's PID 1 (sshd)
	pidNS  string // its /proc/PID/ns/pid link
}

func (h *host) addr() string { return net.JoinHostPort(h.ip, strconv.Itoa(h.port)) }

var (
	ipMu   sync.Mutex
	nextIP int // addresses handed out so far, modulo ipCount
)

// ipCount is how many addresses allocIP hands out before it starts again:
// 253 per 127.0.x.0/24 (hosts 2 to 254), for x from 0 to 255.
const ipCount = 256 * 253

// allocIP returns the next loopback address of this process: 127.0.0.2 to
// 127.0.0.254 first, then 127.0.1.2 to 127.0.1.254, and so on to
// 127.0.255.254 (the whole of 127/8 is loopback on Linux), then 127.0.0.2
// again.
func allocIP() string {
	ipMu.Lock()
	defer ipMu.Unlock()
	n := nextIP
	nextIP = (nextIP + 1) % ipCount
	return fmt.Sprintf("127.0.%d.%d", n/253, 2+n%253)
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Start writes keys and configuration under dir (which must exist and will
// hold the builders' files) and starts one sshd per spec. The farm's client
// key (KeyFile) logs in as User on every builder, never as root; User may
// run contrib's helper, and nothing else, as root through sudo. KnownHosts
// lists every builder's host key. When Start fails it stops what it
// started.
func Start(ctx context.Context, dir string, specs []Spec) (*Farm, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("builders: must run as root (sshd, unshare, tmpfs mounts)")
	}
	if len(specs) == 0 {
		return nil, errors.New("builders: no specs")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	f := &Farm{
		dir:        dir,
		keyFile:    filepath.Join(dir, "id_ed25519"),
		knownHosts: filepath.Join(dir, "known_hosts"),
		hosts:      make(map[string]*host),
	}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return nil, fmt.Errorf("builders: %w", err)
	}
	fakesvc := filepath.Join(dir, "bin", "fakesvc")
	if err := os.WriteFile(fakesvc, fakesvcScript, 0o755); err != nil {
		return nil, fmt.Errorf("builders: %w", err)
	}
	f.svcCommand = fakesvc + " {action} {service}"
	if err := os.WriteFile(filepath.Join(dir, "bin", "kojibot-helper"), contrib.Helper, 0o755); err != nil {
		return nil, fmt.Errorf("builders: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sudoers"), contrib.Sudoers, 0o440); err != nil {
		return nil, fmt.Errorf("builders: %w", err)
	}
	if err := keygen(ctx, f.keyFile, "kojibot-test-client"); err != nil {
		return nil, err
	}
	pub, err := os.ReadFile(f.keyFile + ".pub")
	if err != nil {
		return nil, fmt.Errorf("builders: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		return nil, fmt.Errorf("builders: %w", err)
	}

	for _, s := range specs {
		if !validName.MatchString(s.Name) {
			return nil, fmt.Errorf("builders: invalid builder name %q", s.Name)
		}
		if _, dup := f.hosts[s.Name]; dup {
			return nil, fmt.Errorf("builders: builder %q listed twice", s.Name)
		}
		for p, mib := range s.Mounts {
			if !filepath.IsAbs(p) || filepath.Clean(p) != p || mib <= 0 {
				return nil, fmt.Errorf("builders: %s: mount %q of %d MiB: want a clean absolute path and a size > 0", s.Name, p, mib)
			}
		}
		h := &host{spec: s, ip: allocIP(), dir: filepath.Join(dir, "hosts", s.Name)}
		if err := os.MkdirAll(h.dir, 0o700); err != nil {
			return nil, fmt.Errorf("builders: %w", err)
		}
		keyPath := filepath.Join(h.dir, "ssh_host_ed25519_key")
		if err := keygen(ctx, keyPath, s.Name); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(keyPath + ".pub")
		if err != nil {
			return nil, fmt.Errorf("builders: %w", err)
		}
		if h.hostKey, _, _, _, err = ssh.ParseAuthorizedKey(b); err != nil {
			return nil, fmt.Errorf("builders: %s host key: %w", s.Name, err)
		}
		if err := os.WriteFile(filepath.Join(h.dir, "helper.conf"), []byte(f.helperConf(s)), 0o644); err != nil {
			return nil, fmt.Errorf("builders: %w", err)
		}
		if err := os.WriteFile(filepath.Join(h.dir, "authorized_keys"), []byte(AuthorizedKeyOptions(s.Bastion)+" "+string(pub)), 0o644); err != nil {
			return nil, fmt.Errorf("builders: %w", err)
		}
		if err := os.MkdirAll(filepath.Join(h.dir, "etc-layer"), 0o700); err != nil {
			return nil, fmt.Errorf("builders: %w", err)
		}
		for svc, line := range s.ServiceCommands {
			if err := writeUnit(h.dir, svc, line); err != nil {
				return nil, err
			}
		}
		f.hosts[s.Name] = h
		f.names = append(f.names, s.Name)
	}

	for _, name := range f.names {
		if err := f.start(ctx, f.hosts[name]); err != nil {
			f.Stop()
			return nil, err
		}
	}
	if err := f.writeClientFiles(); err != nil {
		f.Stop()
		return nil, err
	}
	return f, nil
}

// keygen makes an unencrypted ed25519 key pair at path and path.pub.
func keygen(ctx context.Context, path, comment string) error {
	out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("builders: ssh-keygen %s: %w: %s", path, err, out)
	}
	return nil
}

// sshdConfig is one builder's sshd_config.
func (f *Farm) sshdConfig(h *host) string {
	return fmt.Sprintf(`# kojibot test builder %s
ListenAddress %s
Port %d
AddressFamily inet
HostKey %s
PidFile none
AuthorizedKeysFile /etc/ssh/authorized_keys/%%u
PermitRootLogin no
AllowUsers %s
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
StrictModes no
AllowTcpForwarding yes
MaxStartups 100:30:200
PrintMotd no
PrintLastLog no
LogLevel DEBUG1
Subsystem sftp internal-sftp
`, h.spec.Name, h.ip, h.port, filepath.Join(h.dir, "ssh_host_ed25519_key"), User)
}

// BotAddress is where the bot connects from in the farm (loopback).
const BotAddress = "127.0.0.1"

// AuthorizedKeyOptions are the options of the bot's key on every machine,
// as docs/deploying.md gives them: no pty, forwarding, agent or X11
// (restrict), and only from the bot's address; a jump host also forwards.
func AuthorizedKeyOptions(bastion bool) string {
	opts := `restrict,from="` + BotAddress + `"`
	if bastion {
		opts += ",port-forwarding"
	}
	return opts
}

// helperConf is a machine's /etc/kojibot-helper.conf.
func (f *Farm) helperConf(s Spec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# kojibot test machine %s\nsystemctl %s\ncleanup_dir %s\ncleanup_dir %s\n",
		s.Name, filepath.Join(f.dir, "bin", "fakesvc"), MockDir, BuildDir)
	for _, svc := range s.Services {
		fmt.Fprintf(&b, "service %s\n", svc)
	}
	for _, l := range s.HelperConf {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// bootScript runs as the new namespaces' PID 1. It gives the machine its
// own /etc (an overlay on the host's, in a tmpfs: the host's files are
// never touched) with the unprivileged user (see User), the helper's
// configuration and the sudoers rule of contrib; installs the helper at
// contrib.HelperPath and the user's home with the client key; mounts the
// tmpfs (arguments in pairs: MiB path) and becomes sshd. The test
// machine's own ~/.bashrc (which Debian's bash reads for every command
// sshd runs as root, and which may run slow things like pyenv init) is
// masked inside the builder, so that builders behave like clean machines.
const bootScript = `set -e
cfg=$1; log=$2; host=$3; farm=$4; user=$5; id=$6; shift 6
if [ -f "$HOME/.bashrc" ]; then mount --bind /dev/null "$HOME/.bashrc"; fi
layer=$host/etc-layer
mount -t tmpfs -o size=8m,mode=0700 tmpfs "$layer"
mkdir -p "$layer/upper/sudoers.d" "$layer/work"
grep -v "^$user:" /etc/passwd > "$layer/upper/passwd"
echo "$user:x:$id:$id:kojibot:/home/$user:/bin/bash" >> "$layer/upper/passwd"
grep -v "^$user:" /etc/group > "$layer/upper/group"
echo "$user:x:$id:" >> "$layer/upper/group"
grep -v "^$user:" /etc/shadow > "$layer/upper/shadow"
echo "$user:*:20000:0:99999:7:::" >> "$layer/upper/shadow"
chmod 0644 "$layer/upper/passwd" "$layer/upper/group"
chmod 0640 "$layer/upper/shadow"
chgrp shadow "$layer/upper/shadow" 2>/dev/null || true
cp "$farm/sudoers" "$layer/upper/sudoers.d/kojibot"
chmod 0440 "$layer/upper/sudoers.d/kojibot"
cp "$host/helper.conf" "$layer/upper/kojibot-helper.conf"
# fakesvc's unit files (Spec.ServiceCommands), in the machine's own /etc.
mkdir -p "$layer/upper/fakesvc"
for u in "$host"/units/*.cmd; do [ -f "$u" ] && cp "$u" "$layer/upper/fakesvc/"; done
chmod 0644 "$layer/upper/kojibot-helper.conf"
# The bot's key is root's to grant (a key the bot's user adds to its own
# ~/.ssh is never read), restricted to the bot's address.
mkdir -p "$layer/upper/ssh/authorized_keys"
cp "$host/authorized_keys" "$layer/upper/ssh/authorized_keys/$user"
chmod 0755 "$layer/upper/ssh" "$layer/upper/ssh/authorized_keys"
chmod 0644 "$layer/upper/ssh/authorized_keys/$user"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$layer/upper,workdir=$layer/work" /etc
helper=` + contrib.HelperPath + `
mkdir -p "$(dirname "$helper")" /home # mount points; both exist on Debian
mount -t tmpfs -o size=1m,mode=0755 tmpfs "$(dirname "$helper")"
cp "$farm/bin/kojibot-helper" "$helper"
chmod 0755 "$helper"
mount -t tmpfs -o size=1m,mode=0755 tmpfs /home
mkdir -p "/home/$user/.ssh"
chown -R "$id:$id" "/home/$user"
chmod 0700 "/home/$user/.ssh"
mkdir -p /run/sshd
while [ $# -gt 0 ]; do
	mkdir -p "$2"
	mount -t tmpfs -o "size=$1m,mode=0755" tmpfs "$2"
	shift 2
done
exec /usr/sbin/sshd -D -f "$cfg" -E "$log"
`

// start boots one builder, retrying on another free port when the one it
// picked was taken meanwhile, then starts its services.
func (f *Farm) start(ctx context.Context, h *host) error {
	for try := 0; ; try++ {
		var err error
		if h.spec.Port != 0 {
			h.port = h.spec.Port
		} else if h.port, err = harness.FreePort(); err != nil {
			return err
		}
		err = f.boot(ctx, h)
		if err == nil {
			break
		}
		if h.spec.Port != 0 || try == 2 || !strings.Contains(err.Error(), "Address already in use") {
			return err
		}
	}
	for _, svc := range h.spec.Services {
		if out, err := f.exec(h, f.svcScript("start", svc)); err != nil {
			f.kill(h)
			return fmt.Errorf("builders: %s: starting service %s: %w: %s", h.spec.Name, svc, err, out)
		}
	}
	return nil
}

// svcScript is the shell line that runs fakesvc with its arguments.
func (f *Farm) svcScript(action, service string) string {
	return fmt.Sprintf("%s %s %s", filepath.Join(f.dir, "bin", "fakesvc"), action, service)
}

// boot starts sshd in fresh namespaces and waits until it accepts
// connections.
func (f *Farm) boot(ctx context.Context, h *host) error {
	cfgPath := filepath.Join(h.dir, "sshd_config")
	logPath := filepath.Join(h.dir, "sshd.log")
	if err := os.WriteFile(cfgPath, []byte(f.sshdConfig(h)), 0o600); err != nil {
		return fmt.Errorf("builders: %w", err)
	}
	_ = os.Remove(logPath)
	args := []string{"--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--mount-proc",
		"--", "/bin/sh", "-c", bootScript, "boot", cfgPath, logPath, h.dir, f.dir, User, strconv.Itoa(UserID)}
	mounts := map[string]int{MockDir: h.spec.MockMiB, BuildDir: h.spec.BuildMiB, ServiceStateDir: 1}
	for p, mib := range h.spec.Mounts {
		mounts[p] = mib
	}
	paths := make([]string, 0, len(mounts))
	for p := range mounts {
		paths = append(paths, p)
	}
	sort.Strings(paths) // parents before children
	for _, p := range paths {
		mib := mounts[p]
		if mib <= 0 {
			mib = DefaultMiB
		}
		args = append(args, strconv.Itoa(mib), p)
	}
	cmd := exec.Command("unshare", args...)
	stderr := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	// If the test binary dies, unshare dies, and --kill-child takes the
	// whole PID namespace (sshd and everything under it) with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := harness.Spawn(cmd); err != nil {
		return fmt.Errorf("builders: %s: unshare: %w", h.spec.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	down := func() bool {
		select {
		case <-exited:
			return true
		default:
			return false
		}
	}
	up := harness.WaitFor(ctx, 60*time.Second, func() bool { return down() || harness.Listening(h.addr()) })
	if !up || down() {
		_ = cmd.Process.Kill()
		<-exited
		sshdLog, _ := os.ReadFile(logPath)
		return fmt.Errorf("builders: %s: sshd did not start on %s: %s %s", h.spec.Name, h.addr(),
			strings.TrimSpace(stderr.String()), strings.TrimSpace(string(sshdLog)))
	}
	pid, err := childOf(cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("builders: %s: %w", h.spec.Name, err)
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("builders: %s: %w", h.spec.Name, err)
	}
	f.mu.Lock()
	h.cmd, h.exited, h.stderr, h.init, h.pidNS = cmd, exited, stderr, pid, ns
	f.mu.Unlock()
	return nil
}

// childOf returns the PID of parent's only child.
func childOf(parent int) (int, error) {
	for _, p := range procs() {
		if ppid, ok := parentPID(p); ok && ppid == parent {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no child of unshare %d", parent)
}

// procs lists the PIDs in /proc.
func procs() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// parentPID reads a process's parent from /proc/PID/stat.
func parentPID(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, err == nil
}

// members lists the host PIDs of every process in h's PID namespace.
func members(pidNS string) []int {
	var out []int
	for _, p := range procs() {
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p)); err == nil && ns == pidNS {
			out = append(out, p)
		}
	}
	return out
}

// writeClientFiles writes known_hosts (every builder's key) and an
// ssh_config for people (`ssh -F DIR/ssh_config NAME`).
func (f *Farm) writeClientFiles() error {
	var kh, sc strings.Builder
	for _, name := range f.names {
		h := f.hosts[name]
		kh.WriteString(knownhosts.Line([]string{h.addr()}, h.hostKey) + "\n")
		fmt.Fprintf(&sc, "Host %s\n\tHostName %s\n\tPort %d\n\tUser %s\n\tIdentityFile %s\n\tUserKnownHostsFile %s\n\tStrictHostKeyChecking yes\n\n",
			name, h.ip, h.port, User, f.keyFile, f.knownHosts)
	}
	if err := os.WriteFile(f.knownHosts, []byte(kh.String()), 0o644); err != nil {
		return fmt.Errorf("builders: %w", err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "ssh_config"), []byte(sc.String()), 0o644); err != nil {
		return fmt.Errorf("builders: %w", err)
	}
	return nil
}

// Hosts returns every builder as kojibot's hosts: map entries (name →
// address "127.0.0.x:port" and services).
func (f *Farm) Hosts() map[string]config.Host {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]config.Host, len(f.hosts))
	for name, h := range f.hosts {
		out[name] = config.Host{Address: h.addr(), Services: append([]string(nil), h.spec.Services...)}
	}
	return out
}

// Names returns the builders' names in Spec order.
func (f *Farm) Names() []string { return append([]string(nil), f.names...) }

// Address returns a builder's "127.0.0.x:port", or "" for an unknown name.
func (f *Farm) Address(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := f.hosts[name]; ok {
		return h.addr()
	}
	return ""
}

// HostKey returns a builder's public host key.
func (f *Farm) HostKey(name string) ssh.PublicKey {
	if h, ok := f.hosts[name]; ok {
		return h.hostKey
	}
	return nil
}

// KeyFile is the private key that logs in as User on every builder.
func (f *Farm) KeyFile() string { return f.keyFile }

// KnownHosts is a known_hosts file with every builder's host key.
func (f *Farm) KnownHosts() string { return f.knownHosts }

// WriteSSHConfig writes an ssh_config for OpenSSH's own client (pdsh in
// the benchmarks) that reaches the named builders: a Host block per
// builder (each listens on its own address and port), then login, the
// farm's key and known_hosts with strict checking and nothing interactive,
// and extra, more options for every host ("ControlMaster no", …), one per
// line.
func (f *Farm) WriteSSHConfig(path string, names []string, login string, extra ...string) error {
	var sb strings.Builder
	for _, name := range names {
		ip, port, err := net.SplitHostPort(f.Address(name))
		if err != nil {
			return fmt.Errorf("builder %s: %w", name, err)
		}
		fmt.Fprintf(&sb, "Host %s\n\tHostName %s\n\tPort %s\n\n", name, ip, port)
	}
	fmt.Fprintf(&sb, "Host *\n\tUser %s\n\tIdentityFile %s\n\tIdentitiesOnly yes\n\tUserKnownHostsFile %s\n"+
		"\tGlobalKnownHostsFile /dev/null\n\tStrictHostKeyChecking yes\n\tBatchMode yes\n\tUpdateHostKeys no\n",
		login, f.KeyFile(), f.KnownHosts())
	for _, o := range extra {
		fmt.Fprintf(&sb, "\t%s\n", o)
	}
	sb.WriteString("\tLogLevel ERROR\n")
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}

// ServiceCommand is the ssh.service_command that drives fakesvc:
// "DIR/bin/fakesvc {action} {service}".
func (f *Farm) ServiceCommand() string { return f.svcCommand }

// SSH returns an ssh: configuration that reaches the farm, the defaults
// but for: user User, the farm's key and known_hosts, every privileged step through the helper
// (HelperCommand), and short timeouts fit for tests. ServiceCommand is
// set too (fakesvc, which needs root) for tests of ssh.helper "".
func (f *Farm) SSH() config.SSH {
	c := config.Default().SSH
	c.User, c.KeyFile, c.KnownHosts = User, f.keyFile, f.knownHosts
	c.ConnectTimeout, c.CommandTimeout, c.Parallel = 5*time.Second, time.Minute, 8
	c.Helper, c.ServiceCommand = HelperCommand, f.svcCommand
	return c
}

// Log returns a builder's sshd log (LogLevel DEBUG1).
func (f *Farm) Log(name string) (string, error) {
	h, err := f.lookup(name)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(h.dir, "sshd.log"))
	return string(b), err
}

func (f *Farm) lookup(name string) (*host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.hosts[name]
	if !ok {
		return nil, fmt.Errorf("builders: no builder %q", name)
	}
	return h, nil
}

// running returns h's namespace init PID and PID namespace, or an error
// when the builder is down.
func (f *Farm) running(h *host) (int, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h.cmd == nil {
		return 0, "", fmt.Errorf("builders: %s is down", h.spec.Name)
	}
	return h.init, h.pidNS, nil
}

// Exec runs script with /bin/sh as root inside the builder's mount and
// PID namespaces (nsenter), so it sees the builder's tmpfs mounts and its
// own /proc (pgrep shows only the builder's processes). It returns stdout;
// a non-zero exit is an error carrying stderr. It gives up after a minute.
func (f *Farm) Exec(name, script string) (string, error) {
	h, err := f.lookup(name)
	if err != nil {
		return "", err
	}
	return f.exec(h, script)
}

func (f *Farm) exec(h *host, script string) (string, error) {
	pid, _, err := f.running(h)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(pid), "-m", "-p", "--", "/bin/sh", "-c", script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Daemons started by the script keep stdout open: don't wait for it.
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil && !(errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState.Success()) {
		return stdout.String(), fmt.Errorf("builders: %s: exec %q: %w: %s", h.spec.Name, script, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// ExecCommand is the shell line with which a person at the test machine's
// root shell runs script as Exec does (nsenter into the builder), or ""
// when the builder is down.
func (f *Farm) ExecCommand(name, script string) string {
	h, err := f.lookup(name)
	if err != nil {
		return ""
	}
	pid, _, err := f.running(h)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("nsenter -t %d -m -p -- /bin/sh -c '%s'", pid, strings.ReplaceAll(script, "'", `'\''`))
}

// Service runs fakesvc inside the builder, as the bot's service command
// would, and returns its output.
func (f *Farm) Service(name, action, service string) (string, error) {
	return f.Exec(name, f.svcScript(action, service))
}

// Pause stops (SIGSTOP) every process of the builder, sshd included: the
// builder "hangs" — connections open but nothing answers.
func (f *Farm) Pause(name string) error {
	return f.signalAll(name, syscall.SIGSTOP)
}

// Resume continues (SIGCONT) every process of a paused builder.
func (f *Farm) Resume(name string) error {
	return f.signalAll(name, syscall.SIGCONT)
}

func (f *Farm) signalAll(name string, sig syscall.Signal) error {
	h, err := f.lookup(name)
	if err != nil {
		return err
	}
	initPID, ns, err := f.running(h)
	if err != nil {
		return err
	}
	if err := syscall.Kill(initPID, sig); err != nil {
		return fmt.Errorf("builders: %s: %w", name, err)
	}
	// Twice: a process forked while the first pass ran is caught by the second.
	for pass := 0; pass < 2; pass++ {
		for _, p := range members(ns) {
			_ = syscall.Kill(p, sig)
		}
	}
	return nil
}

// StopHost kills the builder — sshd and every process in its namespaces —
// so that it is unreachable; its tmpfs contents are gone.
func (f *Farm) StopHost(name string) error {
	h, err := f.lookup(name)
	if err != nil {
		return err
	}
	f.kill(h)
	return nil
}

// kill ends h's PID namespace (killing its PID 1 kills every process in
// it) and waits for unshare to exit.
func (f *Farm) kill(h *host) {
	f.mu.Lock()
	cmd, exited, pid := h.cmd, h.exited, h.init
	h.cmd = nil
	f.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		harness.StopProcess(cmd.Process, time.Second)
		<-exited
	}
}

// StartHost boots a stopped builder again, like a reboot: same address,
// port and host key, fresh (empty) tmpfs mounts, its services started.
func (f *Farm) StartHost(ctx context.Context, name string) error {
	h, err := f.lookup(name)
	if err != nil {
		return err
	}
	if _, _, err := f.running(h); err == nil {
		return fmt.Errorf("builders: %s is already running", name)
	}
	if err := f.boot(ctx, h); err != nil {
		return err
	}
	for _, svc := range h.spec.Services {
		if out, err := f.exec(h, f.svcScript("start", svc)); err != nil {
			return fmt.Errorf("builders: %s: starting service %s: %w: %s", name, svc, err, out)
		}
	}
	return nil
}

// writeUnit writes service svc's unit file (its command line) into the
// builder's directory, which the boot copies into the machine's /etc.
func writeUnit(hostDir, svc, line string) error {
	if !validName.MatchString(svc) {
		return fmt.Errorf("builders: invalid service name %q", svc)
	}
	if err := os.MkdirAll(filepath.Join(hostDir, "units"), 0o700); err != nil {
		return fmt.Errorf("builders: %w", err)
	}
	if err := os.WriteFile(filepath.Join(hostDir, "units", svc+".cmd"), []byte(line+"\n"), 0o600); err != nil {
		return fmt.Errorf("builders: %w", err)
	}
	return nil
}

// SetServiceCommand gives service svc of a running builder a unit file:
// from its next start (and after every reboot) fakesvc runs line, as
// Spec.ServiceCommands does, instead of the stand-in. The running service
// is left as it is: restart it to run the command.
func (f *Farm) SetServiceCommand(name, svc, line string) error {
	h, err := f.lookup(name)
	if err != nil {
		return err
	}
	if err := writeUnit(h.dir, svc, line); err != nil {
		return err
	}
	unit := filepath.Join(h.dir, "units", svc+".cmd")
	if out, err := f.exec(h, fmt.Sprintf("mkdir -p /etc/fakesvc && cp '%s' /etc/fakesvc/", unit)); err != nil {
		return fmt.Errorf("builders: %s: unit %s: %w: %s", name, svc, err, out)
	}
	return nil
}

// Stop kills every builder. It is safe to call more than once.
func (f *Farm) Stop() {
	f.mu.Lock()
	hosts := make([]*host, 0, len(f.hosts))
	for _, h := range f.hosts {
		hosts = append(hosts, h)
	}
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() { defer wg.Done(); f.kill(h) }()
	}
	wg.Wait()
}
