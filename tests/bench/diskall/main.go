// Command diskall benchmarks what `!koji disk all` costs on a farm of real
// sshd builders, and compares it with pdsh doing the same df.
//
// It starts -builders (default 50) builders with the tests' builders
// harness — one OpenSSH sshd each, on its own 127.0.0.x address, in its own
// mount and PID namespaces with small tmpfs mounts at /var/lib/mock and
// /mnt/build — then times, over -rounds rounds (default 20), these ways of
// reading both mounts on every builder (kojibot reads them with statvfs
// through one SFTP session per builder; -subsystem picks the builders'
// sftp subsystem, or none, so that kojibot falls back to df):
//
//   - kojibot cold: a new fleet.Fleet each round, so 50 new SSH connections,
//     then fleet.Each + DiskUsage with a per-host deadline, as
//     commands/disk.go does for `disk all`;
//   - kojibot warm: one fleet.Fleet kept across rounds (its cached
//     connections reused), after one warm-up round;
//   - pdsh -R ssh -f PARALLEL -w <the builders> df -P -B1 /var/lib/mock /mnt/build,
//     with the same key and known_hosts through a generated ssh_config;
//   - the same pdsh with ssh -oKexAlgorithms=curve25519-sha256, the key
//     exchange kojibot's Go client negotiates (-matched-kex=false drops it).
//
// Every round must read both mounts on every builder (each builder has its
// own /var/lib/mock size, so a wrong or missing answer is caught); any
// failure stops the benchmark with an error. The methods run in turn
// within each round, in a rotating order, with -pause between runs so that
// one method's connection teardown is not charged to the next.
//
// It prints, per method, median, p90, min and max wall time (ms), client and
// server CPU per round and the client's peak memory, the speed-up ratios,
// the machine's CPU count and the fleet's parallel setting; then the same
// for one builder alone, and where one new connection's time goes.
//
// It needs root (sshd, unshare, tmpfs), pdsh, ssh and ssh-keygen. Every
// sshd it starts is stopped when it ends, on error and on Ctrl-C too; if
// the process is killed outright, the harness's parent-death signal takes
// the builders down (only the temporary directory is left).
//
// Run it with scripts/bench-disk-all.sh, or: go run ./tests/bench/diskall -rounds 20
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/tests/bench/subsystem"
	"github.com/fedora-infra/kojibot/tests/harness/builders"
)

// Sizes of the builders' tmpfs mounts. Builder i (from 0) gets
// mockBaseMiB+i MiB at /var/lib/mock, so each answer names its builder.
const (
	mockBaseMiB = 8
	buildMiB    = 16
)

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// subsystems are the -subsystem values and their sshd_config lines.
var subsystems = map[string]string{"sftp-server": subsystem.SFTPServer, "internal-sftp": subsystem.Internal, "none": ""}

// mounts are the paths `disk all` reads on a builder.
var mounts = []string{builders.MockDir, builders.BuildDir}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "diskall:", err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	rounds     int
	builders   int
	parallel   int
	pause      time.Duration
	single     int
	keepBashrc bool
	matchedKex bool
	subsystem  string
}

// matchedKex is the key exchange kojibot's Go client (golang.org/x/crypto)
// negotiates with OpenSSH 9.2's sshd; OpenSSH 9.2's ssh prefers
// sntrup761x25519-sha512@openssh.com, which costs far more CPU.
const matchedKex = "curve25519-sha256"

func run() error {
	var o options
	flag.IntVar(&o.rounds, "rounds", 20, "timed rounds per method")
	flag.IntVar(&o.builders, "builders", 50, "sshd builders to start (1-200)")
	flag.IntVar(&o.parallel, "parallel", config.Default().SSH.Parallel, "ssh.parallel for the fleet, and pdsh's fanout (-f)")
	flag.DurationVar(&o.pause, "pause", 200*time.Millisecond, "idle time after every run, so sshd teardown is not charged to the next one")
	flag.IntVar(&o.single, "single", 10, "runs of each method on one builder alone, for the per-connection costs")
	flag.BoolVar(&o.matchedKex, "matched-kex", true, "also time pdsh with ssh -oKexAlgorithms="+matchedKex+", the key exchange kojibot negotiates")
	flag.StringVar(&o.subsystem, "subsystem", "sftp-server", "the builders' sftp subsystem, which kojibot's disk checks read statvfs through: sftp-server, internal-sftp, or none (kojibot then runs df)")
	flag.BoolVar(&o.keepBashrc, "keep-bashrc", false, "let the builders' remote shells read the login user's ~/.bashrc (by default it is masked inside each builder's mount namespace, so that both methods measure SSH, not this machine's shell set-up)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if o.rounds < 1 || o.builders < 1 || o.builders > 200 || o.parallel < 1 || o.pause < 0 || o.single < 1 {
		return errors.New("want -rounds ≥ 1, 1 ≤ -builders ≤ 200, -parallel ≥ 1, -pause ≥ 0, -single ≥ 1")
	}
	if _, ok := subsystems[o.subsystem]; !ok {
		return fmt.Errorf("-subsystem %q: want sftp-server, internal-sftp or none", o.subsystem)
	}
	if os.Geteuid() != 0 {
		return errors.New("must run as root (the builders are sshds in their own namespaces with tmpfs mounts)")
	}
	for _, bin := range []string{"pdsh", "ssh", "ssh-keygen", "unshare", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not found: install pdsh, openssh-server and util-linux (scripts/bench-disk-all.sh does)", bin)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once; the builders die with us (parent-death signal)
	}()

	dir, err := os.MkdirTemp("", "kojibot-bench-diskall-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	b, err := start(ctx, dir, o)
	if err != nil {
		return err
	}
	err = b.measure(ctx, o)
	if ctx.Err() != nil {
		err = fmt.Errorf("interrupted (%v)", err)
	}
	if cerr := b.cleanup(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return err
}

// bench holds the running farm and what the methods need.
type bench struct {
	dir     string
	farm    *builders.Farm
	names   []string
	hosts   map[string]config.Host
	cfg     config.SSH
	perHost time.Duration
	// want is each builder's expected df size of /var/lib/mock and /mnt/build.
	want map[string][2]uint64

	parallel  int
	sshConfig string   // the ssh_config for pdsh's (and the lone) ssh
	env       []string // the environment for pdsh and ssh, without PDSH_*
	pdshLine  string   // the pdsh command, for people to rerun by hand
	bashrc    string   // what maskBashrc did

	loadBefore, loadAfter string // /proc/loadavg around the timed rounds

	namespaces map[string]bool // the builders' PID namespaces (/proc/PID/ns/pid)
	sshdPIDs   []int           // the builders' sshd (each its namespace's PID 1)

	warm *fleet.Fleet
}

// start boots the farm and writes the pdsh side's ssh_config.
func start(ctx context.Context, dir string, o options) (*bench, error) {
	specs := make([]builders.Spec, o.builders)
	b := &bench{dir: dir, want: make(map[string][2]uint64, o.builders)}
	for i := range specs {
		name := fmt.Sprintf("b%02d", i+1)
		specs[i] = builders.Spec{Name: name, MockMiB: mockBaseMiB + i, BuildMiB: buildMiB}
		b.want[name] = [2]uint64{uint64(mockBaseMiB+i) << 20, buildMiB << 20}
	}
	fmt.Printf("starting %d sshd builders in %s …\n", o.builders, dir)
	t0 := time.Now()
	farm, err := builders.Start(ctx, dir, specs)
	if err != nil {
		return nil, err
	}
	b.farm = farm
	fmt.Printf("started in %s\n", time.Since(t0).Round(time.Millisecond))
	for _, name := range farm.Names() {
		if err := subsystem.Set(ctx, farm, dir, name, subsystems[o.subsystem]); err != nil {
			b.cleanup()
			return nil, err
		}
	}
	fmt.Printf("builders' sftp subsystem: %s\n", o.subsystem)

	b.names = farm.Names()
	b.hosts = farm.Hosts()
	b.cfg = farm.SSH()
	b.cfg.Parallel = o.parallel
	// commands/machines.go: perHostTimeout.
	b.perHost = max(2*b.cfg.ConnectTimeout, 5*time.Second)

	if err := b.findSSHDs(); err != nil {
		b.cleanup()
		return nil, err
	}
	if !o.keepBashrc {
		if err := b.maskBashrc(); err != nil {
			b.cleanup()
			return nil, err
		}
	}
	b.parallel = o.parallel
	b.sshConfig = filepath.Join(dir, "pdsh_ssh_config")
	if err := b.farm.WriteSSHConfig(b.sshConfig, b.names, builders.User, "ControlMaster no", "ControlPath none"); err != nil {
		b.cleanup()
		return nil, err
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PDSH_") && !strings.HasPrefix(kv, "WCOLL=") {
			b.env = append(b.env, kv)
		}
	}
	shown := b.names[0]
	if len(b.names) > 1 {
		shown += ",…," + b.names[len(b.names)-1]
	}
	b.pdshLine = fmt.Sprintf("PDSH_SSH_ARGS='%s' %s", b.pdshSSHArgs(""), strings.Replace(strings.Join(b.pdshArgv(b.names), " "), strings.Join(b.names, ","), shown, 1))
	return b, nil
}

// pdshSSHArgs is PDSH_SSH_ARGS: the generated ssh_config, and kex as ssh's
// only key exchange algorithm when not empty.
func (b *bench) pdshSSHArgs(kex string) string {
	if kex != "" {
		return "-F " + b.sshConfig + " -oKexAlgorithms=" + kex + " %h"
	}
	return "-F " + b.sshConfig + " %h"
}

// pdshArgv is the pdsh command over hosts: fanout ssh.parallel, ssh's
// connect timeout the fleet's, and the per-host deadline of `disk all`.
func (b *bench) pdshArgv(hosts []string) []string {
	return append([]string{"pdsh", "-R", "ssh", "-f", strconv.Itoa(b.parallel),
		"-t", strconv.Itoa(int(b.cfg.ConnectTimeout / time.Second)), // ssh -oConnectTimeout
		"-u", strconv.Itoa(int(b.perHost / time.Second)), // per-host command deadline
		"-S", "-w", strings.Join(hosts, ","),
		"df", "-P", "-B1"}, mounts...)
}

// maskBashrc bind-mounts /dev/null over the login user's ~/.bashrc inside
// every builder's (private) mount namespace. sshd runs each command with
// the user's shell, and Debian's bash reads ~/.bashrc when started by sshd,
// even non-interactively: a developer's root .bashrc (pyenv init, …) would
// otherwise cost more than the SSH work itself, for both methods alike.
func (b *bench) maskBashrc() error {
	if b.cfg.User == builders.User {
		// The farm's login user has a fresh home inside each builder.
		b.bashrc = "no ~/.bashrc: " + builders.User + "'s home is fresh inside each builder"
		return nil
	}
	u, err := user.Lookup(b.cfg.User)
	if err != nil {
		return err
	}
	rc := filepath.Join(u.HomeDir, ".bashrc")
	if _, err := os.Stat(rc); err != nil {
		b.bashrc = "no " + rc
		return nil
	}
	for _, name := range b.names {
		if _, err := b.farm.Exec(name, "mount --bind /dev/null "+rc); err != nil {
			return err
		}
	}
	b.bashrc = rc + " masked (/dev/null) inside the builders; -keep-bashrc to keep it"
	return nil
}

// findSSHDs records the builders' sshd processes and PID namespaces, for
// the server-side CPU figures and the final leftover check.
func (b *bench) findSSHDs() error {
	b.namespaces = map[string]bool{}
	sshds, _ := b.farmProcesses()
	for _, pid := range sshds {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
		if err != nil || !namespaceInit(pid) {
			continue // gone, or a connection's child not yet re-executed
		}
		b.namespaces[ns] = true
		b.sshdPIDs = append(b.sshdPIDs, pid)
	}
	if len(b.sshdPIDs) != len(b.names) {
		return fmt.Errorf("found %d builder sshd processes, want %d", len(b.sshdPIDs), len(b.names))
	}
	return nil
}

// farmProcesses lists the processes whose command line names this run's
// directory: the builders' sshd listeners ("sshd: /usr/sbin/sshd -D -f
// DIR/hosts/NAME/sshd_config …" once sshd has set its title), and the
// others (the unshare parents, a boot shell not yet replaced by sshd).
func (b *bench) farmProcesses() (sshds, others []int) {
	for _, pid := range pids() {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || pid == os.Getpid() || !bytes.Contains(cmdline, []byte(b.dir+"/hosts/")) {
			continue
		}
		first, _, _ := strings.Cut(string(cmdline), "\x00")
		if strings.HasPrefix(first, "sshd:") || filepath.Base(first) == "sshd" {
			sshds = append(sshds, pid)
		} else {
			others = append(others, pid)
		}
	}
	return sshds, others
}

// cleanup closes the warm fleet, stops every builder and checks that none
// of this run's sshds is left.
func (b *bench) cleanup() error {
	if b.warm != nil {
		b.warm.Close()
		b.warm = nil
	}
	if b.farm == nil {
		return nil
	}
	b.farm.Stop()
	for i := 0; ; i++ {
		sshds, others := b.farmProcesses()
		if len(sshds)+len(others) == 0 {
			fmt.Printf("cleanup: %d builders stopped, no sshd or unshare of this run left\n", len(b.names))
			return nil
		}
		if i == 50 {
			return fmt.Errorf("cleanup: still running: sshd %v, others %v", sshds, others)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sample is one timed run of one method.
type sample struct {
	took      time.Duration
	clientCPU time.Duration // user+system CPU of the client side
	serverCPU time.Duration // user+system CPU of every process in the builders
	peakKiB   int64         // the method's memory figure for this run (see report)
}

// method is one way of doing `disk all`.
type method struct {
	name string
	run  func(ctx context.Context) (sample, error)
	got  []sample
	// pdsh: whether it is a pdsh run, and its ssh key exchange ("" for
	// ssh's default); tree is its sampled memory.
	pdsh bool
	kex  string
	tree treeMemory
}

// measure runs the warm-ups, the timed rounds and the pdsh memory round,
// and prints the report.
func (b *bench) measure(ctx context.Context, o options) error {
	// Untimed warm-ups, which also check that each method works at all.
	if _, err := b.cold(ctx); err != nil {
		return fmt.Errorf("warm-up, kojibot cold: %w", err)
	}
	if _, err := b.pdsh(ctx); err != nil {
		return fmt.Errorf("warm-up, pdsh: %w", err)
	}
	if o.matchedKex {
		if _, err := b.pdshOn(ctx, b.names, matchedKex, nil); err != nil {
			return fmt.Errorf("warm-up, pdsh with %s: %w", matchedKex, err)
		}
	}

	// What keeping a connection to every builder costs while idle.
	rss0, heap0 := settledMemory()
	var err error
	if b.warm, err = fleet.New(b.cfg, b.hosts, nil); err != nil {
		return err
	}
	if err := b.diskAll(ctx, b.warm); err != nil {
		return fmt.Errorf("warm-up, kojibot warm: %w", err)
	}
	rss1, heap1 := settledMemory()

	methods := []*method{
		{name: "kojibot cold", run: b.cold},
		{name: "kojibot warm", run: b.warmRound},
		{name: "pdsh -R ssh", run: b.pdsh, pdsh: true},
	}
	if o.matchedKex {
		methods = append(methods, &method{name: "pdsh, " + matchedKex, pdsh: true, kex: matchedKex,
			run: func(ctx context.Context) (sample, error) { return b.pdshOn(ctx, b.names, matchedKex, nil) }})
	}
	fmt.Printf("timing %d rounds × %d methods (rotating order, %s pause after each run) …\n", o.rounds, len(methods), o.pause)
	b.loadBefore = loadavg()
	t0 := time.Now()
	for r := 0; r < o.rounds; r++ {
		for k := range methods {
			m := methods[(r+k)%len(methods)]
			cpu0, err := b.serverCPU()
			if err != nil {
				return err
			}
			s, err := m.run(ctx)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, m.name, err)
			}
			if err := sleep(ctx, o.pause); err != nil {
				return err
			}
			cpu1, err := b.serverCPU()
			if err != nil {
				return err
			}
			s.serverCPU = cpu1 - cpu0
			m.got = append(m.got, s)
		}
	}
	b.loadAfter = loadavg()
	fmt.Printf("timed rounds took %s; every round read both mounts on all %d builders\n", time.Since(t0).Round(time.Millisecond), len(b.names))

	// One more pdsh run each, untimed, sampling its process tree's memory.
	for _, m := range methods {
		if m.pdsh {
			var err error
			if m.tree, err = b.pdshTreeMemory(ctx, m.kex); err != nil {
				return fmt.Errorf("%s, memory run: %w", m.name, err)
			}
		}
	}
	singles, err := b.singleHost(ctx, o)
	if err != nil {
		return fmt.Errorf("one-builder runs: %w", err)
	}
	phases, err := b.phases(ctx, o)
	if err != nil {
		return fmt.Errorf("connection phases: %w", err)
	}
	b.report(o, methods, rss1-rss0, int64(heap1)-int64(heap0), singles)
	fmt.Printf("one new connection to %s, step by step with golang.org/x/crypto/ssh as fleet uses it (median of %d):\n  %s\n",
		b.names[0], o.single, phases)
	b.printKex()
	return nil
}

// phases times the steps of one new connection and one df on the first
// builder, o.single times, with golang.org/x/crypto/ssh directly (the
// library fleet dials with, same key, known_hosts and host key type), and
// returns their medians.
func (b *bench) phases(ctx context.Context, o options) (string, error) {
	host, addr := b.names[0], b.farm.Address(b.names[0])
	pem, err := os.ReadFile(b.cfg.KeyFile)
	if err != nil {
		return "", err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return "", err
	}
	steps := []string{"TCP connect", "key exchange (to the host key check)", "user auth", "session open", "exec df until exit"}
	took := make([][]float64, len(steps))
	cmd := "env LC_ALL=C df -P -B1 -- " + strings.Join(mounts, " ")
	for i := 0; i < o.single; i++ {
		if err := sleep(ctx, o.pause); err != nil {
			return "", err
		}
		t := []time.Time{time.Now()}
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return "", err
		}
		t = append(t, time.Now())
		_ = nc.SetDeadline(time.Now().Add(b.perHost))
		known, err := knownhosts.New(b.cfg.KnownHosts)
		if err != nil {
			nc.Close()
			return "", err
		}
		cc := &ssh.ClientConfig{
			User: b.cfg.User,
			Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: func(name string, remote net.Addr, key ssh.PublicKey) error {
				t = append(t, time.Now())
				return known(name, remote, key)
			},
			HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		}
		conn, chans, reqs, err := ssh.NewClientConn(nc, addr, cc)
		if err != nil {
			nc.Close()
			return "", fmt.Errorf("%s: %w", host, err)
		}
		t = append(t, time.Now())
		client := ssh.NewClient(conn, chans, reqs)
		sess, err := client.NewSession()
		if err != nil {
			client.Close()
			return "", fmt.Errorf("%s: %w", host, err)
		}
		t = append(t, time.Now())
		out, err := sess.Output(cmd)
		t = append(t, time.Now())
		client.Close()
		if err != nil || strings.Count(string(out), "\n") != 1+len(mounts) {
			return "", fmt.Errorf("%s: %s: %v: %q", host, cmd, err, out)
		}
		for j := range steps {
			took[j] = append(took[j], ms(t[j+1].Sub(t[j])))
		}
	}
	parts := make([]string, len(steps))
	var total float64
	for j, step := range steps {
		slices.Sort(took[j])
		parts[j] = fmt.Sprintf("%s %.1f ms", step, median(took[j]))
		total += median(took[j])
	}
	return strings.Join(parts, ", ") + fmt.Sprintf(" (Σ %.1f ms)", total), nil
}

// singleHost runs each way of reading one builder's df, one at a time,
// -single times: the fixed cost of one connection, without the fan-out.
func (b *bench) singleHost(ctx context.Context, o options) ([]*method, error) {
	host := b.names[0]
	one := []string{host}
	sshArgv := func(kex string) []string {
		argv := []string{"ssh", "-F", b.sshConfig, "-oConnectTimeout=" + strconv.Itoa(int(b.cfg.ConnectTimeout/time.Second))}
		if kex != "" {
			argv = append(argv, "-oKexAlgorithms="+kex)
		}
		return append(append(argv, host, "df", "-P", "-B1"), mounts...)
	}
	runSSH := func(ctx context.Context, kex string) (sample, error) {
		s, out, err := runClient(ctx, sshArgv(kex), b.env, nil)
		if err != nil {
			return s, err
		}
		var prefixed strings.Builder
		for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			prefixed.WriteString(host + ": " + l + "\n")
		}
		return s, b.checkPDSH(prefixed.String(), one)
	}
	diskUsage := func(ctx context.Context, f *fleet.Fleet) error {
		ctx, cancel := context.WithTimeout(ctx, b.perHost)
		defer cancel()
		us, err := f.DiskUsage(ctx, host, mounts)
		if err == nil && (len(us) != len(mounts) || us[0].Size != b.want[host][0] || us[1].Size != b.want[host][1]) {
			err = fmt.Errorf("%s: unexpected df result %+v", host, us)
		}
		if stop, ok := ctx.Value(stopKey{}).(func()); ok {
			stop()
		}
		return err
	}
	methods := []*method{
		{name: "kojibot: new Fleet, dial + DiskUsage", run: func(ctx context.Context) (sample, error) {
			return b.kojibot(ctx, func(ctx context.Context) error {
				f, err := fleet.New(b.cfg, b.hosts, nil)
				if err != nil {
					return err
				}
				defer f.Close()
				return diskUsage(ctx, f)
			})
		}},
		{name: "kojibot: cached connection, DiskUsage", run: func(ctx context.Context) (sample, error) {
			return b.kojibot(ctx, func(ctx context.Context) error { return diskUsage(ctx, b.warm) })
		}},
		{name: "ssh (one process), dial + df", run: func(ctx context.Context) (sample, error) { return runSSH(ctx, "") }},
		{name: "ssh -oKexAlgorithms=" + matchedKex, run: func(ctx context.Context) (sample, error) { return runSSH(ctx, matchedKex) }},
		{name: "pdsh -w one builder", run: func(ctx context.Context) (sample, error) { return b.pdshOn(ctx, one, "", nil) }},
	}
	for r := 0; r < o.single; r++ {
		for _, m := range methods {
			cpu0, err := b.serverCPU()
			if err != nil {
				return nil, err
			}
			s, err := m.run(ctx)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.name, err)
			}
			if err := sleep(ctx, o.pause); err != nil {
				return nil, err
			}
			cpu1, err := b.serverCPU()
			if err != nil {
				return nil, err
			}
			s.serverCPU = cpu1 - cpu0
			m.got = append(m.got, s)
		}
	}
	return methods, nil
}

// cold is one round with a new Fleet: every builder is dialled anew.
func (b *bench) cold(ctx context.Context) (sample, error) {
	return b.kojibot(ctx, func(ctx context.Context) error {
		f, err := fleet.New(b.cfg, b.hosts, nil)
		if err != nil {
			return err
		}
		defer f.Close() // after the clock stops: see kojibot
		return b.diskAll(ctx, f)
	})
}

// warmRound is one round on the long-lived Fleet.
func (b *bench) warmRound(ctx context.Context) (sample, error) {
	return b.kojibot(ctx, func(ctx context.Context) error { return b.diskAll(ctx, b.warm) })
}

// kojibot times round, with this process's CPU time and the rise of its
// peak RSS (VmHWM, reset first) above its RSS at the start, after a
// garbage collection that returns freed memory to the kernel.
func (b *bench) kojibot(ctx context.Context, round func(ctx context.Context) error) (sample, error) {
	debug.FreeOSMemory()
	base := resetPeakRSS()
	var took, cpu time.Duration
	cpu0 := selfCPU()
	t0 := time.Now()
	stop := func() {
		if took == 0 {
			took, cpu = time.Since(t0), selfCPU()-cpu0
		}
	}
	err := round(withStop(ctx, stop))
	stop()
	s := sample{took: took, clientCPU: cpu, peakKiB: -1}
	if base >= 0 {
		if hwm := statusKiB("self", "VmHWM"); hwm >= 0 {
			s.peakKiB = hwm - base
		}
	}
	return s, err
}

// stopKey carries, in a round's context, the function that stops its
// clock; diskAll calls it as soon as every builder has answered, so that a
// cold round's Close (which `disk all` never does) is not timed.
type stopKey struct{}

func withStop(ctx context.Context, stop func()) context.Context {
	return context.WithValue(ctx, stopKey{}, stop)
}

// diskAll is what `disk all` does (commands/disk.go): fleet.Each over the
// builders, DiskUsage of the two mounts with a per-host deadline, one line
// per builder. It fails unless every builder answered with its own sizes.
func (b *bench) diskAll(ctx context.Context, f *fleet.Fleet) error {
	var mu sync.Mutex
	lines := make(map[string]string, len(b.names))
	usages := make(map[string][]fleet.Usage, len(b.names))
	results := f.Each(ctx, b.names, func(ctx context.Context, host string) error {
		ctx, cancel := context.WithTimeout(ctx, b.perHost)
		defer cancel()
		us, err := f.DiskUsage(ctx, host, mounts)
		parts := make([]string, 0, len(us))
		for _, u := range us {
			parts = append(parts, fmt.Sprintf("%s %.0f%% (%d free)", u.Path, u.Percent, u.Avail))
		}
		mu.Lock()
		lines[host] = host + ": " + strings.Join(parts, ", ")
		usages[host] = us
		mu.Unlock()
		return err
	})
	out := make([]string, 0, len(b.names))
	for _, h := range b.names {
		if l, ok := lines[h]; ok {
			out = append(out, l)
		}
	}
	reply := strings.Join(out, "\n")
	if stop, ok := ctx.Value(stopKey{}).(func()); ok {
		stop()
	}

	if err := fleet.JoinErrors(results); err != nil {
		return err
	}
	if len(results) != len(b.names) || len(out) != len(b.names) || len(reply) == 0 {
		return fmt.Errorf("%d results and %d lines for %d builders", len(results), len(out), len(b.names))
	}
	for _, h := range b.names {
		us := usages[h]
		if len(us) != len(mounts) {
			return fmt.Errorf("%s: %d df lines, want %d", h, len(us), len(mounts))
		}
		for i, u := range us {
			if u.Mount != mounts[i] || u.Size != b.want[h][i] {
				return fmt.Errorf("%s: df of %s says %s of %d bytes, want %s of %d bytes", h, mounts[i], u.Mount, u.Size, mounts[i], b.want[h][i])
			}
		}
	}
	return nil
}

// pdsh runs pdsh once over every builder and checks its output. Its CPU is
// pdsh's and its reaped children's (the ssh processes).
func (b *bench) pdsh(ctx context.Context) (sample, error) {
	return b.pdshOn(ctx, b.names, "", nil)
}

// pdshOn runs pdsh over hosts and checks its output; kex is as for
// pdshSSHArgs, started as for runClient.
func (b *bench) pdshOn(ctx context.Context, hosts []string, kex string, started func(pid int, done <-chan struct{})) (sample, error) {
	env := append(slices.Clip(b.env), "PDSH_SSH_ARGS="+b.pdshSSHArgs(kex))
	s, out, err := runClient(ctx, b.pdshArgv(hosts), env, started)
	if err != nil {
		return s, err
	}
	return s, b.checkPDSH(out, hosts)
}

// runClient runs an external client (pdsh, ssh) and returns its wall time,
// CPU (its own and its reaped children's) and its stdout. Anything on
// stderr is an error.
//
// It does not report rusage maxrss: Go starts children with
// CLONE_VM|CLONE_VFORK, and at exec the kernel carries the hiwater RSS of
// the mm the child leaves — this Go process's — into the child's maxrss,
// so ProcessState.SysUsage().Maxrss is at least this process's own peak.
// pdshTreeMemory samples /proc instead. started, when not nil, is called
// with the client's PID right after it starts and must return once done
// is closed.
func runClient(ctx context.Context, argv, env []string, started func(pid int, done <-chan struct{})) (sample, string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Its own process group, so that a cancelled run kills its children
	// (pdsh's ssh processes) too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second

	debug.FreeOSMemory() // as for kojibot, so both start from the same state
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, "", fmt.Errorf("%s: %w", argv[0], err)
	}
	done := make(chan struct{})
	var watcher sync.WaitGroup
	if started != nil {
		watcher.Add(1)
		go func() { defer watcher.Done(); started(cmd.Process.Pid, done) }()
	}
	err := cmd.Wait()
	took := time.Since(t0)
	close(done)
	watcher.Wait()

	s := sample{took: took, peakKiB: -1}
	if st := cmd.ProcessState; st != nil {
		s.clientCPU = st.UserTime() + st.SystemTime()
	}
	if err != nil {
		return s, "", fmt.Errorf("%s: %w: %s", argv[0], err, strings.TrimSpace(stderr.String()))
	}
	if e := strings.TrimSpace(stderr.String()); e != "" {
		return s, "", fmt.Errorf("%s wrote to stderr: %s", argv[0], e)
	}
	return s, stdout.String(), nil
}

// checkPDSH checks that pdsh's output ("host: line") holds, for every
// host, df's header and one line per mount with that builder's sizes.
func (b *bench) checkPDSH(out string, hosts []string) error {
	byHost := make(map[string][]string, len(hosts))
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		host, line, ok := strings.Cut(sc.Text(), ": ")
		if _, known := b.want[host]; !ok || !known {
			return fmt.Errorf("pdsh: unexpected output line %q", sc.Text())
		}
		byHost[host] = append(byHost[host], line)
	}
	if len(byHost) != len(hosts) {
		return fmt.Errorf("pdsh: output from %d builders, want %d", len(byHost), len(hosts))
	}
	for _, h := range hosts {
		lines := byHost[h]
		if len(lines) != 1+len(mounts) || !strings.HasPrefix(lines[0], "Filesystem") {
			return fmt.Errorf("pdsh: %s: %d lines, want df's header and %d lines: %q", h, len(lines), len(mounts), lines)
		}
		for i, line := range lines[1:] {
			f := strings.Fields(line)
			if len(f) != 6 {
				return fmt.Errorf("pdsh: %s: unexpected df line %q", h, line)
			}
			size, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil || f[5] != mounts[i] || size != b.want[h][i] {
				return fmt.Errorf("pdsh: %s: df line %q, want %s of %d bytes", h, line, mounts[i], b.want[h][i])
			}
		}
	}
	return nil
}

// treeMemory is what sampling pdsh's process tree found.
type treeMemory struct {
	took       time.Duration // the sampled run's wall time
	samples    int
	peakKiB    int64 // largest sum of VmRSS over the live tree at one instant
	peakProcs  int   // processes in the tree at that instant
	sumPeakKiB int64 // Σ over every process seen of its last-seen VmHWM
	procs      int   // processes seen in all
	largestKiB int64 // the largest of those VmHWM
}

// pdshTreeMemory runs pdsh once more, untimed, with kex as for
// pdshSSHArgs, sampling /proc as often as it can for pdsh and its
// descendants (the ssh processes) and their resident memory.
func (b *bench) pdshTreeMemory(ctx context.Context, kex string) (treeMemory, error) {
	var tm treeMemory
	hwm := map[int]int64{}
	s, err := b.pdshOn(ctx, b.names, kex, func(root int, done <-chan struct{}) {
		mine, other := map[int]bool{root: true}, map[int]bool{}
		for {
			// A process's parent never becomes pdsh later, so only PIDs
			// not seen before need their parent read.
			var sum int64
			var live int
			for _, pid := range pids() {
				if other[pid] {
					continue
				}
				if !mine[pid] {
					f, ok := statFields(pid)
					if !ok || len(f) < 2 {
						continue
					}
					if ppid, _ := strconv.Atoi(f[1]); !mine[ppid] {
						other[pid] = true
						continue
					}
					mine[pid] = true
				}
				rss, peak := statusKiB(strconv.Itoa(pid), "VmRSS"), statusKiB(strconv.Itoa(pid), "VmHWM")
				if rss < 0 {
					continue // exited (or a zombie)
				}
				sum += rss
				live++
				hwm[pid] = max(hwm[pid], peak)
			}
			tm.samples++
			if sum > tm.peakKiB {
				tm.peakKiB, tm.peakProcs = sum, live
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	if err != nil {
		return tm, err
	}
	for _, h := range hwm {
		tm.sumPeakKiB += h
		tm.largestKiB = max(tm.largestKiB, h)
	}
	tm.procs = len(hwm)
	tm.took = s.took
	return tm, nil
}

// report prints the table.
func (b *bench) report(o options, methods []*method, standingKiB, standingHeap int64, singles []*method) {
	cpuModel := "unknown CPU"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(info), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	sshV, _ := exec.Command("ssh", "-V").CombinedOutput()
	pdshV, _ := exec.Command("pdsh", "-V").CombinedOutput()

	fmt.Println()
	fmt.Printf("`disk all` over %d sshd builders (df -P -B1 %s on each), %d timed rounds per method\n",
		len(b.names), strings.Join(mounts, " "), o.rounds)
	fmt.Printf("machine: nproc %d (%s), GOMAXPROCS %d, Linux %s, %s\n",
		runtime.NumCPU(), cpuModel, runtime.GOMAXPROCS(0), strings.TrimSpace(string(kernel)), runtime.Version())
	fmt.Printf("ssh: %s; pdsh: %s\n", strings.TrimSpace(string(sshV)), firstLine(string(pdshV)))
	fmt.Printf("load average (1, 5, 15 min) before the timed rounds: %s; after: %s\n", b.loadBefore, b.loadAfter)
	fmt.Printf("fleet: ssh.parallel %d (pdsh -f %d), connect timeout %s, per-host deadline %s\n",
		b.cfg.Parallel, o.parallel, b.cfg.ConnectTimeout, b.perHost)
	fmt.Printf("pdsh: %s\n", b.pdshLine)
	if b.bashrc == "" {
		b.bashrc = "the login user's ~/.bashrc runs on the builders (-keep-bashrc)"
	}
	fmt.Printf("remote shell: %s\n\n", b.bashrc)

	med := printTable("method", "rounds", "(ms/round)", methods)
	cold, warm, pdsh := med["kojibot cold"], med["kojibot warm"], med["pdsh -R ssh"]
	fmt.Printf("\nspeed-up (ratio of medians): kojibot cold vs pdsh ×%.2f, kojibot warm vs pdsh ×%.2f, warm vs cold ×%.2f\n",
		pdsh/cold, pdsh/warm, cold/warm)
	if matched, ok := med["pdsh, "+matchedKex]; ok {
		fmt.Printf("  with pdsh's ssh on kojibot's key exchange (%s): kojibot cold vs pdsh ×%.2f, kojibot warm vs pdsh ×%.2f\n",
			matchedKex, matched/cold, matched/warm)
	}

	fmt.Printf("\nclient memory (MiB):\n")
	w := 0
	for _, m := range methods {
		w = max(w, len(m.name))
	}
	for _, m := range methods {
		if m.pdsh {
			t := m.tree
			fmt.Printf("  %-*s %7s  at most resident at once (%d processes: pdsh and its ssh children; one sampled run, %d samples in %s);\n",
				w, m.name, mib(t.peakKiB), t.peakProcs, t.samples, t.took.Round(time.Millisecond))
			fmt.Printf("  %-*s %7s  Σ of each process's own peak (VmHWM), %d processes; largest process %s\n",
				w, "", mib(t.sumPeakKiB), t.procs, mib(t.largestKiB))
			continue
		}
		peaks := make([]float64, 0, len(m.got))
		for _, s := range m.got {
			if s.peakKiB >= 0 {
				peaks = append(peaks, float64(s.peakKiB))
			}
		}
		if len(peaks) == 0 {
			fmt.Printf("  %-*s %7s\n", w, m.name, "n/a")
			continue
		}
		slices.Sort(peaks)
		line := fmt.Sprintf("  %-*s %7s  rise of the bot process's peak RSS in a round (max of %d; median %s)",
			w, m.name, mib(int64(peaks[len(peaks)-1])), len(peaks), mib(int64(median(peaks))))
		if m.name == "kojibot warm" {
			line += fmt.Sprintf(";\n  %-*s %7s  held between rounds by the %d idle cached connections (Go heap in use %s)",
				w, "", mib(standingKiB), len(b.names), mib(standingHeap/1024))
		}
		fmt.Println(line)
	}

	fmt.Printf(`
how the figures are taken:
  wall times: median of %d (mean of the middle two), p90 the nearest-rank
    90th percentile; kojibot cold includes fleet.New but not Close (the bot
    never closes after a command).
  client CPU: kojibot = this process's user+system time over the round;
    pdsh = pdsh's and its ssh children's (wait4 rusage).
  server CPU: run time of every process in the builders' PID namespaces
    (sshd, its per-connection processes, sftp-server, the shells, df), from
    /proc/PID/schedstat, plus what the children they reaped used
    (/proc/PID/stat), across the run and the %s pause after it.
  kojibot memory: this Go process's VmHWM, reset through /proc/self/clear_refs
    before each round, minus its RSS then (after a GC that returns freed
    memory): what one round adds to the bot's resident memory.
  pdsh memory: /proc sampled in a separate untimed run (sampling would slow
    the timed ones). rusage maxrss (ProcessState.SysUsage) is not used: Go
    forks children with CLONE_VM|CLONE_VFORK and the kernel carries this
    process's own peak RSS into the child's maxrss at exec.
`, o.rounds, o.pause)
	fmt.Printf("\none builder alone (%s), each way run %d times, serially:\n", b.names[0], o.single)
	printTable("method", "runs", "(ms/run)", singles)
}

// printTable prints one row per method and returns each method's median
// wall time (ms).
func printTable(first, count, per string, methods []*method) map[string]float64 {
	w := len(first)
	for _, m := range methods {
		w = max(w, len(m.name))
	}
	fmt.Printf("%-*s %6s %9s %9s %9s %9s %12s %12s\n",
		w, first, count, "median", "p90", "min", "max", "client CPU", "server CPU")
	fmt.Printf("%-*s %6s %9s %9s %9s %9s %12s %12s\n",
		w, "", "", "(ms)", "(ms)", "(ms)", "(ms)", per, per)
	med := map[string]float64{}
	for _, m := range methods {
		took := make([]float64, len(m.got))
		var client, server time.Duration
		for i, s := range m.got {
			took[i] = ms(s.took)
			client += s.clientCPU
			server += s.serverCPU
		}
		slices.Sort(took)
		med[m.name] = median(took)
		n := time.Duration(len(m.got))
		fmt.Printf("%-*s %6d %9.1f %9.1f %9.1f %9.1f %12.1f %12.1f\n", w, m.name, len(m.got),
			med[m.name], percentile(took, 90), took[0], took[len(took)-1], ms(client/n), ms(server/n))
	}
	return med
}

// printKex prints, from one builder's sshd log, which key exchange each
// client negotiated (it drives much of a new connection's cost).
func (b *bench) printKex() {
	log, err := b.farm.Log(b.names[0])
	if err != nil {
		return
	}
	// sshd -E lines carry no PID, but a builder serves one connection at
	// a time here, so each kex line follows its client's version line.
	client := "?"
	count := map[string]int{}
	for _, l := range strings.Split(log, "\n") {
		if _, v, ok := strings.Cut(l, "remote software version "); ok {
			client = strings.Fields(v + " ?")[0]
		}
		if _, v, ok := strings.Cut(l, "kex: algorithm: "); ok {
			count[client+" → "+strings.TrimSuffix(strings.TrimSpace(v), " [preauth]")]++
			client = "?"
		}
	}
	if len(count) == 0 {
		return
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Printf("key exchanges seen by %s's sshd (client → algorithm: connections):", b.names[0])
	for _, k := range keys {
		fmt.Printf(" %s: %d;", k, count[k])
	}
	fmt.Println()
}

// serverCPU sums the CPU time of every process in the builders' PID
// namespaces: a live process's exact run time (/proc/PID/schedstat, in ns:
// its user+system ticks in /proc/PID/stat are whole 1/100 s, and many
// processes each doing a little would read as nothing), plus the
// user+system time of the children it reaped (cutime, cstime). A
// process's time is counted once: while it lives, in its own entry; once
// reaped, in its reaper's.
func (b *bench) serverCPU() (time.Duration, error) {
	var total time.Duration
	for _, pid := range pids() {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
		if err != nil || !b.namespaces[ns] {
			continue
		}
		f, ok := statFields(pid)
		if !ok || len(f) < 15 {
			continue // exited meanwhile
		}
		ss, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
		run := strings.Fields(string(ss))
		if err != nil || len(run) == 0 {
			continue
		}
		ns0, _ := strconv.ParseInt(run[0], 10, 64)
		total += time.Duration(ns0)
		for _, i := range []int{13, 14} { // cutime cstime (fields 16-17)
			v, _ := strconv.ParseInt(f[i], 10, 64)
			total += time.Duration(v) * clockTick
		}
	}
	return total, nil
}

// namespaceInit reports whether pid is PID 1 of its PID namespace (the
// last NSpid of /proc/PID/status).
func namespaceInit(pid int) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "NSpid:"); ok {
			f := strings.Fields(v)
			return len(f) > 1 && f[len(f)-1] == "1"
		}
	}
	return false
}

// statFields returns the fields of /proc/PID/stat after the command name
// (so f[0] is the state, field 3 of proc(5)).
func statFields(pid int) ([]string, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, false
	}
	return strings.Fields(string(b[i+1:])), true
}

// pids lists the PIDs in /proc.
func pids() []int {
	ents, _ := os.ReadDir("/proc")
	out := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// statusKiB reads a "Vm…: N kB" field of /proc/PID/status; -1 when absent.
func statusKiB(pid, field string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// resetPeakRSS sets this process's VmHWM to its current RSS (proc(5),
// clear_refs "5") and returns that RSS in KiB, or -1 when not possible.
func resetPeakRSS() int64 {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return -1
	}
	return statusKiB("self", "VmHWM")
}

// settledMemory returns this process's RSS (KiB) and Go heap in use (bytes)
// after a collection that returns freed memory to the kernel.
func settledMemory() (int64, uint64) {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return statusKiB("self", "VmRSS"), ms.HeapInuse
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loadavg is the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// mib renders KiB as MiB; "n/a" for a negative (unmeasured) figure.
func mib(kib int64) string {
	if kib < 0 {
		return "n/a"
	}
	return strconv.FormatFloat(float64(kib)/1024, 'f', 1, 64)
}

// median of sorted values.
func median(v []float64) float64 {
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// percentile is the nearest-rank p-th percentile of sorted values.
func percentile(v []float64, p float64) float64 {
	i := int(math.Ceil(p/100*float64(len(v)))) - 1
	return v[max(0, min(i, len(v)-1))]
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}
