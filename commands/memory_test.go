package commands

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/config"
)

// fakeMount is a mount of the fake builder: as /proc/mounts names it
// (escaped), and the path umount reaches it by.
type fakeMount struct{ raw, reach string }

// fakeBuilder answers find, du, /proc/mounts, umount and rm for entries
// under /var/lib/mock, all of them old.
type fakeBuilder struct {
	mu      sync.Mutex
	names   []string
	mounts  []fakeMount
	busy    map[string]bool
	removed []string
	through []string // entries deleted while a mount was reachable inside
	// cut, when set, alters a command's result (the output cap).
	cut func(argv []string, res *fleet.Result)
}

const fakeMock = "/var/lib/mock"

func (b *fakeBuilder) run(_ context.Context, _ string, argv []string) (fleet.Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var res fleet.Result
	switch {
	case argv[0] == "find":
		for _, n := range b.names {
			res.Stdout += "1000.5\td\t" + n + "\x00"
		}
	case argv[0] == "du":
		for _, n := range b.names {
			res.Stdout += "4096\t" + fakeMock + "/" + n + "\x00"
		}
		res.Stdout += fmt.Sprintf("%d\t%s\x00", 4096*(len(b.names)+1), fakeMock)
	case argv[0] == "cat" && argv[1] == "/proc/mounts":
		res.Stdout = "/dev/root / ext4 rw,relatime 0 0\n"
		for _, m := range b.mounts {
			res.Stdout += "none " + m.raw + " tmpfs rw,relatime 0 0\n"
		}
	case argv[0] == "umount":
		target := argv[len(argv)-1]
		i := slices.IndexFunc(b.mounts, func(m fakeMount) bool { return m.reach == target })
		switch {
		case b.busy[target]:
			res.ExitCode, res.Stderr = 32, "umount: "+target+": target is busy.\n"
		case i < 0:
			res.ExitCode, res.Stderr = 32, "umount: "+target+": no mount point specified.\n"
		default:
			b.mounts = slices.Delete(b.mounts, i, i+1)
		}
	case argv[0] == "rm":
		p := argv[len(argv)-1]
		for _, m := range b.mounts {
			if under(m.reach, p) {
				b.through = append(b.through, p)
			}
		}
		b.removed = append(b.removed, p)
	default:
		return res, fmt.Errorf("unexpected command %q", argv)
	}
	if b.cut != nil {
		b.cut(argv, &res)
	}
	return res, nil
}

// cleanupDispatcher is a dispatcher over one fake builder per name in
// builders (ppc3 maps to one Koji host, x86-01 to two, nokoji to none).
func cleanupDispatcher(t *testing.T, b *fakeBuilder) (*Dispatcher, *fakeFleet) {
	t.Helper()
	cfg := config.Default()
	cfg.Hosts = map[string]config.Host{}
	for _, h := range []string{"ppc3", "x86-01", "nokoji"} {
		cfg.Hosts[h] = config.Host{Address: h + ":22", Services: []string{"kojid"}}
	}
	cfg.Cleanup.Dirs = []string{fakeMock}
	cfg.Disk.SharedFrom, cfg.Disk.SharedMounts = "", nil
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f := &fakeFleet{run: b.run}
	d := New(Deps{Config: cfg, DB: &fakeDB{hosts: testHosts(now)}, Fleet: f,
		ACL: fakeACL{members: map[string]bool{"alice": true}}, Now: func() time.Time { return now }})
	t.Cleanup(d.Close)
	return d, f
}

// runConfirmed runs text as alice, confirming whatever plan it asks, and
// waits for its job to end; it returns the replies and the plans asked.
func runConfirmed(d *Dispatcher, text string) (string, []string) {
	r := &recorder{}
	var plans []string
	d.Handle(context.Background(), Request{Account: "alice", Nick: "alice", Place: "#fedora-admin", Text: text,
		AutoConfirm: func(plan reply.Message) bool { plans = append(plans, plan.String()); return true }}, r)
	d.Wait()
	return r.all(), plans
}

func TestNulRecords(t *testing.T) {
	if recs, err := nulRecords("a\x00b c\x00"); err != nil || !slices.Equal(recs, []string{"a", "b c"}) {
		t.Errorf("nulRecords = %q, %v", recs, err)
	}
	for _, cut := range []string{"a\x00f40-build-10", "f40", "a\x00\x00"} {
		if recs, err := nulRecords(cut); err == nil {
			t.Errorf("nulRecords(%q) = %q, want an error", cut, recs)
		}
	}
}

func TestParseMounts(t *testing.T) {
	ms, err := parseMounts("/dev/root / ext4 rw 0 0\n" +
		"proc /var/lib/mock/a-1-1/root/proc\\040(deleted) proc rw 0 0\n" +
		"none /var/lib/mock/b\\040c tmpfs rw 0 0\n" +
		"none /var/lib/mock/d-2-2\\040(deleted) tmpfs rw 0 0\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []mount{
		{Literal: "/", Path: "/"},
		{Literal: "/var/lib/mock/a-1-1/root/proc (deleted)", Path: "/var/lib/mock/a-1-1/root/proc", Deleted: true},
		{Literal: "/var/lib/mock/b c", Path: "/var/lib/mock/b c"},
		{Literal: "/var/lib/mock/d-2-2 (deleted)", Path: "/var/lib/mock/d-2-2", Deleted: true},
	}
	if !slices.Equal(ms, want) {
		t.Fatalf("parseMounts = %+v, want %+v", ms, want)
	}
	// A deleted mount point on the entry itself belongs to the entry; it
	// is unmounted by its stripped path only (the literal one is a
	// sibling, outside the entry).
	got := mountsUnder("/var/lib/mock/d-2-2", ms)
	if len(got) != 1 || !slices.Equal(got[0].targets("/var/lib/mock/d-2-2"), []string{"/var/lib/mock/d-2-2"}) {
		t.Errorf("mounts of d-2-2: %+v", got)
	}
	got = mountsUnder("/var/lib/mock/a-1-1", ms)
	if len(got) != 1 || !slices.Equal(got[0].targets("/var/lib/mock/a-1-1"),
		[]string{"/var/lib/mock/a-1-1/root/proc (deleted)", "/var/lib/mock/a-1-1/root/proc"}) {
		t.Errorf("mounts of a-1-1: %+v", got)
	}

	for name, text := range map[string]string{
		"cut line":     "/dev/root / ext4 rw 0 0\nnone /var/lib/mock/a-1-1/ro",
		"short line":   "/dev/root / ext4 rw 0 0\nnone /var/lib/mock/a-1-1/root\n",
		"empty output": "",
	} {
		if ms, err := parseMounts(text); err == nil {
			t.Errorf("%s: parseMounts = %+v, want an error", name, ms)
		}
	}
}

// TestCleanupRefusesCutOutput: when find, du or /proc/mounts went over
// the output cap, nothing is planned or deleted, and the caller gets
// error:.
func TestCleanupRefusesCutOutput(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(argv []string, res *fleet.Result)
		want string
	}{
		{"find over the cap", func(argv []string, res *fleet.Result) {
			if argv[0] == "find" {
				res.Stdout, res.Truncated = res.Stdout[:len(res.Stdout)-12], true
			}
		}, "output cap"},
		{"find record without its NUL", func(argv []string, res *fleet.Result) {
			if argv[0] == "find" {
				res.Stdout = res.Stdout[:len(res.Stdout)-4]
			}
		}, "nothing was done"},
		{"du over the cap", func(argv []string, res *fleet.Result) {
			if argv[0] == "du" {
				res.Truncated = true
			}
		}, "output cap"},
		{"du record without its NUL", func(argv []string, res *fleet.Result) {
			if argv[0] == "du" {
				res.Stdout = strings.TrimSuffix(res.Stdout, "\x00")
			}
		}, "nothing was done"},
		// The helper (or sudo) refused: no sizes at all is no plan.
		{"du refused", func(argv []string, res *fleet.Result) {
			if argv[0] == "du" {
				res.Stdout, res.ExitCode, res.Stderr = "", exitHelperRefused, "kojibot-helper: refused: "+fakeMock+" is not a cleanup_dir\n"
			}
		}, "kojibot-helper: refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &fakeBuilder{names: []string{"f40-build-1001-55", "f40-build-1002-55"}, cut: tc.cut}
			d, f := cleanupDispatcher(t, b)
			out, plans := runConfirmed(d, "cleanup ppc3")
			if !strings.HasPrefix(out, "error:") && !strings.Contains(out, "\nerror:") || !strings.Contains(out, tc.want) {
				t.Errorf("reply %q, want error: with %q", out, tc.want)
			}
			if len(plans) > 0 || len(b.removed) > 0 || len(f.ran("ppc3 stop")) > 0 {
				t.Errorf("planned %q, removed %q, ran %q", plans, b.removed, f.ran("ppc3 stop"))
			}
		})
	}

	// /proc/mounts cut during the run: the job fails, nothing is deleted,
	// the services are started again.
	b := &fakeBuilder{names: []string{"f40-build-1001-55"}, cut: func(argv []string, res *fleet.Result) {
		if argv[0] == "cat" {
			res.Truncated = true
		}
	}}
	d, f := cleanupDispatcher(t, b)
	out, _ := runConfirmed(d, "cleanup ppc3")
	if !strings.Contains(out, "error: job") || !strings.Contains(out, "started kojid again") || len(b.removed) > 0 {
		t.Errorf("cut /proc/mounts: reply %q, removed %q", out, b.removed)
	}
	if !slices.Equal(f.ran("ppc3 st"), []string{"ppc3 stop kojid", "ppc3 start kojid"}) {
		t.Errorf("services: %q", f.ran("ppc3 st"))
	}
}

// TestCleanupKojiHostCheck: a builder with no Koji host, or several, is
// refused unless --no-koji-check, which the plan then warns about.
func TestCleanupKojiHostCheck(t *testing.T) {
	for _, tc := range []struct{ builder, want string }{
		{"nokoji", "nokoji maps to no Koji host"},
		{"x86-01", "x86-01 maps to 2 Koji hosts (x86-01.iad2.fedoraproject.org, x86-01.phx2.fedoraproject.org)"},
	} {
		b := &fakeBuilder{names: []string{"f40-build-1001-55"}}
		d, f := cleanupDispatcher(t, b)
		out, plans := runConfirmed(d, "cleanup "+tc.builder)
		if !strings.Contains(out, "error: "+tc.want) || !strings.Contains(out, "--no-koji-check") || len(plans) > 0 {
			t.Errorf("%s: reply %q, plans %q", tc.builder, out, plans)
		}
		if len(b.removed) > 0 || len(f.ran(tc.builder+" stop")) > 0 {
			t.Errorf("%s: refused clean-up removed %q, ran %q", tc.builder, b.removed, f.ran(tc.builder+" stop"))
		}

		out = run(d, "alice", "cleanup "+tc.builder+" --dry-run")
		if !strings.Contains(out, tc.want+": active buildroots are NOT protected") {
			t.Errorf("%s: dry run %q does not warn", tc.builder, out)
		}

		out, plans = runConfirmed(d, "cleanup "+tc.builder+" --no-koji-check")
		if len(plans) != 1 || !strings.Contains(plans[0], "WARNING: "+tc.want+": active buildroots are NOT protected") ||
			strings.Contains(plans[0], "refused") {
			t.Errorf("%s: plan %q", tc.builder, plans)
		}
		if !slices.Equal(b.removed, []string{fakeMock + "/f40-build-1001-55"}) {
			t.Errorf("%s --no-koji-check: removed %q; reply %q", tc.builder, b.removed, out)
		}
	}

	// One Koji host: no warning.
	b := &fakeBuilder{names: []string{"f40-build-1001-55"}}
	d, _ := cleanupDispatcher(t, b)
	if _, plans := runConfirmed(d, "cleanup ppc3"); len(plans) != 1 || strings.Contains(plans[0], "WARNING") {
		t.Errorf("ppc3 plan %q", plans)
	}
}

// TestCleanupUnmountsDeleted: mount points /proc/mounts shows with
// `\040(deleted)` are unmounted by their real path, as kojid does,
// including one on the entry itself; an entry whose unmount fails is
// skipped and reported, never deleted.
func TestCleanupUnmountsDeleted(t *testing.T) {
	const deep, self, busy = fakeMock + "/f40-build-1-1", fakeMock + "/f40-build-2-1", fakeMock + "/f40-build-3-1"
	b := &fakeBuilder{
		names: []string{"f40-build-1-1", "f40-build-2-1", "f40-build-3-1"},
		mounts: []fakeMount{
			{raw: deep + `/root/proc\040(deleted)`, reach: deep + "/root/proc"},
			{raw: deep + "/root/dev", reach: deep + "/root/dev"},
			{raw: self + `\040(deleted)`, reach: self},
			{raw: busy + "/root/dev", reach: busy + "/root/dev"},
		},
		busy: map[string]bool{busy + "/root/dev": true},
	}
	d, f := cleanupDispatcher(t, b)
	out, _ := runConfirmed(d, "cleanup ppc3")
	if !slices.Equal(b.removed, []string{deep, self}) {
		t.Errorf("removed %q, want %q", b.removed, []string{deep, self})
	}
	if len(b.through) > 0 {
		t.Errorf("deleted through a mount: %q", b.through)
	}
	if len(b.mounts) != 1 || b.mounts[0].reach != busy+"/root/dev" {
		t.Errorf("mounts left %+v, want only the busy one", b.mounts)
	}
	for _, p := range []string{"removed 2 entries", "skipped 1: " + busy + " (still holds mount " + busy + "/root/dev: umount " + busy + "/root/dev failed: umount: " + busy + "/root/dev: target is busy.)"} {
		if !strings.Contains(out, p) {
			t.Errorf("report lacks %q:\n%s", p, out)
		}
	}
	if got := f.ran("umount -- " + self); len(got) != 1 {
		t.Errorf("umounts of the entry itself: %q", got)
	}
}

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
