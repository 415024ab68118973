package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// cliConfig writes the config of a bot that is never started (for the
// command line verbs), with extra keys.
func cliConfig(t *testing.T, nick string, extra map[string]any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	path, err := sb.WriteConfig(ctx, sandbox.BotConfig{Nick: nick, DB: "koji", Channel: "#" + nick, Extra: extra})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCheckConfigWarnsAboutParentEntries: an acl.commands entry for a
// parent command whose mutating subcommand has none is valid (exit 0) but
// draws a warning naming the subcommand it does not grant.
func TestCheckConfigWarnsAboutParentEntries(t *testing.T) {
	path := cliConfig(t, "kbcheckwarn", map[string]any{"acl": map[string]any{
		"commands": map[string]any{"connections": []string{"@identified"}}}})
	cmd := exec.Command(binary, "check-config", "--config", path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("check-config: %v\n%s%s", err, out, stderr.String())
	}
	if !strings.Contains(stderr.String(), "warning: acl.commands[connections]") ||
		!strings.Contains(stderr.String(), `"connections kill"`) {
		t.Errorf("check-config warnings:\n%s\nwant one naming acl.commands[connections] and connections kill", stderr.String())
	}
}

// TestCheckConfigRefusesAccountIsFASUserWithFASJSON: the option that takes
// a services account for the FAS user of the same name is refused with
// FASJSON.
func TestCheckConfigRefusesAccountIsFASUserWithFASJSON(t *testing.T) {
	path := cliConfig(t, "kbcheckfas", map[string]any{"acl": map[string]any{"source": "fasjson", "account_is_fas_user": true}})
	out, err := exec.Command(binary, "check-config", "--config", path).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "acl.account_is_fas_user") {
		t.Errorf("check-config: %v\n%s\nwant exit 1 naming acl.account_is_fas_user", err, out)
	}
}

// TestExecAuditNamesUnixAndSudoUser: kojibot exec --as writes into the
// audit record the Unix user running it, the kernel's login uid of its
// session (set here as pam_loginuid sets it at login, to nobody's) with
// that user's name, and SUDO_USER only as claimed: the caller set it, as
// anyone can.
func TestExecAuditNamesUnixAndSudoUser(t *testing.T) {
	path := cliConfig(t, "kbexecaudit", nil)
	nobody, err := osuser.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", `echo "$0" > /proc/self/loginuid && exec "$@"`, nobody.Uid,
		binary, "exec", "--config", path, "--as", "alice", "--", "hosts", "ppc*")
	cmd.Env = append(os.Environ(), "SUDO_USER=nirik")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("exec: %v\n%s", err, out)
	}
	me, err := osuser.Current()
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(filepath.Join(filepath.Dir(path), "kojibot.log"))
	if err != nil {
		t.Fatal(err)
	}
	var decision string
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, `"msg":"decision"`) && strings.Contains(l, `"command":"hosts"`) {
			decision = l
		}
	}
	for _, want := range []string{`"as_fas_user":"alice"`, `"unix_user":"` + me.Username + `"`,
		`"login_uid":"` + nobody.Uid + `"`, `"login_user":"nobody"`, `"sudo_user_claimed":"nirik"`} {
		if !strings.Contains(decision, want) {
			t.Errorf("audit record lacks %s: %s", want, decision)
		}
	}
	if strings.Contains(decision, `"sudo_user":`) {
		t.Errorf("audit record takes SUDO_USER for the sudo user: %s", decision)
	}
}

// cliNobody returns the uid and gid of the unprivileged user nobody, and
// a directory it can reach.
func cliNobody(t *testing.T) (uid, gid int, base string) {
	t.Helper()
	u, err := osuser.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	base, err = os.MkdirTemp("", "kojibot-e2e-owner-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	return uid, gid, base
}

// TestCheckConfigStateDir: check-config refuses a state.dir that others
// can write (exit 1, naming state.dir), and accepts one its owner alone
// can write.
func TestCheckConfigStateDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o775); err != nil {
		t.Fatal(err)
	}
	path := cliConfig(t, "kbcheckstate", map[string]any{"state": map[string]any{"dir": dir}})
	out, err := exec.Command(binary, "check-config", "--config", path).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "state.dir: "+dir+" is group- or world-writable") {
		t.Errorf("check-config, group-writable state.dir: %v\n%s\nwant exit 1 naming state.dir", err, out)
	}
	// The bot's user's (nobody here), 0700: nothing to say.
	uid, gid, _ := cliNobody(t)
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(binary, "check-config", "--config", path).CombinedOutput(); err != nil || strings.Contains(string(out), "state.dir") {
		t.Errorf("check-config, private state.dir: %v\n%s", err, out)
	}
}

// TestExecAsRootBecomesStateOwner: exec started as root (to read the
// secrets) switches to the owner of state.dir before it opens the store:
// the database, its WAL files and the lock files are that user's, so a
// kojibot run as that user can use them.
func TestExecAsRootBecomesStateOwner(t *testing.T) {
	uid, gid, base := cliNobody(t)
	dir := filepath.Join(base, "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	path := cliConfig(t, "kbexecowner", map[string]any{"state": map[string]any{"dir": dir}})
	for i := 0; i < 2; i++ { // the second finds the store and the records of the first
		if out, err := exec.Command(binary, "exec", "--config", path, "--as", "alice", "--", "jobs", "--all").CombinedOutput(); err != nil {
			t.Fatalf("exec as root: %v\n%s", err, out)
		}
	}
	var seen []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		seen = append(seen, strings.TrimPrefix(p, dir))
		if int(st.Uid) != uid {
			t.Errorf("%s belongs to uid %d, not to the owner of state.dir (uid %d)", p, st.Uid, uid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(seen, "/kojibot.db") || !slices.Contains(seen, "/procs") {
		t.Errorf("the store was not made: %q", seen)
	}
	// The audit still names who started exec, not the user it became.
	log, err := os.ReadFile(filepath.Join(filepath.Dir(path), "kojibot.log"))
	if err != nil {
		t.Fatal(err)
	}
	var decision string
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, `"msg":"decision"`) && strings.Contains(l, `"command":"jobs"`) {
			decision = l
		}
	}
	if !strings.Contains(decision, `"unix_user":"root"`) {
		t.Errorf("audit record does not name root as the Unix user: %s", decision)
	}
}
