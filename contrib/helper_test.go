package contrib_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/contrib"
	"github.com/fedora-infra/kojibot/tests/harness/builders"
	"golang.org/x/crypto/ssh"
)

// helperFarm starts one machine whose /etc/kojibot-helper.conf allows the
// service kojid, the farm's two cleanup dirs and xen configs in /srv/xen,
// with Debian's sudo and the sudoers rule of contrib, and a fleet that logs
// in to it as the unprivileged user.
func helperFarm(t *testing.T) (*builders.Farm, *fleet.Fleet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	farm, err := builders.Start(ctx, t.TempDir(), []builders.Spec{{
		Name: "m1", Services: []string{"kojid", "other"},
		Mounts:     map[string]int{"/srv/xen": 1, "/mnt/koji": 2},
		HelperConf: []string{"xen_config_dir /srv/xen", "guest g1", "guest evil"},
	}})
	if err != nil {
		t.Fatalf("farm: %v", err)
	}
	t.Cleanup(farm.Stop)
	// "other" runs but is not the helper's to touch.
	if out, err := farm.Exec("m1", "sed -i '/^service other$/d' /etc/kojibot-helper.conf"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	f, err := fleet.New(farm.SSH(), farm.Hosts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return farm, f
}

// helper runs the helper on m1 through sudo -n, as the bot does.
func helper(t *testing.T, f *fleet.Fleet, args ...string) fleet.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := f.Run(ctx, "m1", f.Helper(args[0], args[1:]...), fleet.RunOptions{})
	if err != nil {
		t.Fatalf("helper %v: %v", args, err)
	}
	return res
}

// root runs script as root inside m1 (not over SSH) and returns stdout.
func root(t *testing.T, farm *builders.Farm, script string) string {
	t.Helper()
	out, err := farm.Exec("m1", script)
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	return out
}

func TestHelperRefusesWhatItsConfigDoesNotAllow(t *testing.T) {
	farm, f := helperFarm(t)
	root(t, farm, `set -e
mkdir -p /var/lib/mock/keep/sub /var/lib/mock/chroot/proc /tmp/outside
echo precious > /mnt/koji/precious
ln -s /etc /var/lib/mock/etc-link
ln -s /mnt/koji /var/lib/mock/koji-link
printf 'memory = 4096\n' > /srv/xen/g1
printf 'memory = 4096\n' > /srv/xen/g2
ln -s /etc/passwd /srv/xen/evil`)
	before := root(t, farm, "ls -la /etc /mnt/koji /var/lib/mock | md5sum; cat /etc/passwd | md5sum")

	refused := [][]string{
		{"service", "stop", "other"},                // running, not listed for this host
		{"service", "stop", "sshd"},                 // not listed
		{"service", "mask", "kojid"},                // not an allowed action
		{"service", "stop", "kojid;id"},             // not a name
		{"service", "stop", "-kojid"},               // an option
		{"service", "stop"},                         // too few
		{"du", "/etc"},                              // not a cleanup dir
		{"du", "/var/lib/mock/keep"},                // below one, not one
		{"du", "/var/lib/mock/etc-link"},            // resolves to /etc
		{"umount", "/mnt/koji"},                     // not below a cleanup dir
		{"umount", "/var/lib/mock"},                 // the dir itself
		{"umount", "/var/lib/mock/../../../etc"},    // .. out of it
		{"umount", "/var/lib/mock/koji-link"},       // a link out of it
		{"umount", "relative/path"},                 // not absolute
		{"rm", "/var/lib/mock"},                     // the dir itself
		{"rm", "/var/lib/mock/"},                    // the dir itself, spelt another way
		{"rm", "/var/lib/mock/.."},                  // its parent
		{"rm", "/var/lib/mock/keep/sub"},            // not a direct child
		{"rm", "/var/lib/mock/etc-link/passwd"},     // through a link to /etc
		{"rm", "/var/lib/mock/koji-link/precious"},  // through a link to a shared mount
		{"rm", "/var/lib/mock/../../../etc/passwd"}, // .. out of it
		{"rm", "/etc"},                              // plainly outside
		{"rm", "/var/lib/mock/missing"},             // nothing to remove
		{"rm", "/var/lib/mock/a", "/etc"},           // one path at a time
		{"xen-memory", "../etc/passwd", "1024", "4096"},
		{"xen-memory", "g1", "1024;reboot", "4096"},
		{"xen-memory", "g1", "1024"},
		{"xl-reboot", "g1;id"},
		{"xl-reboot", "g2"},                  // not a listed guest
		{"xen-memory", "g2", "1024", "4096"}, // not a listed guest
		{"reboot"},                           // no "reboot yes"
		{"xl-reboot", "-h"},
		{"reboot", "now"},
		{"sh", "-c", "id"},
	}
	for _, args := range refused {
		res := helper(t, f, args...)
		if res.ExitCode != 64 || !strings.Contains(res.Stderr, "kojibot-helper: refused:") {
			t.Errorf("helper %q: exit %d, stderr %q; want a refusal (64)", args, res.ExitCode, res.Stderr)
		}
	}
	// A symbolic link as the guest config is refused (exit 4), not followed.
	if res := helper(t, f, "xen-memory", "evil", "1024", "4096"); res.ExitCode != 4 {
		t.Errorf("xen-memory through a link: exit %d, %q", res.ExitCode, res.Stderr)
	}
	if after := root(t, farm, "ls -la /etc /mnt/koji /var/lib/mock | md5sum; cat /etc/passwd | md5sum"); after != before {
		t.Fatalf("a refused step changed something:\nbefore %s\nafter  %s", before, after)
	}
	if got := root(t, farm, "pgrep -fc '^fakesvc:other' || true"); strings.TrimSpace(got) != "1" {
		t.Fatalf("service other was stopped: %q", got)
	}
}

func TestHelperDoesWhatItsConfigAllows(t *testing.T) {
	farm, f := helperFarm(t)
	root(t, farm, `set -e
mkdir -p /var/lib/mock/old/root/proc /var/lib/mock/gone
head -c 100000 /dev/zero > /var/lib/mock/old/file
mount -t tmpfs -o size=1m tmpfs /var/lib/mock/old/root/proc
echo keep > /mnt/koji/keep
ln -s /mnt/koji /var/lib/mock/link-to-shared
printf 'name = "g1"\nmemory = 4096\n' > /srv/xen/g1
chmod 0640 /srv/xen/g1`)

	if res := helper(t, f, "service", "stop", "kojid"); res.ExitCode != 0 {
		t.Fatalf("stop kojid: %d %q", res.ExitCode, res.Stderr)
	}
	if res := helper(t, f, "service", "is-active", "kojid"); res.ExitCode != 3 || strings.TrimSpace(res.Stdout) != "inactive" {
		t.Fatalf("is-active after stop: %d %q", res.ExitCode, res.Stdout)
	}
	if res := helper(t, f, "service", "start", "kojid"); res.ExitCode != 0 {
		t.Fatalf("start kojid: %d %q", res.ExitCode, res.Stderr)
	}

	res := helper(t, f, "du", "/var/lib/mock")
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "/var/lib/mock/old\x00") {
		t.Fatalf("du: %d %q %q", res.ExitCode, res.Stdout, res.Stderr)
	}

	if res := helper(t, f, "umount", "/var/lib/mock/old/root/proc"); res.ExitCode != 0 {
		t.Fatalf("umount: %d %q", res.ExitCode, res.Stderr)
	}
	if m := root(t, farm, "grep -c ' /var/lib/mock/old/root/proc ' /proc/mounts || true"); strings.TrimSpace(m) != "0" {
		t.Fatalf("still mounted: %q", m)
	}
	for _, p := range []string{"/var/lib/mock/old", "/var/lib/mock/link-to-shared", "/var/lib/mock/gone"} {
		if res := helper(t, f, "rm", p); res.ExitCode != 0 {
			t.Fatalf("rm %s: %d %q", p, res.ExitCode, res.Stderr)
		}
	}
	if left := root(t, farm, "ls -A /var/lib/mock; cat /mnt/koji/keep"); left != "keep\n" {
		t.Fatalf("after rm: %q (want an empty /var/lib/mock and the link's target intact)", left)
	}

	res = helper(t, f, "xen-memory", "g1", "2048", "4096")
	if res.ExitCode != 0 {
		t.Fatalf("xen-memory: %d %q", res.ExitCode, res.Stderr)
	}
	bak := strings.TrimSpace(res.Stdout)
	if !strings.HasPrefix(bak, "/srv/xen/g1.kojibot-") {
		t.Fatalf("backup %q", bak)
	}
	got := root(t, farm, "cat /srv/xen/g1; stat -c %a /srv/xen/g1; cat "+bak+"; stat -c %a "+bak)
	if got != "name = \"g1\"\nmemory = 2048\n640\nname = \"g1\"\nmemory = 4096\n640\n" {
		t.Fatalf("config and backup:\n%s", got)
	}
	// The value moved since the plan: nothing changes, the current value is told.
	res = helper(t, f, "xen-memory", "g1", "1024", "4096")
	if res.ExitCode != 6 || strings.TrimSpace(res.Stdout) != "2048" {
		t.Fatalf("stale xen-memory: %d %q %q", res.ExitCode, res.Stdout, res.Stderr)
	}
}

// The helper trusts only a configuration that root alone can change.
func TestHelperRefusesAWritableConfig(t *testing.T) {
	farm, f := helperFarm(t)
	for _, script := range []string{
		"chmod 0664 /etc/kojibot-helper.conf",
		"chmod 0646 /etc/kojibot-helper.conf",
		"chmod 0644 /etc/kojibot-helper.conf; chown " + builders.User + " /etc/kojibot-helper.conf",
		"rm /etc/kojibot-helper.conf",
	} {
		root(t, farm, "touch /etc/kojibot-helper.conf; chown root /etc/kojibot-helper.conf; "+script)
		if res := helper(t, f, "check"); res.ExitCode != 64 {
			t.Errorf("after %q: check exit %d, %q; want a refusal", script, res.ExitCode, res.Stderr)
		}
	}
}

// The sudoers rule is valid for Debian's visudo and allows the helper
// only.
func TestSudoersRule(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kojibot")
	if err := os.WriteFile(file, contrib.Sudoers, 0o440); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("visudo", "-cf", file).CombinedOutput(); err != nil {
		t.Fatalf("visudo -cf: %v: %s", err, out)
	}
	var rules []string
	for _, l := range strings.Split(string(contrib.Sudoers), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "Defaults") {
			rules = append(rules, l)
		}
	}
	if len(rules) != 1 || rules[0] != "kojibot ALL=(root) NOPASSWD: "+contrib.HelperPath {
		t.Fatalf("sudoers rules %q; want only the helper, with no argument pattern", rules)
	}
}

// The machine takes no root login; the bot's user may run the helper
// through sudo -n, and nothing else as root, with Debian's real sudo. The
// test machine's own /etc is untouched.
func TestNoRootLoginSudoOnlyTheHelper(t *testing.T) {
	farm, _ := helperFarm(t)
	if c, err := dialAs(t, farm, "m1", "root"); err == nil {
		c.Close()
		t.Fatal("root logged in over SSH")
	}
	c, err := dialAs(t, farm, "m1", builders.User)
	if err != nil {
		t.Fatalf("dial as %s: %v", builders.User, err)
	}
	defer c.Close()
	if out, _ := output(t, c, "id -un"); strings.TrimSpace(out) != builders.User {
		t.Fatalf("logged in as %q, want %s", out, builders.User)
	}
	for _, line := range []string{"sudo -n id", "sudo -n rm -rf /etc", "sudo -n /bin/sh -c id", "sudo -n -u root true"} {
		out, code := output(t, c, line)
		if code == 0 || !strings.Contains(out, "password is required") {
			t.Errorf("%s: exit %d, %q; want sudo's refusal", line, code, out)
		}
	}
	if out, err := farm.Exec("m1", "ls /etc/passwd /etc/hostname"); err != nil || strings.Count(out, "\n") != 2 {
		t.Fatalf("/etc inside m1 after the refusals: %q, %v", out, err)
	}
	out, code := output(t, c, "sudo -n "+contrib.HelperPath+" check")
	if code != 0 || !strings.Contains(out, "services: kojid") || !strings.Contains(out, builders.MockDir) {
		t.Fatalf("helper check: exit %d, %q", code, out)
	}
	out, code = output(t, c, "sudo -n "+contrib.HelperPath+" rm /etc/passwd")
	if code != 64 || !strings.Contains(out, "refused") {
		t.Fatalf("helper rm /etc/passwd: exit %d, %q; want a refusal (64)", code, out)
	}
	host, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(host), builders.User+":x:") {
		t.Fatalf("the test machine's /etc/passwd has %s: the farm must not touch the host", builders.User)
	}
}

// dialAs logs in to a machine of farm as user with the farm's key,
// checking its host key.
func dialAs(t *testing.T, farm *builders.Farm, name, user string) (*ssh.Client, error) {
	t.Helper()
	pem, err := os.ReadFile(farm.KeyFile())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", farm.Address(name), 2*time.Second)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
	conn, chans, reqs, err := ssh.NewClientConn(nc, farm.Address(name), &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(farm.HostKey(name)),
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return ssh.NewClient(conn, chans, reqs), nil
}

// output runs line in a new session of c and returns its combined output
// and exit status.
func output(t *testing.T, c *ssh.Client, line string) (string, int) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(line)
	if err == nil {
		return string(out), 0
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitStatus()
	}
	t.Fatalf("%s: %v", line, err)
	return "", -1
}

// A site that keeps its own commands (ssh.helper "") still has
// ssh.service_command run as a template, here a sudo rule of its own that
// happens to be the helper's service action.
func TestServiceCommandWithoutHelper(t *testing.T) {
	farm, _ := helperFarm(t)
	cfg := farm.SSH()
	cfg.Helper = ""
	cfg.ServiceCommand = "sudo -n " + contrib.HelperPath + " service {action} {service}"
	f, err := fleet.New(cfg, farm.Hosts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if res, err := f.Service(ctx, "m1", "stop", "kojid"); err != nil || res.ExitCode != 0 {
		t.Fatalf("stop through service_command: %+v %v", res, err)
	}
	if res, err := f.Service(ctx, "m1", "is-active", "kojid"); err != nil || res.ExitCode != 3 {
		t.Fatalf("is-active after stop: %+v %v", res, err)
	}
	if got := root(t, farm, "pgrep -fc '^fakesvc:kojid' || true"); strings.TrimSpace(got) != "0" {
		t.Fatalf("kojid still runs: %q", got)
	}
}

// TestHelperDuOnTheCheckedPath: du runs on the path the helper resolved
// and checked, never on its argument again, so a link swapped in between
// cannot make root list another directory. A link to a cleanup dir is
// sized as the dir itself: every path du prints is the real one.
func TestHelperDuOnTheCheckedPath(t *testing.T) {
	farm, f := helperFarm(t)
	root(t, farm, `set -e
mkdir -p /var/lib/mock/entry
echo data > /var/lib/mock/entry/file
rm -f /tmp/mock-link
ln -s /var/lib/mock /tmp/mock-link`)
	res := helper(t, f, "du", "/tmp/mock-link")
	if res.ExitCode != 0 {
		t.Fatalf("du through a link to the cleanup dir: exit %d: %s", res.ExitCode, res.Stderr)
	}
	recs := strings.Split(strings.TrimSuffix(res.Stdout, "\x00"), "\x00")
	if len(recs) < 2 {
		t.Fatalf("du printed %q", res.Stdout)
	}
	for _, rec := range recs {
		_, p, _ := strings.Cut(rec, "\t")
		if !strings.HasPrefix(p, "/var/lib/mock") {
			t.Errorf("du printed %q: it ran on the argument, not on the checked path", p)
		}
	}
}

// TestHelperRmRefusesMountPoints: rm of an entry that is a mount point, or
// has one below it, is refused (rm --one-file-system would empty the
// mounted filesystem); the mounted files are still there.
func TestHelperRmRefusesMountPoints(t *testing.T) {
	farm, f := helperFarm(t)
	root(t, farm, `set -e
mkdir -p /var/lib/mock/mounted /var/lib/mock/deep/sub /var/lib/mock/plain
mount -t tmpfs -o size=1m none /var/lib/mock/mounted
echo precious > /var/lib/mock/mounted/file
mount -t tmpfs -o size=1m none /var/lib/mock/deep/sub
echo precious > /var/lib/mock/deep/sub/file`)
	t.Cleanup(func() {
		_, _ = farm.Exec("m1", "umount /var/lib/mock/mounted /var/lib/mock/deep/sub 2>/dev/null; rm -rf /var/lib/mock/mounted /var/lib/mock/deep /var/lib/mock/plain")
	})
	for _, p := range []string{"/var/lib/mock/mounted", "/var/lib/mock/deep"} {
		res := helper(t, f, "rm", p)
		if res.ExitCode != 64 || !strings.Contains(res.Stderr, "mount point") {
			t.Errorf("rm %s: exit %d, stderr %q; want a refusal naming the mount point", p, res.ExitCode, res.Stderr)
		}
	}
	if out := root(t, farm, "cat /var/lib/mock/mounted/file /var/lib/mock/deep/sub/file"); strings.Count(out, "precious") != 2 {
		t.Errorf("the mounted files are gone: %q", out)
	}
	if res := helper(t, f, "rm", "/var/lib/mock/plain"); res.ExitCode != 0 {
		t.Errorf("rm of a plain entry: exit %d: %s", res.ExitCode, res.Stderr)
	}
}

// TestHelperServiceStatusRefused: the helper runs no `systemctl status`
// (whose pager is a root shell away on a terminal); the actions the bot
// uses still work.
func TestHelperServiceStatusRefused(t *testing.T) {
	_, f := helperFarm(t)
	if res := helper(t, f, "service", "status", "kojid"); res.ExitCode != 64 {
		t.Errorf("service status: exit %d, stderr %q; want a refusal", res.ExitCode, res.Stderr)
	}
	if res := helper(t, f, "service", "is-active", "kojid"); res.ExitCode != 0 {
		t.Errorf("service is-active: exit %d: %s", res.ExitCode, res.Stderr)
	}
}

// TestHelperTagBuildOnlyOverrideTags: the helper's tag-build tags only
// into a tag an override_tag pattern of its configuration allows, and
// refuses anything that is not a tag or build name; a machine without an
// override_tag tags nothing.
func TestHelperTagBuildOnlyOverrideTags(t *testing.T) {
	farm, f := helperFarm(t)
	for _, args := range [][]string{
		{"tag-build", "dist-f41-override", "foo-1.0-1"}, // no override_tag yet
	} {
		if res := helper(t, f, args...); res.ExitCode != 64 || !strings.Contains(res.Stderr, "no override_tag") {
			t.Errorf("%q: exit %d, %q; want refused: no override_tag", args, res.ExitCode, res.Stderr)
		}
	}
	root(t, farm, `set -e
printf '#!/bin/sh\necho "koji $*"\necho "Created task: 42"\n' > /mnt/koji/fake-koji
chmod 0755 /mnt/koji/fake-koji
printf 'override_tag dist-*-override\nkoji /mnt/koji/fake-koji\n' >> /etc/kojibot-helper.conf`)
	refused := [][]string{
		{"tag-build", "dist-f41-updates", "foo-1.0-1"},       // not an override tag
		{"tag-build", "dist-f41-override"},                   // no build
		{"tag-build", "dist-f41-override", "foo;id"},         // not a build name
		{"tag-build", "dist-f41-override", "--help"},         // an option
		{"tag-build", "--eval=x-override", "foo-1.0-1"},      // an option for a tag
		{"tag-build", "dist-f41-override/../x", "foo-1.0-1"}, // not a tag name
	}
	for _, args := range refused {
		if res := helper(t, f, args...); res.ExitCode != 64 || !strings.Contains(res.Stderr, "refused:") {
			t.Errorf("%q: exit %d, %q; want a refusal", args, res.ExitCode, res.Stderr)
		}
	}
	res := helper(t, f, "tag-build", "dist-f41-override", "foo-1.0-1", "bar-2.0-1.fc41")
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "koji tag-build --wait dist-f41-override foo-1.0-1 bar-2.0-1.fc41") {
		t.Errorf("tag-build: exit %d, stdout %q, stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
}
