package contrib

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
)

// maxExposure is the highest `systemd-analyze security` score accepted.
const maxExposure = 2.0

// unitPath is the unit under test, relative to this package.
const unitPath = "kojibot.service"

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	if flag.Parse(); testing.Short() {
		fmt.Println("skipped with -short: these tests start real servers")
		os.Exit(0)
	}
	// The RPM build, the longest test, runs beside the unit's and the
	// notify protocol's, which mostly wait.
	harness.ServerBound(4)
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// kojibotBinary builds cmd/kojibot once for the package's tests.
func kojibotBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kojibot-contrib-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "kojibot")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/kojibot")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// unitCopy writes the unit to a temp dir with ExecStart (and the other
// commands) pointing at a built binary, as systemd-analyze verify wants
// the binary it names to exist. edit, when not nil, changes the text.
func unitCopy(t *testing.T, edit func(string) string) string {
	t.Helper()
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if !strings.Contains(text, "ExecStart=/usr/bin/kojibot ") {
		t.Fatalf("%s: ExecStart does not run /usr/bin/kojibot (the RPM's path)", unitPath)
	}
	text = strings.ReplaceAll(text, "=/usr/bin/kojibot ", "="+kojibotBinary(t)+" ")
	if edit != nil {
		text = edit(text)
	}
	path := filepath.Join(t.TempDir(), "kojibot.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUnitVerifies(t *testing.T) {
	t.Parallel() // beside the RPM build
	path := unitCopy(t, nil)
	cmd := exec.Command("systemd-analyze", "verify", "--man=no", path)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
	}
	// The check itself: a broken unit is refused.
	bad := unitCopy(t, func(s string) string { return strings.Replace(s, "Type=notify", "Type=notifyy", 1) })
	if out, err := exec.Command("systemd-analyze", "verify", "--man=no", bad).CombinedOutput(); err == nil && len(out) == 0 {
		t.Fatal("systemd-analyze verify accepts Type=notifyy: the check proves nothing")
	}
}

// exposureRE finds the overall score in systemd-analyze security's report.
var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9]+(?:\.[0-9]+)?)`)

// exposure is `systemd-analyze security --offline=true` of the unit at path.
func exposure(t *testing.T, path string) float64 {
	t.Helper()
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return score
}

func TestUnitSecurityScore(t *testing.T) {
	score := exposure(t, unitCopy(t, nil))
	t.Logf("systemd-analyze security --offline=true %s: %.1f", unitPath, score)
	if score > maxExposure {
		t.Fatalf("exposure %.1f > %.1f: the unit has been weakened", score, maxExposure)
	}
	// The check itself: without its hardening the unit scores badly.
	weak := exposure(t, unitCopy(t, func(s string) string {
		var keep []string
		for _, line := range strings.Split(s, "\n") {
			name, _, _ := strings.Cut(line, "=")
			if _, hardening := required[name]; !hardening || name == "Type" || name == "User" {
				keep = append(keep, line)
			}
		}
		return strings.Join(keep, "\n")
	}))
	if weak <= maxExposure {
		t.Fatalf("a unit without its hardening scores %.1f <= %.1f: the check proves nothing", weak, maxExposure)
	}
}

// required are settings the hardening asks of the unit, with their values. Some
// weigh little in the score; each is checked by name.
var required = map[string]string{
	"Type":                    "notify",
	"User":                    "kojibot",
	"StateDirectory":          "kojibot",
	"ConfigurationDirectory":  "kojibot",
	"NoNewPrivileges":         "yes",
	"ProtectSystem":           "strict",
	"ProtectHome":             "yes",
	"PrivateTmp":              "yes",
	"PrivateDevices":          "yes",
	"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
	"SystemCallFilter":        "@system-service",
	"MemoryDenyWriteExecute":  "yes",
	"CapabilityBoundingSet":   "",
	"AmbientCapabilities":     "",
}

func TestUnitSettings(t *testing.T) {
	f, err := os.Open(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		got[k] = append(got[k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for k, want := range required {
		vals, ok := got[k]
		if !ok || !contains(vals, want) {
			t.Errorf("%s=%q missing (have %q)", k, want, vals)
		}
	}
	// Nothing may give a capability back after the empty bounding set.
	if v := got["CapabilityBoundingSet"]; len(v) != 1 {
		t.Errorf("CapabilityBoundingSet set %d times, want once (empty): %q", len(v), v)
	}
	if len(got["LoadCredential"]) == 0 {
		t.Error("no LoadCredential=: secrets must come as systemd credentials")
	}
	if len(got["WatchdogSec"]) == 0 {
		t.Error("no WatchdogSec=: kojibot pings the watchdog")
	}
}

func contains(vals []string, want string) bool {
	for _, v := range vals {
		if v == want {
			return true
		}
	}
	return false
}

// TestSysusersAndTmpfiles applies the two files to an empty root with
// systemd-sysusers and systemd-tmpfiles, as the package's install does.
func TestSysusersAndTmpfiles(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(name, file string, args ...string) {
		t.Helper()
		in, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		cmd := exec.Command(name, append(args, "--root="+root, "-")...)
		cmd.Stdin = in
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, file, err, out)
		}
	}
	run("systemd-sysusers", "kojibot.sysusers")
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	var uid, gid int = -1, -1
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[0] == "kojibot" {
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
			if f[5] != "/var/lib/kojibot" || !strings.HasSuffix(f[6], "/nologin") {
				t.Errorf("kojibot's home and shell: %q", line)
			}
		}
	}
	if uid <= 0 || uid >= 1000 || gid <= 0 {
		t.Fatalf("no system user kojibot in:\n%s", passwd)
	}
	run("systemd-tmpfiles", "kojibot.tmpfiles", "--create")
	for _, c := range []struct {
		path     string
		mode     os.FileMode
		uid, gid int
	}{
		{"var/lib/kojibot", 0o700, uid, gid},
		{"etc/kojibot", 0o750, 0, gid},
	} {
		fi, err := os.Stat(filepath.Join(root, c.path))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || fi.Mode().Perm() != c.mode || int(st.Uid) != c.uid || int(st.Gid) != c.gid {
			t.Errorf("/%s: %v %d:%d, want dir %v %d:%d", c.path, fi.Mode(), st.Uid, st.Gid, c.mode, c.uid, c.gid)
		}
	}
}

// TestExampleConfigChecks: the shipped example passes check-config when
// its secrets come as credentials, and names the missing one otherwise.
func TestExampleConfigChecks(t *testing.T) {
	bin := kojibotBinary(t)
	creds := t.TempDir()
	for _, name := range []string{"sasl-password", "id_ed25519"} {
		if err := os.WriteFile(filepath.Join(creds, name), []byte("not-a-real-secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The hub's keytab: its header is what check-config reads.
	if err := os.WriteFile(filepath.Join(creds, "koji.keytab"), []byte{0x05, 0x02}, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "check-config", "--config", "kojibot.yaml.example")
	cmd.Env = append(cleanEnv(), "CREDENTIALS_DIRECTORY="+creds)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("check-config with credentials: %v\n%s", err, out)
	}
	cmd = exec.Command(bin, "check-config", "--config", "kojibot.yaml.example")
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "irc.sasl.password_file") {
		t.Fatalf("check-config without the secret: %v\n%s", err, out)
	}
}

// cleanEnv is the environment without KOJIBOT_* and systemd's variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "KOJIBOT_"), name == "CREDENTIALS_DIRECTORY",
			name == "NOTIFY_SOCKET", strings.HasPrefix(name, "WATCHDOG_"):
			continue
		}
		env = append(env, kv)
	}
	return env
}

// TestNotifyProtocol runs the real binary with NOTIFY_SOCKET pointing at a
// datagram socket, as systemd does for Type=notify, against a real IRC
// network: READY=1 comes once the bot is on the network, WATCHDOG=1 pings
// follow, STOPPING=1 comes on SIGTERM and the bot then exits 0.
func TestNotifyProtocol(t *testing.T) {
	t.Parallel() // beside the RPM build
	bin := kojibotBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	netw, err := ircnet.Start(ctx, t.TempDir(), ircnet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer netw.Stop()

	// A short path: unix socket names are limited to 108 bytes.
	sockDir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sockPath := filepath.Join(sockDir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()

	dir := t.TempDir()
	cfg := fmt.Sprintf(`irc: {server: %s, port: %d, tls: false, nick: kojibot-sd, channels: ["#sd"]}
koji: {db: {dsn: "postgres://kojibot@127.0.0.1:1/koji?connect_timeout=1"}}
acl: {source: static, groups: {ops: [alice]}}
state: {dir: %s}
http: {listen: ""}
shutdown_timeout: 5s
`, netw.Host(), netw.Port(), filepath.Join(dir, "state"))
	cfgPath := filepath.Join(dir, "kojibot.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var output strings.Builder
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Env = append(cleanEnv(), "NOTIFY_SOCKET="+sockPath, "WATCHDOG_USEC=400000")
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	var got []string
	expect := func(prefix string) {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed; got %q", got)
				}
				got = append(got, m)
				if strings.HasPrefix(m, prefix) {
					return
				}
			case err := <-exited:
				t.Fatalf("kojibot exited (%v) before %s; got %q\n%s", err, prefix, got, output.String())
			case <-timeout:
				t.Fatalf("no %s within 60s; got %q\n%s", prefix, got, output.String())
			}
		}
	}
	expect("READY=1")
	if !strings.Contains(got[len(got)-1], "STATUS=connected to "+netw.Host()) {
		t.Errorf("READY without its STATUS: %q", got[len(got)-1])
	}
	// Our own client finds the bot in its channel: in the names list when
	// it joins, or joining right after.
	watcher, err := ircnet.Dial(ctx, netw.Addr(), "watcher", ircnet.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Quit()
	if err := watcher.Join(ctx, "#sd"); err != nil {
		t.Fatal(err)
	}
	jctx, jcancel := context.WithTimeout(ctx, 10*time.Second)
	defer jcancel()
	if _, err := watcher.Expect(jctx, func(m ircnet.Message) bool {
		switch m.Command {
		case "353":
			return slices.ContainsFunc(strings.Fields(m.Text), func(n string) bool {
				return strings.EqualFold(strings.TrimLeft(n, "@+"), "kojibot-sd")
			})
		case "JOIN":
			return strings.EqualFold(m.Source, "kojibot-sd") && strings.EqualFold(m.Target(), "#sd")
		}
		return false
	}); err != nil {
		t.Fatalf("READY=1 came but the bot is not in #sd: %v", err)
	}
	expect("WATCHDOG=1")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	expect("STOPPING=1")
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("kojibot after SIGTERM: %v\n%s", err, output.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("kojibot still running 30s after SIGTERM\n%s", output.String())
	}
}
