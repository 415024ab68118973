package config

import (
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// stateDirEnv makes the test binary run CheckStateDir on its value and
// print what it found: the check as another user sees it.
const stateDirEnv = "KOJIBOT_CONFIG_CHECK_STATE_DIR"

// TestMain runs the package's tests, or, when stateDirEnv is set, only
// that check.
func TestMain(m *testing.M) {
	if dir := os.Getenv(stateDirEnv); dir != "" {
		c := Default()
		c.State.Dir = dir
		errs, warns := c.CheckStateDir()
		json.NewEncoder(os.Stdout).Encode(stateDirResult{Errs: stateDirTexts(errs), Warns: stateDirTexts(warns)})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type stateDirResult struct{ Errs, Warns []string }

func stateDirTexts(es []*KeyError) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Error())
	}
	return out
}

// checkAs runs CheckStateDir on dir as uid (in a process of that user),
// or in this process when uid is -1.
func checkAs(t *testing.T, binary string, uid, gid int, dir string) stateDirResult {
	t.Helper()
	if uid < 0 {
		c := Default()
		c.State.Dir = dir
		errs, warns := c.CheckStateDir()
		return stateDirResult{Errs: stateDirTexts(errs), Warns: stateDirTexts(warns)}
	}
	cmd := exec.Command(binary, "-test.run=^$")
	cmd.Env = []string{stateDirEnv + "=" + dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.Output()
	var r stateDirResult
	if jerr := json.Unmarshal(out, &r); err != nil || jerr != nil {
		t.Fatalf("check as uid %d: %v %v\n%s", uid, err, jerr, out)
	}
	return r
}

// check-config checks state.dir: that it exists or can be created, that
// the bot's user can write it, and that nobody else can; as root (to read
// the secrets) the bot's user is the directory's owner.
func TestCheckStateDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test switches users: run it as root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	base, err := os.MkdirTemp("", "kojibot-statedir-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	binary := filepath.Join(base, "config.test")
	if err := os.WriteFile(binary, self, 0o755); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, mode os.FileMode, owner int) string {
		p := filepath.Join(base, name)
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		if err := os.Chown(p, owner, owner); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const asRoot = -1
	group := mk("group", 0o770, uid)
	world := mk("world", 0o777, uid)
	rootOwned := mk("root", 0o700, 0)
	readOnly := mk("readonly", 0o500, uid)
	nobodys := mk("nobodys", 0o700, uid)
	link := filepath.Join(base, "link")
	if err := os.Symlink(nobodys, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		as        int
		dir       string
		err, warn string // "" for none
	}{
		{"group-writable", asRoot, group, "is group- or world-writable (mode 0770)", ""},
		{"world-writable", asRoot, world, "is group- or world-writable (mode 0777)", ""},
		{"a link", asRoot, link, "is a symbolic link", ""},
		{"a file", asRoot, file, "is not a directory", ""},
		{"owner cannot write", asRoot, readOnly, "is not writable by its owner nobody", ""},
		{"root's, as root", asRoot, rootOwned, "", "belongs to root"},
		{"the bot's, as root", asRoot, nobodys, "", ""},
		{"missing, as root", asRoot, filepath.Join(base, "a", "b"), "", "does not exist: a kojibot started as root would create it as root's"},
		{"missing under a file", asRoot, filepath.Join(file, "state"), "cannot be created", ""},
		{"its own", uid, nobodys, "", ""},
		{"someone else's", uid, rootOwned, "belongs to root (uid 0), not to nobody", ""},
		{"missing, cannot create", uid, filepath.Join(rootOwned+"-not-there", "state"), "cannot be created by nobody", ""},
		{"missing, can create", uid, filepath.Join(nobodys, "state"), "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := checkAs(t, binary, c.as, gid, c.dir)
			for _, x := range []struct {
				got  []string
				want string
			}{{r.Errs, c.err}, {r.Warns, c.warn}} {
				switch {
				case x.want == "" && len(x.got) != 0:
					t.Errorf("want none, got %q", x.got)
				case x.want != "" && (len(x.got) != 1 || !strings.Contains(x.got[0], x.want) || !strings.HasPrefix(x.got[0], "state.dir: ")):
					t.Errorf("got %q, want one naming state.dir with %q", x.got, x.want)
				}
			}
		})
	}
}
