package commands

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/config"
)

// localFleet runs every command on this machine, standing in for the xen
// host.
func localRun(ctx context.Context, _ string, argv []string) (fleet.Result, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := fleet.Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
	case err != nil:
		return res, err
	}
	return res, nil
}

// memoryDispatcher is a dispatcher whose xen host is this machine, with
// guest xb1's config in a temporary directory; the clock stands still.
func memoryDispatcher(t *testing.T) (*Dispatcher, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Hosts = map[string]config.Host{"xb1": {Address: "xb1:22"}, "xen1": {Address: "xen1:22"}}
	cfg.Xen.Guests = map[string]string{"xb1": "xen1"}
	cfg.Xen.ConfigDir = dir
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	d := New(Deps{Config: cfg, DB: &fakeDB{}, Fleet: &fakeFleet{run: localRun},
		ACL: fakeACL{members: map[string]bool{"alice": true}}, Now: func() time.Time { return now }})
	t.Cleanup(d.Close)
	return d, filepath.Join(dir, "xb1")
}

const xb1Config = "name = \"xb1\"\nmemory = 4096\nvcpus = 4\n"

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func backups(t *testing.T, file string) []string {
	t.Helper()
	m, err := filepath.Glob(file + ".kojibot-*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMemorySymlinkRefused(t *testing.T) {
	d, file := memoryDispatcher(t)
	real := filepath.Join(filepath.Dir(file), "elsewhere")
	if err := os.WriteFile(real, []byte(xb1Config), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, file); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"memory xb1", "memory xb1 6G"} {
		out, plans := runConfirmed(d, text)
		if !strings.HasPrefix(out, "error: ") || !strings.Contains(out, "symbolic link") || len(plans) > 0 {
			t.Errorf("%s: %q (plans %q)", text, out, plans)
		}
	}
	if got := readFile(t, real); got != xb1Config {
		t.Errorf("the link's target changed:\n%s", got)
	}
	if fi, err := os.Lstat(file); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi, err)
	}
	if b := backups(t, file); len(b) > 0 {
		t.Errorf("backups made: %q", b)
	}
}

// TestMemoryChangedBeforeConfirm: the file's memory changes between the
// plan and the confirmation: refused, nothing written.
func TestMemoryChangedBeforeConfirm(t *testing.T) {
	d, file := memoryDispatcher(t)
	if err := os.WriteFile(file, []byte(xb1Config), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(xb1Config, "memory = 4096", "memory = 5000", 1)
	r := &recorder{}
	d.Handle(context.Background(), Request{Account: "alice", Nick: "alice", Place: "#fedora-admin", Text: "memory xb1 6G",
		AutoConfirm: func(plan reply.Message) bool {
			if !strings.Contains(plan.String(), "set memory = 6144 (was 4096)") {
				t.Errorf("plan %q", plan)
			}
			if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
				t.Error(err)
			}
			return true
		}}, r)
	out := r.all()
	if !strings.HasPrefix(out, "error: ") || !strings.Contains(out, "is now 5000, not 4096 as the plan showed") {
		t.Errorf("reply %q", out)
	}
	if got := readFile(t, file); got != changed {
		t.Errorf("file written:\n%s", got)
	}
	if b := backups(t, file); len(b) > 0 {
		t.Errorf("backups made: %q", b)
	}
}

// TestMemoryBackupsNeverShared: two edits at the same instant keep two
// backups, the original and the first edit's.
func TestMemoryBackupsNeverShared(t *testing.T) {
	d, file := memoryDispatcher(t)
	if err := os.WriteFile(file, []byte(xb1Config), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, size := range []string{"6G", "8G"} {
		if out, _ := runConfirmed(d, "memory xb1 "+size); !strings.Contains(out, "(backup "+file+".kojibot-20261126T120000.000000000Z-") {
			t.Fatalf("memory xb1 %s: %q", size, out)
		}
	}
	if got := readFile(t, file); !strings.Contains(got, "memory = 8192\n") {
		t.Errorf("file after two edits:\n%s", got)
	}
	var contents []string
	for _, b := range backups(t, file) {
		contents = append(contents, readFile(t, b))
	}
	slices.Sort(contents)
	want := []string{xb1Config, strings.Replace(xb1Config, "4096", "6144", 1)}
	slices.Sort(want)
	if !slices.Equal(contents, want) {
		t.Errorf("backups hold %q, want the original and the first edit", contents)
	}
}

// TestSetMemoryScript runs the edit script itself: it never overwrites an
// existing backup, never follows a link, and leaves no temporary file.
func TestSetMemoryScript(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "g")
	script := func(want, bak string) (fleet.Result, error) {
		return localRun(context.Background(), "", []string{"sh", "-c", setMemoryScript, "kojibot-memory", file, "6144", want, bak})
	}
	if err := os.WriteFile(file, []byte(xb1Config), 0o640); err != nil {
		t.Fatal(err)
	}
	taken := file + ".kojibot-taken"
	if err := os.WriteFile(taken, []byte("an older backup\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if res, err := script("4096", taken); err != nil || res.ExitCode == 0 {
		t.Errorf("existing backup name: %+v %v, want a failure", res, err)
	}
	if readFile(t, taken) != "an older backup\n" || readFile(t, file) != xb1Config {
		t.Error("an existing backup or the config was overwritten")
	}
	if res, err := script("2048", file+".kojibot-new"); err != nil || res.ExitCode != exitChanged || strings.TrimSpace(res.Stdout) != "4096" {
		t.Errorf("changed value: %+v %v", res, err)
	}
	res, err := script("4096", file+".kojibot-new")
	if err != nil || res.ExitCode != 0 || strings.TrimSpace(res.Stdout) != file+".kojibot-new" {
		t.Fatalf("edit: %+v %v", res, err)
	}
	if readFile(t, file+".kojibot-new") != xb1Config || !strings.Contains(readFile(t, file), "memory = 6144\n") {
		t.Error("backup or edit wrong")
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after the edit: %v %v", fi, err)
	}
	if tmp, _ := filepath.Glob(file + ".kojibot-tmp.*"); len(tmp) > 0 {
		t.Errorf("temporary files left: %q", tmp)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	res, _ = localRun(context.Background(), "", []string{"sh", "-c", setMemoryScript, "kojibot-memory", link, "8192", "6144", link + ".kojibot-x"})
	if res.ExitCode != exitSymlink || strings.Contains(readFile(t, file), "8192") {
		t.Errorf("symlink: %+v", res)
	}
}

func TestBackupName(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 5, time.UTC)
	a, err := backupName("/etc/xen/g", now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := backupName("/etc/xen/g", now)
	if a == b || !strings.HasPrefix(a, "/etc/xen/g.kojibot-20261126T120000.000000005Z-") {
		t.Errorf("backup names %q and %q", a, b)
	}
}
