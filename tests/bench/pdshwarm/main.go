// Command pdshwarm times pdsh reading the builder mounts of a farm of real
// sshd builders the way `!koji disk all` does (df of /var/lib/mock and
// /mnt/build on every builder), cold — a new SSH connection per host, each
// round — and warm, through OpenSSH connection sharing: ssh_config with
// ControlMaster auto and ControlPersist, so that after one untimed round
// every host's master connection is open and each round only opens a
// session on it — beside kojibot warm (one commands/fleet Fleet kept
// across rounds, doing what `disk all` does), in the same run.
// tests/bench/diskall has kojibot cold and pdsh cold in more detail.
//
// It starts -builders (default 50) builders with the tests' builders
// harness, masks the login user's ~/.bashrc inside them (as diskall does),
// runs -rounds rounds of each (in turn), checks every round's output
// (each builder's own /var/lib/mock size) and prints median, p90, min and
// max wall time, and each median over kojibot warm's. The master connections are closed (ssh -O exit) and the
// builders stopped at the end, on error and on Ctrl-C too.
//
// It needs root, pdsh and ssh. Run: go run ./tests/bench/pdshwarm -rounds 20
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/tests/harness/builders"
)

// Builder i (from 0) gets mockBaseMiB+i MiB at /var/lib/mock, so that each
// answer names its builder (as in diskall).
const (
	mockBaseMiB = 8
	buildMiB    = 16
)

func main() {
	n := flag.Int("builders", 50, "sshd builders to start (1–200)")
	rounds := flag.Int("rounds", 20, "timed rounds of each")
	parallel := flag.Int("parallel", config.Default().SSH.Parallel, "pdsh's fanout (-f), as ssh.parallel")
	persist := flag.String("persist", "10m", "ControlPersist of the warm masters")
	flag.Parse()
	if *n < 1 || *n > 200 || *rounds < 1 || *parallel < 1 {
		fmt.Fprintln(os.Stderr, "pdshwarm: want 1 ≤ -builders ≤ 200, -rounds ≥ 1, -parallel ≥ 1")
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, *n, *rounds, *parallel, *persist); err != nil {
		fmt.Fprintln(os.Stderr, "pdshwarm:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n, rounds, parallel int, persist string) error {
	if os.Geteuid() != 0 {
		return errors.New("must run as root (the builders are sshds in their own namespaces)")
	}
	for _, bin := range []string{"pdsh", "ssh"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not found (Debian packages pdsh, openssh-client)", bin)
		}
	}
	dir, err := os.MkdirTemp("", "kojibot-pdshwarm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	_ = os.Chmod(dir, 0o755)
	specs := make([]builders.Spec, n)
	want := map[string]uint64{}
	for i := range specs {
		name := fmt.Sprintf("b%02d", i+1)
		specs[i] = builders.Spec{Name: name, MockMiB: mockBaseMiB + i, BuildMiB: buildMiB}
		want[name] = uint64(mockBaseMiB+i) << 20
	}
	fmt.Printf("starting %d sshd builders …\n", n)
	farm, err := builders.Start(ctx, filepath.Join(dir, "farm"), specs)
	if err != nil {
		return err
	}
	defer farm.Stop()
	names := farm.Names()
	cfg := farm.SSH()
	if err := maskBashrc(farm, names, cfg.User); err != nil {
		return err
	}
	cold := filepath.Join(dir, "ssh_config.cold")
	warm := filepath.Join(dir, "ssh_config.warm")
	cm := filepath.Join(dir, "cm")
	if err := os.Mkdir(cm, 0o700); err != nil {
		return err
	}
	if err := farm.WriteSSHConfig(cold, names, cfg.User, "ControlMaster no", "ControlPath none"); err != nil {
		return err
	}
	if err := farm.WriteSSHConfig(warm, names, cfg.User,
		"ControlMaster auto", "ControlPath "+cm+"/%C", "ControlPersist "+persist); err != nil {
		return err
	}
	defer closeMasters(warm, names)
	perHost := max(2*cfg.ConnectTimeout, 5*time.Second)
	argv := []string{"pdsh", "-R", "ssh", "-f", strconv.Itoa(parallel),
		"-t", strconv.Itoa(int(cfg.ConnectTimeout / time.Second)), "-u", strconv.Itoa(int(perHost / time.Second)),
		"-S", "-w", strings.Join(names, ","), "df", "-P", "-B1", builders.MockDir, builders.BuildDir}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PDSH_") && !strings.HasPrefix(kv, "WCOLL=") {
			env = append(env, kv)
		}
	}
	pdsh := func(config string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(slices.Clip(env), "PDSH_SSH_ARGS=-F "+config+" %h")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		t0 := time.Now()
		err := cmd.Run()
		took := time.Since(t0)
		if err != nil {
			return took, fmt.Errorf("pdsh: %w: %s", err, strings.TrimSpace(stderr.String()))
		}
		return took, check(stdout.String(), want)
	}
	// kojibot warm: one fleet kept across rounds, as the bot keeps it,
	// doing what `disk all` does (fleet.Each, DiskUsage with a per-host
	// deadline).
	fcfg := cfg
	fcfg.Parallel = parallel
	fl, err := fleet.New(fcfg, farm.Hosts(), nil)
	if err != nil {
		return err
	}
	defer fl.Close()
	kojibot := func() (time.Duration, error) {
		t0 := time.Now()
		results := fl.Each(ctx, names, func(ctx context.Context, host string) error {
			ctx, cancel := context.WithTimeout(ctx, perHost)
			defer cancel()
			us, err := fl.DiskUsage(ctx, host, []string{builders.MockDir, builders.BuildDir})
			if err == nil && (len(us) != 2 || us[0].Size != want[host]) {
				err = fmt.Errorf("%s: wrong answer %+v", host, us)
			}
			return err
		})
		took := time.Since(t0)
		if err := fleet.JoinErrors(results); err != nil {
			return took, err
		}
		if len(results) != len(names) {
			return took, fmt.Errorf("kojibot: %d results for %d builders", len(results), len(names))
		}
		return took, nil
	}
	// The masters and the fleet's connections open in an untimed round.
	if _, err := pdsh(warm); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if _, err := kojibot(); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	runs := []func() (time.Duration, error){
		func() (time.Duration, error) { return pdsh(cold) },
		func() (time.Duration, error) { return pdsh(warm) },
		kojibot,
	}
	took := make([][]time.Duration, len(runs))
	for r := 0; r < rounds; r++ {
		for k := range runs {
			i := (r + k) % len(runs)
			d, err := runs[i]()
			if err != nil {
				return err
			}
			took[i] = append(took[i], d)
			time.Sleep(200 * time.Millisecond) // sshd teardown is not charged to the next run
		}
	}
	fmt.Printf("disk all: 2 mounts on %d builders, fanout %d, %d rounds each, in turn (ms/round)\n", n, parallel, rounds)
	fmt.Printf("| %-42s | %8s | %8s | %8s | %8s | %14s |\n", "method", "median", "p90", "min", "max", "kojibot warm ×")
	fmt.Printf("|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 44), strings.Repeat("-", 10), strings.Repeat("-", 10), strings.Repeat("-", 10), strings.Repeat("-", 10), strings.Repeat("-", 16))
	median := func(d []time.Duration) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return ms(s[len(s)/2])
	}
	kw := median(took[2])
	for i, name := range []string{"pdsh cold (new connection per host)", "pdsh warm (ControlMaster, ControlPersist)", "kojibot warm (cached connections)"} {
		s := slices.Clone(took[i])
		slices.Sort(s)
		q := func(p float64) float64 { return ms(s[min(len(s)-1, int(p*float64(len(s))))]) }
		fmt.Printf("| %-42s | %8.1f | %8.1f | %8.1f | %8.1f | %13.1f× |\n", name, q(0.5), q(0.9), ms(s[0]), ms(s[len(s)-1]), q(0.5)/kw)
	}
	fmt.Println("(last column: the method's median over kojibot warm's; kojibot cold is in tests/bench/diskall)")
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// check verifies that every builder answered with df's header and both
// mounts, /var/lib/mock at its own size.
func check(out string, want map[string]uint64) error {
	lines := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		host, line, ok := strings.Cut(sc.Text(), ": ")
		if _, known := want[host]; !ok || !known {
			return fmt.Errorf("pdsh: unexpected output line %q", sc.Text())
		}
		lines[host]++
		f := strings.Fields(line)
		if len(f) == 6 && f[5] == builders.MockDir && f[1] != strconv.FormatUint(want[host], 10) {
			return fmt.Errorf("pdsh: %s: %s is %s bytes, want %d", host, builders.MockDir, f[1], want[host])
		}
	}
	for host := range want {
		if lines[host] != 3 {
			return fmt.Errorf("pdsh: %s: %d lines, want 3 (header and two mounts)", host, lines[host])
		}
	}
	return nil
}

// closeMasters asks every builder's master connection to exit.
func closeMasters(config string, names []string) {
	for _, name := range names {
		_ = exec.Command("ssh", "-F", config, "-O", "exit", name).Run()
	}
}

// maskBashrc bind-mounts /dev/null over the login user's ~/.bashrc inside
// every builder's mount namespace, so that pdsh's remote shells measure
// SSH and not this machine's shell set-up (as diskall does).
func maskBashrc(farm *builders.Farm, names []string, login string) error {
	script := `h=$(getent passwd ` + login + ` | cut -d: -f6); if [ -n "$h" ] && [ -f "$h/.bashrc" ]; then mount --bind /dev/null "$h/.bashrc"; fi`
	for _, name := range names {
		if _, err := farm.Exec(name, script); err != nil {
			return err
		}
	}
	return nil
}
