package builders

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fedora-infra/kojibot/tests/harness"
)

// startFarm starts specs under a temp dir and stops them when the test ends.
func startFarm(t *testing.T, specs []Spec) *Farm {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := Start(ctx, t.TempDir(), specs)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(f.Stop)
	return f
}

// dial logs in to a builder as User with the farm's key, checking its host
// key against the farm's known_hosts.
func dial(t *testing.T, f *Farm, name string) (*ssh.Client, error) {
	return dialAs(t, f, name, User)
}

// dialAs logs in to a builder as user with the farm's key.
func dialAs(t *testing.T, f *Farm, name, user string) (*ssh.Client, error) {
	t.Helper()
	pem, err := os.ReadFile(f.KeyFile())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", f.Address(name), 2*time.Second)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
	conn, chans, reqs, err := ssh.NewClientConn(nc, f.Address(name), &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(f.HostKey(name)),
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return ssh.NewClient(conn, chans, reqs), nil
}

func TestFarmNamespacesAndServices(t *testing.T) {
	f := startFarm(t, []Spec{
		{Name: "b1", MockMiB: 8, BuildMiB: 4, Services: []string{"kojid"}},
		{Name: "hub", Mounts: map[string]int{"/mnt/koji": 3, "/mnt/koji/sub": 2}},
	})

	hosts := f.Hosts()
	if len(hosts) != 2 || !strings.HasPrefix(hosts["b1"].Address, "127.0.0.") || hosts["b1"].Services[0] != "kojid" {
		t.Fatalf("Hosts() = %v", hosts)
	}
	if hosts["b1"].Address == hosts["hub"].Address {
		t.Fatalf("two builders on one address: %v", hosts)
	}
	kh, err := os.ReadFile(f.KnownHosts())
	if err != nil || strings.Count(string(kh), "ssh-ed25519") != 2 {
		t.Fatalf("known_hosts = %q, %v", kh, err)
	}

	// Each builder has its own tmpfs of its own size.
	for _, c := range []struct {
		host, path string
		bytes      string
	}{
		{"b1", MockDir, "8388608"},
		{"b1", BuildDir, "4194304"},
		{"hub", MockDir, "67108864"},
		{"hub", "/mnt/koji", "3145728"},
		{"hub", "/mnt/koji/sub", "2097152"},
	} {
		out, err := f.Exec(c.host, "df -P -B1 "+c.path+" | awk 'NR==2 {print $1, $2, $6}'")
		if err != nil {
			t.Fatal(err)
		}
		if want := "tmpfs " + c.bytes + " " + c.path + "\n"; out != want {
			t.Errorf("%s: df %s = %q, want %q", c.host, c.path, out, want)
		}
	}
	if _, err := f.Exec("b1", "touch "+MockDir+"/only-on-b1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Exec("hub", "test ! -e "+MockDir+"/only-on-b1"); err != nil {
		t.Errorf("a file made on b1 is visible on hub: %v", err)
	}
	if _, err := os.Stat(filepath.Join(MockDir, "only-on-b1")); err == nil {
		t.Errorf("a file made on b1 is visible outside the builders")
	}

	// Services listed in the spec run from the start; fakesvc stops and
	// starts real processes, visible only in the builder's own /proc.
	if out, err := f.Service("b1", "is-active", "kojid"); err != nil || out != "active\n" {
		t.Fatalf("is-active kojid = %q, %v", out, err)
	}
	if _, err := f.Exec("hub", "pgrep -f ^fakesvc:kojid"); err == nil {
		t.Errorf("hub sees b1's kojid process")
	}
	if _, err := f.Service("b1", "stop", "kojid"); err != nil {
		t.Fatal(err)
	}
	if out, err := f.Service("b1", "is-active", "kojid"); err == nil || out != "inactive\n" {
		t.Fatalf("after stop: is-active = %q, %v; want inactive and exit 3", out, err)
	}
	if _, err := f.Exec("b1", "! pgrep -f ^fakesvc:kojid"); err != nil {
		t.Errorf("kojid process still there after stop: %v", err)
	}
	if _, err := f.Exec("b1", "touch "+ServiceStateDir+"/kojid.broken"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Service("b1", "start", "kojid"); err == nil {
		t.Errorf("start of a broken service succeeded")
	}
	if _, err := f.Exec("b1", "rm "+ServiceStateDir+"/kojid.broken"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Service("b1", "start", "kojid"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Exec("b1", "pgrep -f ^fakesvc:kojid"); err != nil {
		t.Errorf("kojid not running after start: %v", err)
	}
	journal, err := f.Exec("b1", "cat "+ServiceStateDir+"/journal")
	if err != nil || !strings.Contains(journal, "stop kojid ok") || !strings.Contains(journal, "start kojid failed") {
		t.Errorf("journal = %q, %v", journal, err)
	}
}

func TestFarmPauseStopStart(t *testing.T) {
	f := startFarm(t, []Spec{{Name: "b1", Services: []string{"kojid"}}})
	c, err := dial(t, f, "b1")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.Close()

	if err := f.Pause("b1"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if c, err := dial(t, f, "b1"); err == nil {
		c.Close()
		t.Fatal("dialled a paused builder")
	}
	if time.Since(start) < time.Second {
		t.Errorf("a paused builder refused at once (%v): it should hang", time.Since(start))
	}
	if err := f.Resume("b1"); err != nil {
		t.Fatal(err)
	}
	c, err = dial(t, f, "b1")
	if err != nil {
		t.Fatalf("dial after Resume: %v", err)
	}
	c.Close()

	if _, err := f.Exec("b1", "echo data > "+BuildDir+"/x"); err != nil {
		t.Fatal(err)
	}
	if err := f.StopHost("b1"); err != nil {
		t.Fatal(err)
	}
	if harness.Listening(f.Address("b1")) {
		t.Fatal("stopped builder still listening")
	}
	if _, err := f.Exec("b1", "true"); err == nil {
		t.Error("Exec on a stopped builder succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.StartHost(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	if c, err := dial(t, f, "b1"); err != nil {
		t.Fatalf("dial after StartHost: %v", err)
	} else {
		c.Close()
	}
	if _, err := f.Exec("b1", "test ! -e "+BuildDir+"/x"); err != nil {
		t.Errorf("tmpfs survived a reboot: %v", err)
	}
	if out, err := f.Service("b1", "is-active", "kojid"); err != nil || out != "active\n" {
		t.Errorf("kojid after reboot: %q, %v", out, err)
	}
}

func TestStartRejectsBadSpecs(t *testing.T) {
	for _, specs := range [][]Spec{
		nil,
		{{Name: ""}},
		{{Name: "a b"}},
		{{Name: "a"}, {Name: "a"}},
		{{Name: "a", Mounts: map[string]int{"relative": 1}}},
		{{Name: "a", Mounts: map[string]int{"/x": 0}}},
	} {
		if f, err := Start(context.Background(), t.TempDir(), specs); err == nil {
			f.Stop()
			t.Errorf("Start(%v) succeeded", specs)
		}
	}
}

// TestExecPreparesCleanupScenes builds what the cleanup tests need: a
// chroot with a bind mount inside a builder, an old mtime, a symlink trap;
// all private to the builder.
func TestExecPreparesCleanupScenes(t *testing.T) {
	f := startFarm(t, []Spec{{Name: "b1"}})
	root := MockDir + "/f40-build-123-456/root"
	out, err := f.Exec("b1", `set -e
mkdir -p `+root+`/proc `+root+`/dev `+BuildDir+`/outside
mount --bind `+BuildDir+`/outside `+root+`/dev
touch -h -d '2020-01-02 03:04:05 UTC' `+MockDir+`/f40-build-123-456
ln -s / `+MockDir+`/trap
stat -c %Y `+MockDir+`/f40-build-123-456
grep -c ' `+root+`/dev ' /proc/mounts`)
	if err != nil {
		t.Fatal(err)
	}
	if out != "1577934245\n1\n" {
		t.Errorf("mtime and mount count = %q", out)
	}
	hostMounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(hostMounts), root) {
		t.Error("the builder's bind mount leaked into the host's mounts")
	}
}

// TestWriteSSHConfig: OpenSSH's own client, given only the config the
// farm writes, logs in to a builder as the farm's user with strict host
// key checking, and the extra options reach it.
func TestWriteSSHConfig(t *testing.T) {
	f := startFarm(t, []Spec{{Name: "b1"}})
	path := filepath.Join(t.TempDir(), "ssh_config")
	if err := f.WriteSSHConfig(path, []string{"b1"}, User, "ControlMaster no", "ControlPath none"); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ssh", "-F", path, "b1", "id", "-un").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != User {
		t.Fatalf("ssh -F %s b1 id -un: %v, %q; want %s", path, err, out, User)
	}
	cfg, err := exec.Command("ssh", "-F", path, "-G", "b1").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stricthostkeychecking true", "batchmode yes", "controlmaster false", "user " + User} {
		if !strings.Contains(string(cfg), "\n"+want+"\n") {
			t.Errorf("ssh -G lacks %q", want)
		}
	}
}
