package fleet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/builders"
)

// startFarm starts real sshd builders for one test.
func startFarm(t *testing.T, specs ...builders.Spec) *builders.Farm {
	if testing.Short() {
		t.Skip("needs sshd builders (not with -short)")
	}
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	farm, err := builders.Start(ctx, t.TempDir(), specs)
	if err != nil {
		t.Fatalf("builders.Start: %v", err)
	}
	t.Cleanup(farm.Stop)
	return farm
}

// newFleet returns a Fleet for the farm, its config adjusted by edit.
func newFleet(t *testing.T, farm *builders.Farm, edit func(*config.SSH)) *Fleet {
	t.Helper()
	cfg := farm.SSH()
	cfg.ConnectTimeout = 2 * time.Second
	if edit != nil {
		edit(&cfg)
	}
	f, err := New(cfg, farm.Hosts(), nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(f.Close)
	return f
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// mustExec runs a script inside a builder's namespaces.
func mustExec(t *testing.T, farm *builders.Farm, host, script string) string {
	t.Helper()
	out, err := farm.Exec(host, script)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRunOnTwoBuilders(t *testing.T) {
	farm := startFarm(t, builders.Spec{Name: "b1"}, builders.Spec{Name: "b2"})
	f := newFleet(t, farm, nil)
	ctx := testCtx(t, 30*time.Second)
	for _, h := range []string{"b1", "b2"} {
		mustExec(t, farm, h, "echo "+h+" > /var/lib/mock/whoami")
	}
	for _, h := range []string{"b1", "b2"} {
		res, err := f.Run(ctx, h, []string{"cat", "/var/lib/mock/whoami"}, RunOptions{})
		if err != nil || res.Stdout != h+"\n" || res.ExitCode != 0 || res.Truncated {
			t.Errorf("Run on %s = %+v, %v", h, res, err)
		}
	}

	// A non-zero exit is a result, not an error; stderr is kept apart.
	res, err := f.Run(ctx, "b1", []string{"sh", "-c", "echo out; echo err >&2; exit 7"}, RunOptions{})
	if err != nil || res.ExitCode != 7 || res.Stdout != "out\n" || res.Stderr != "err\n" {
		t.Errorf("exit 7: %+v, %v", res, err)
	}
	// Arguments arrive exactly, through the remote login shell.
	res, err = f.Run(ctx, "b2", append([]string{"printf", "<%s>"}, nasty...), RunOptions{})
	want := ""
	for _, s := range nasty {
		want += "<" + s + ">"
	}
	if err != nil || res.Stdout != want {
		t.Errorf("nasty arguments arrived as %q, %v; want %q", res.Stdout, err, want)
	}
	if _, err := farm.Exec("b2", "test ! -e /root/PWNED && test ! -e PWNED"); err != nil {
		t.Errorf("a quoted argument ran a command: %v", err)
	}
	// Stdin reaches the command.
	res, err = f.Run(ctx, "b1", []string{"tr", "a-z", "A-Z"}, RunOptions{Stdin: "memory = 4096\n"})
	if err != nil || res.Stdout != "MEMORY = 4096\n" {
		t.Errorf("stdin: %+v, %v", res, err)
	}
	// A NUL never reaches the wire; an unknown name is refused.
	if _, err := f.Run(ctx, "b1", []string{"echo", "a\x00b"}, RunOptions{}); !errors.Is(err, ErrNUL) || !errors.Is(err, ErrInvalid) {
		t.Errorf("NUL argument: %v", err)
	}
	if _, err := f.Run(ctx, "nosuch", []string{"true"}, RunOptions{}); !errors.Is(err, ErrUnknownHost) || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("unknown host: %v", err)
	}
}

func TestOutputCap(t *testing.T) {
	farm := startFarm(t, builders.Spec{Name: "b1"})
	f := newFleet(t, farm, func(c *config.SSH) { c.MaxOutput = 1000 })
	ctx := testCtx(t, 30*time.Second)
	res, err := f.Run(ctx, "b1", []string{"sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x; echo done >&2"}, RunOptions{})
	if err != nil || len(res.Stdout) != 1000 || !res.Truncated || res.ExitCode != 0 || res.Stderr != "done\n" {
		t.Errorf("capped run: stdout %d bytes, truncated %v, exit %d, stderr %q, err %v", len(res.Stdout), res.Truncated, res.ExitCode, res.Stderr, err)
	}
	res, err = f.Run(ctx, "b1", []string{"sh", "-c", "head -c 3000 /dev/zero"}, RunOptions{MaxOutput: 5000})
	if err != nil || len(res.Stdout) != 3000 || res.Truncated {
		t.Errorf("per-run cap: %d bytes, truncated %v, %v", len(res.Stdout), res.Truncated, err)
	}
}

func TestDiskUsageSeesBuilderTmpfs(t *testing.T) {
	farm := startFarm(t,
		builders.Spec{Name: "b1", MockMiB: 8, BuildMiB: 4},
		builders.Spec{Name: "hub", Mounts: map[string]int{"/mnt/koji": 2}})
	f := newFleet(t, farm, nil)
	ctx := testCtx(t, 30*time.Second)
	mustExec(t, farm, "b1", "head -c 6291456 /dev/zero > /var/lib/mock/fill")

	got, err := f.DiskUsage(ctx, "b1", []string{"/var/lib/mock", "/mnt/build"})
	if err != nil || len(got) != 2 {
		t.Fatalf("DiskUsage = %+v, %v", got, err)
	}
	if u := got[0]; u.Mount != "/var/lib/mock" || u.Filesystem != "tmpfs" || u.Size != 8<<20 || u.Used != 6<<20 || u.Avail != 2<<20 || u.Percent != 75 {
		t.Errorf("mock = %+v", u)
	}
	if u := got[1]; u.Mount != "/mnt/build" || u.Size != 4<<20 || u.Used != 0 || u.Percent != 0 {
		t.Errorf("build = %+v", u)
	}

	got, err = f.DiskUsage(ctx, "hub", []string{"/mnt/koji", "/pub/fedora", "/var/lib/mock"})
	if err == nil || !strings.Contains(err.Error(), "/pub/fedora") || !strings.Contains(err.Error(), "hub") {
		t.Errorf("missing path: err = %v", err)
	}
	if len(got) != 2 || got[0].Path != "/mnt/koji" || got[0].Size != 2<<20 || got[1].Path != "/var/lib/mock" {
		t.Errorf("readable paths with a missing one: %+v", got)
	}
}

// writeKnownHosts writes a known_hosts file from lines and returns its path.
func writeKnownHosts(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func randomKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHostKeys(t *testing.T) {
	farm := startFarm(t, builders.Spec{Name: "b1"}, builders.Spec{Name: "b2"})
	ctx := testCtx(t, 30*time.Second)
	b1, b2 := farm.Address("b1"), farm.Address("b2")
	b2Line := knownhosts.Line([]string{b2}, farm.HostKey("b2"))

	t.Run("unknown", func(t *testing.T) {
		kh := writeKnownHosts(t, b2Line)
		f := newFleet(t, farm, func(c *config.SSH) { c.KnownHosts = kh })
		_, err := f.Run(ctx, "b1", []string{"true"}, RunOptions{})
		if !errors.Is(err, ErrUnknownHostKey) {
			t.Fatalf("Run on a host missing from known_hosts: %v; want ErrUnknownHostKey", err)
		}
		for _, want := range []string{"b1", b1, ssh.FingerprintSHA256(farm.HostKey("b1")), "ssh-keyscan", "checking its fingerprint", kh} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if _, err := f.Run(ctx, "b2", []string{"true"}, RunOptions{}); err != nil {
			t.Errorf("the known host b2 failed: %v", err)
		}
	})

	t.Run("changed", func(t *testing.T) {
		kh := writeKnownHosts(t, knownhosts.Line([]string{b1}, randomKey(t)), b2Line)
		f := newFleet(t, farm, func(c *config.SSH) { c.KnownHosts = kh })
		_, err := f.Run(ctx, "b1", []string{"true"}, RunOptions{})
		if !errors.Is(err, ErrHostKeyChanged) || errors.Is(err, ErrUnknownHostKey) {
			t.Fatalf("Run on a host whose key changed: %v; want ErrHostKeyChanged", err)
		}
		for _, want := range []string{"b1", "key changed", "verify", "fix " + kh} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		// Fixing known_hosts takes effect without a restart.
		if err := os.WriteFile(kh, []byte(knownhosts.Line([]string{b1}, farm.HostKey("b1"))+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Run(ctx, "b1", []string{"true"}, RunOptions{}); err != nil {
			t.Errorf("after fixing known_hosts: %v", err)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		kh := writeKnownHosts(t, "@revoked "+knownhosts.Line([]string{b1}, farm.HostKey("b1")))
		f := newFleet(t, farm, func(c *config.SSH) { c.KnownHosts = kh })
		if _, err := f.Run(ctx, "b1", []string{"true"}, RunOptions{}); !errors.Is(err, ErrHostKeyChanged) || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("revoked key: %v", err)
		}
	})

	t.Run("other key types known", func(t *testing.T) {
		// known_hosts has only an RSA-typed entry for b1: the ed25519 key
		// sshd offers cannot be checked, which must not pass.
		rsaLike := strings.Replace(knownhosts.Line([]string{b1}, randomKey(t)), "ssh-ed25519", "ssh-rsa", 1)
		kh := writeKnownHosts(t, rsaLike, b2Line)
		f := newFleet(t, farm, func(c *config.SSH) { c.KnownHosts = kh })
		if _, err := f.Run(ctx, "b1", []string{"true"}, RunOptions{}); err == nil {
			t.Error("connected although no known key could be checked")
		}
	})
}

func TestAuth(t *testing.T) {
	farm := startFarm(t, builders.Spec{Name: "b1"})
	ctx := testCtx(t, 30*time.Second)

	t.Run("refused key", func(t *testing.T) {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		block, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			t.Fatal(err)
		}
		kf := filepath.Join(t.TempDir(), "id_other")
		if err := os.WriteFile(kf, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		f := newFleet(t, farm, func(c *config.SSH) { c.KeyFile = kf })
		if _, err := f.Run(ctx, "b1", []string{"true"}, RunOptions{}); !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "b1") {
			t.Errorf("refused key: %v; want ErrAuth naming b1", err)
		}
	})

	t.Run("ssh-agent", func(t *testing.T) {
		pemBytes, err := os.ReadFile(farm.KeyFile())
		if err != nil {
			t.Fatal(err)
		}
		raw, err := ssh.ParseRawPrivateKey(pemBytes)
		if err != nil {
			t.Fatal(err)
		}
		keyring := agent.NewKeyring()
		if err := keyring.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(t.TempDir(), "agent.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		var served sync.WaitGroup
		t.Cleanup(func() { l.Close(); served.Wait() })
		served.Add(1)
		go func() {
			defer served.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				served.Add(1)
				go func() { defer served.Done(); _ = agent.ServeAgent(keyring, c); c.Close() }()
			}
		}()
		t.Setenv("SSH_AUTH_SOCK", sock)
		f := newFleet(t, farm, func(c *config.SSH) { c.KeyFile = "" })
		if res, err := f.Run(ctx, "b1", []string{"echo", "via agent"}, RunOptions{}); err != nil || res.Stdout != "via agent\n" {
			t.Errorf("Run with the agent's key: %+v, %v", res, err)
		}
	})
}

func TestConnectionReuse(t *testing.T) {
	farm := startFarm(t, builders.Spec{Name: "b1"})
	f := newFleet(t, farm, nil)
	ctx := testCtx(t, 60*time.Second)
	for i := 0; i < 3; i++ {
		if _, err := f.Run(ctx, "b1", []string{"true"}, RunOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.dials.Load(); n != 1 {
		t.Errorf("3 sequential runs dialled %d times, want 1", n)
	}
	// Concurrent first use of another Fleet dials once too, and more
	// sessions than sshd's MaxSessions (10) allow wait for a slot.
	g := newFleet(t, farm, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := g.Run(ctx, "b1", []string{"sh", "-c", "sleep 0.1; echo ok"}, RunOptions{})
			if err == nil && res.Stdout != "ok\n" {
				err = fmt.Errorf("stdout %q", res.Stdout)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent run: %v", err)
		}
	}
	if n := g.dials.Load(); n != 1 {
		t.Errorf("24 concurrent runs dialled %d times, want 1", n)
	}

	// A builder that went away and came back is redialled.
	if err := farm.StopHost("b1"); err != nil {
		t.Fatal(err)
	}
	if !harness.WaitFor(ctx, 5*time.Second, func() bool { return f.cachedLink("host b1") == nil }) {
		t.Error("the dead connection stayed cached")
	}
	if _, err := f.Run(ctx, "b1", []string{"true"}, RunOptions{}); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "b1") {
		t.Errorf("Run on a stopped builder: %v; want ErrUnreachable naming b1", err)
	}
	if err := farm.StartHost(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Run(ctx, "b1", []string{"true"}, RunOptions{}); err != nil {
		t.Errorf("Run after the builder came back: %v", err)
	}
	if n := f.dials.Load(); n != 3 {
		t.Errorf("dials = %d, want 3 (first, failed, redial)", n)
	}
}

// cachedLink returns the live cached connection of a slot, for tests.
func (f *Fleet) cachedLink(key string) *link {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.entries[key]; e != nil {
		return e.link
	}
	return nil
}

func TestKeepaliveDropsHungConnection(t *testing.T) {
	farm := startFarm(t, builders.Spec{Name: "b1"})
	f := newFleet(t, farm, func(c *config.SSH) { c.ConnectTimeout = 500 * time.Millisecond })
	f.keepalive = 100 * time.Millisecond
	ctx := testCtx(t, 30*time.Second)
	if _, err := f.Run(ctx, "b1", []string{"true"}, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // some keepalives answered
	if f.cachedLink("host b1") == nil {
		t.Fatal("a healthy connection was dropped")
	}
	if err := farm.Pause("b1"); err != nil {
		t.Fatal(err)
	}
	if !harness.WaitFor(ctx, 5*time.Second, func() bool { return f.cachedLink("host b1") == nil }) {
		t.Fatal("the connection to a hung builder stayed cached")
	}
	if err := farm.Resume("b1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Run(ctx, "b1", []string{"true"}, RunOptions{}); err != nil {
		t.Errorf("Run after Resume: %v", err)
	}
	if n := f.dials.Load(); n != 2 {
		t.Errorf("dials = %d, want 2", n)
	}
}

// remoteRunning reports whether a process whose command line starts with
// prefix runs in the builder.
func remoteRunning(farm *builders.Farm, host, prefix string) bool {
	_, err := farm.Exec(host, "pgrep -f '^"+prefix+"'")
	return err == nil
}

func TestCancelStopsRemoteProcess(t *testing.T) {
	farm := startFarm(t, builders.Spec{Name: "b1"})
	f := newFleet(t, farm, nil)

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		type ran struct {
			res Result
			err error
		}
		done := make(chan ran, 1)
		go func() {
			res, err := f.Run(ctx, "b1", []string{"sleep", "1000"}, RunOptions{})
			done <- ran{res, err}
		}()
		if !harness.WaitFor(context.Background(), 10*time.Second, func() bool { return remoteRunning(farm, "b1", "sleep 1000") }) {
			t.Fatal("sleep 1000 never started")
		}
		start := time.Now()
		cancel()
		r := <-done
		if !errors.Is(r.err, context.Canceled) || errors.Is(r.err, ErrTimeout) || !strings.Contains(r.err.Error(), "b1") {
			t.Errorf("Run after cancel: %v; want context.Canceled naming b1", r.err)
		}
		if r.res.ExitCode != -1 {
			t.Errorf("exit code after cancel = %d, want -1", r.res.ExitCode)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("Run took %v to return after cancel", took)
		}
		if !harness.WaitFor(context.Background(), 5*time.Second, func() bool { return !remoteRunning(farm, "b1", "sleep 1000") }) {
			t.Error("remote sleep 1000 still running after cancel")
		}
	})

	t.Run("deadline kills the process group", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		start := time.Now()
		_, err := f.Run(ctx, "b1", []string{"sh", "-c", "sleep 1001 & sleep 1002; wait"}, RunOptions{Timeout: time.Second})
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "b1") {
			t.Errorf("Run past its timeout: %v; want ErrTimeout naming b1", err)
		}
		if took := time.Since(start); took < time.Second || took > 4*time.Second {
			t.Errorf("Run with a 1s timeout took %v", took)
		}
		for _, p := range []string{"sleep 1001", "sleep 1002"} {
			if !harness.WaitFor(ctx, 5*time.Second, func() bool { return !remoteRunning(farm, "b1", p) }) {
				t.Errorf("remote %s still running after the deadline", p)
			}
		}
	})

	t.Run("command timeout from config", func(t *testing.T) {
		g := newFleet(t, farm, func(c *config.SSH) { c.CommandTimeout = 500 * time.Millisecond })
		res, err := g.Run(testCtx(t, 30*time.Second), "b1", []string{"sh", "-c", "echo started; sleep 1003"}, RunOptions{})
		if !errors.Is(err, ErrTimeout) || res.Stdout != "started\n" {
			t.Errorf("Run past ssh.command_timeout: %+v, %v; want ErrTimeout and the output so far", res, err)
		}
		if !harness.WaitFor(context.Background(), 5*time.Second, func() bool { return !remoteRunning(farm, "b1", "sleep 1003") }) {
			t.Error("remote sleep 1003 still running")
		}
	})

	// The connection survives: the next command runs on it.
	if _, err := f.Run(testCtx(t, 30*time.Second), "b1", []string{"true"}, RunOptions{}); err != nil {
		t.Errorf("Run after the cancellations: %v", err)
	}
}

func TestEachWithHungAndDeadBuilders(t *testing.T) {
	farm := startFarm(t, builders.Spec{Name: "b1"}, builders.Spec{Name: "b2"}, builders.Spec{Name: "b3"}, builders.Spec{Name: "b4"})
	f := newFleet(t, farm, func(c *config.SSH) { c.ConnectTimeout = time.Second; c.Parallel = 2 })
	ctx := testCtx(t, 10*time.Second)
	// b3 is hung with a connection already cached; b2 hangs before any.
	if _, err := f.Run(ctx, "b3", []string{"true"}, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := farm.Pause("b2"); err != nil {
		t.Fatal(err)
	}
	if err := farm.Pause("b3"); err != nil {
		t.Fatal(err)
	}
	if err := farm.StopHost("b4"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = farm.Resume("b2"); _ = farm.Resume("b3") })

	start := time.Now()
	results := f.Each(ctx, []string{"b1", "b2", "b3", "b4", "b1"}, func(ctx context.Context, host string) error {
		_, err := f.Run(ctx, host, []string{"echo", host}, RunOptions{Timeout: 2 * time.Second})
		return err
	})
	took := time.Since(start)
	if took > 6*time.Second {
		t.Errorf("Each took %v", took)
	}
	if len(results) != 4 {
		t.Errorf("results = %v, want one per host", results)
	}
	if err := results["b1"]; err != nil {
		t.Errorf("b1: %v", err)
	}
	for host, want := range map[string]error{"b2": ErrUnreachable, "b3": ErrTimeout, "b4": ErrUnreachable} {
		err := results[host]
		if !errors.Is(err, want) || !strings.Contains(err.Error(), host) {
			t.Errorf("%s: %v; want %v naming %s", host, err, want, host)
		}
	}
	joined := JoinErrors(results)
	for _, h := range []string{"b2", "b3", "b4"} {
		if joined == nil || !strings.Contains(joined.Error(), h) {
			t.Errorf("JoinErrors = %v, does not name %s", joined, h)
		}
	}

	// A panic on one host is an error for that host only.
	results = f.Each(ctx, []string{"b1", "x"}, func(ctx context.Context, host string) error {
		if host == "x" {
			panic("boom")
		}
		return nil
	})
	if results["b1"] != nil || results["x"] == nil || !strings.Contains(results["x"].Error(), "boom") {
		t.Errorf("panic: %v", results)
	}
}

func TestService(t *testing.T) {
	// The farm's stand-in services: this is the fleet's service control,
	// with no Koji hub for a real kojid to log in to.
	farm := startFarm(t, builders.Spec{Name: "b1", Services: []string{"kojid", "plague-builder"}})
	f := newFleet(t, farm, nil)
	ctx := testCtx(t, 30*time.Second)
	active := func(svc string) (bool, error) {
		res, err := f.Service(ctx, "b1", "is-active", svc)
		if err != nil {
			return false, err
		}
		switch {
		case res.ExitCode == 0 && res.Stdout == "active\n":
			return true, nil
		case res.ExitCode == 3 && res.Stdout == "inactive\n":
			return false, nil
		}
		return false, fmt.Errorf("is-active %s: %+v", svc, res)
	}
	if ok, err := active("kojid"); !ok || err != nil {
		t.Fatalf("kojid at boot: %v, %v", ok, err)
	}
	if res, err := f.Service(ctx, "b1", "stop", "kojid"); err != nil || res.ExitCode != 0 {
		t.Fatalf("stop: %+v, %v", res, err)
	}
	if ok, err := active("kojid"); ok || err != nil {
		t.Errorf("kojid after stop: %v, %v", ok, err)
	}
	if remoteRunning(farm, "b1", "fakesvc:kojid") {
		t.Error("kojid's process survived stop")
	}
	if !remoteRunning(farm, "b1", "fakesvc:plague-builder") {
		t.Error("stopping kojid stopped plague-builder")
	}
	if res, err := f.Service(ctx, "b1", "start", "kojid"); err != nil || res.ExitCode != 0 {
		t.Fatalf("start: %+v, %v", res, err)
	}
	if ok, err := active("kojid"); !ok || err != nil || !remoteRunning(farm, "b1", "fakesvc:kojid") {
		t.Errorf("kojid after start: %v, %v", ok, err)
	}
	pid := mustExec(t, farm, "b1", "cat /run/fakesvc/kojid.pid")
	if res, err := f.Service(ctx, "b1", "restart", "kojid"); err != nil || res.ExitCode != 0 {
		t.Fatalf("restart: %+v, %v", res, err)
	}
	if again := mustExec(t, farm, "b1", "cat /run/fakesvc/kojid.pid"); again == pid {
		t.Errorf("restart kept pid %s", pid)
	}
	if _, err := f.Service(ctx, "b1", "status", "kojid"); !errors.Is(err, ErrInvalid) {
		t.Errorf("status: %v, want it refused (systemctl would page it)", err)
	}
	// A failed start is a result, not a transport error.
	mustExec(t, farm, "b1", "touch /run/fakesvc/plague-builder.broken")
	if res, err := f.Service(ctx, "b1", "restart", "plague-builder"); err != nil || res.ExitCode == 0 || !strings.Contains(res.Stderr, "failed") {
		t.Errorf("restart of a broken service: %+v, %v", res, err)
	}
	// Bad input never reaches the host.
	before := mustExec(t, farm, "b1", "cat /run/fakesvc/journal")
	for _, c := range [][2]string{{"reload", "kojid"}, {"stop", "kojid;touch /PWNED"}, {"stop", "-kojid"}} {
		if _, err := f.Service(ctx, "b1", c[0], c[1]); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "b1") {
			t.Errorf("Service(%q, %q) = %v; want ErrInvalid", c[0], c[1], err)
		}
	}
	if after := mustExec(t, farm, "b1", "cat /run/fakesvc/journal"); after != before {
		t.Errorf("refused service calls reached the host: %q", strings.TrimPrefix(after, before))
	}
	if ok, err := active("kojid"); !ok || err != nil {
		t.Errorf("kojid after refused calls: %v, %v", ok, err)
	}
}

func TestJumpHost(t *testing.T) {
	farm := startFarm(t, builders.Spec{Name: "bastion", Bastion: true}, builders.Spec{Name: "b2"})
	jump := farm.Address("bastion")
	f := newFleet(t, farm, func(c *config.SSH) { c.JumpHost = jump })
	ctx := testCtx(t, 30*time.Second)

	mustExec(t, farm, "b2", "echo b2 > /var/lib/mock/whoami")
	res, err := f.Run(ctx, "b2", []string{"cat", "/var/lib/mock/whoami"}, RunOptions{})
	if err != nil || res.Stdout != "b2\n" {
		t.Fatalf("Run on b2 through the bastion: %+v, %v", res, err)
	}
	if n := f.dials.Load(); n != 2 {
		t.Errorf("dials = %d, want 2 (bastion, then b2 through it)", n)
	}
	_, port, _ := net.SplitHostPort(farm.Address("b2"))
	log, err := farm.Log("bastion")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "direct-tcpip") || !strings.Contains(log, port) {
		t.Errorf("the bastion's sshd log shows no forwarding to b2 (port %s):\n%s", port, log)
	}
	// The bastion itself is reached directly.
	if _, err := f.Run(ctx, "bastion", []string{"true"}, RunOptions{}); err != nil {
		t.Errorf("Run on the bastion: %v", err)
	}

	// Without the bastion, b2 is out of reach (though it is up).
	if err := farm.StopHost("bastion"); err != nil {
		t.Fatal(err)
	}
	g := newFleet(t, farm, func(c *config.SSH) { c.JumpHost = jump })
	_, err = g.Run(ctx, "b2", []string{"true"}, RunOptions{})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "b2") || !strings.Contains(err.Error(), "jump host") {
		t.Errorf("Run on b2 with the bastion down: %v; want ErrUnreachable naming b2 and the jump host", err)
	}
}

func TestClose(t *testing.T) {
	farm := startFarm(t, builders.Spec{Name: "b1"})
	f := newFleet(t, farm, nil)
	ctx := testCtx(t, 30*time.Second)
	if _, err := f.Run(ctx, "b1", []string{"true"}, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	f.Close()
	if _, err := f.Run(ctx, "b1", []string{"true"}, RunOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v; want ErrClosed", err)
	}
}

func TestNewChecksConfig(t *testing.T) {
	kh := testKnownHosts(t)
	key := filepath.Join(t.TempDir(), "no-such-key")
	t.Setenv("SSH_AUTH_SOCK", "")
	ssh := func(edit func(*config.SSH)) config.SSH {
		c := config.Default().SSH
		c.KnownHosts, c.KeyFile = kh, key
		edit(&c)
		return c
	}
	for _, c := range []struct {
		name string
		cfg  config.SSH
		want string
	}{
		{"no user", ssh(func(c *config.SSH) { c.User = "" }), "ssh.user"},
		{"no known_hosts", ssh(func(c *config.SSH) { c.KnownHosts = "" }), "known_hosts"},
		{"missing known_hosts", ssh(func(c *config.SSH) { c.KnownHosts = kh + ".missing" }), "known_hosts"},
		{"missing key", ssh(func(c *config.SSH) {}), "ssh.key_file"},
		{"no key, no agent", ssh(func(c *config.SSH) { c.KeyFile = "" }), "SSH_AUTH_SOCK"},
		{"service command without placeholders", ssh(func(c *config.SSH) { c.ServiceCommand = "systemctl restart kojid" }), "{action} and {service}"},
	} {
		if f, err := New(c.cfg, nil, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			if f != nil {
				f.Close()
			}
			t.Errorf("%s: New = %v, want an error about %q", c.name, err, c.want)
		}
	}
}
