package fleet

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/fedora-infra/kojibot/tests/bench/subsystem"
	"github.com/fedora-infra/kojibot/tests/harness/builders"
)

func TestUsageOf(t *testing.T) {
	for _, c := range []struct {
		name string
		st   sftp.StatVFS
		want Usage
	}{
		{"75% of a tmpfs", sftp.StatVFS{Bsize: 4096, Frsize: 4096, Blocks: 2048, Bfree: 512, Bavail: 512},
			Usage{Size: 8 << 20, Used: 6 << 20, Avail: 2 << 20, Percent: 75}},
		{"reserved blocks count as used by no one", sftp.StatVFS{Frsize: 1, Blocks: 1000, Bfree: 100, Bavail: 50},
			Usage{Size: 1000, Used: 900, Avail: 50, Percent: 900 * 100.0 / 950}},
		{"no frsize: bsize", sftp.StatVFS{Bsize: 512, Blocks: 4, Bfree: 4, Bavail: 4},
			Usage{Size: 2048, Avail: 2048}},
		{"empty filesystem", sftp.StatVFS{Bsize: 4096, Frsize: 4096}, Usage{}},
	} {
		if got := usageOf(&c.st); got != c.want {
			t.Errorf("%s: usageOf = %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestMountTable(t *testing.T) {
	table := parseMounts(`/dev/vda1 / ext4 rw,relatime 0 0
proc /proc proc rw 0 0
tmpfs /var/lib/mock tmpfs rw,size=8192k 0 0
srv:/vol/a\040b /mnt/ntap\040fedora1 nfs rw 0 0
tmpfs /var/lib/mock tmpfs rw,size=4096k 0 0
/dev/vda2 /var/lib/mockery ext4 rw 0 0
`)
	for _, c := range []struct{ path, mount, source string }{
		{"/var/lib/mock", "/var/lib/mock", "tmpfs"},
		{"/var/lib/mock/", "/var/lib/mock", "tmpfs"},
		{"/var/lib/mock/x/y", "/var/lib/mock", "tmpfs"},
		{"/var/lib/mockery/z", "/var/lib/mockery", "/dev/vda2"},
		{"/var/lib", "/", "/dev/vda1"},
		{"/mnt/ntap fedora1/scratch", "/mnt/ntap fedora1", "srv:/vol/a b"},
		{"relative", "", ""},
	} {
		if got := table.holding(c.path); got != (mountOf{c.mount, c.source}) {
			t.Errorf("holding(%q) = %+v, want %s on %s", c.path, got, c.source, c.mount)
		}
	}
	if got := UnescapeMountField(`a\134b\011c\0`); got != "a\\b\tc\\0" {
		t.Errorf("UnescapeMountField = %q", got)
	}
}

// sftpFarm starts builders whose sshd has the Subsystem line line (none
// when empty), in dir.
func sftpFarm(t *testing.T, line string, specs ...builders.Spec) (farm *builders.Farm, dir string) {
	if testing.Short() {
		t.Skip("needs sshd builders (not with -short)")
	}
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir = t.TempDir()
	farm, err := builders.Start(ctx, dir, specs)
	if err != nil {
		t.Fatalf("builders.Start: %v", err)
	}
	t.Cleanup(farm.Stop)
	for _, s := range specs {
		if err := subsystem.Set(ctx, farm, dir, s.Name, line); err != nil {
			t.Fatal(err)
		}
	}
	return farm, dir
}

// fallbacks records ObserveDiskFallback's reports.
type fallbacks struct {
	mu  sync.Mutex
	got []string // "host reason"
}

func (fb *fallbacks) observe(host, reason string) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	fb.got = append(fb.got, host+" "+reason)
}

func (fb *fallbacks) list() []string {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return append([]string(nil), fb.got...)
}

// sftpRequests counts the subsystem requests in a builder's sshd log
// (LogLevel DEBUG1).
func sftpRequests(t *testing.T, farm *builders.Farm, name string) int {
	t.Helper()
	log, err := farm.Log(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(log, "req subsystem")
}

func TestStatVFSMatchesDF(t *testing.T) {
	farm, _ := sftpFarm(t, subsystem.SFTPServer,
		builders.Spec{Name: "b1", MockMiB: 8, BuildMiB: 4},
		builders.Spec{Name: "hub", Mounts: map[string]int{"/mnt/koji": 2}})
	f := newFleet(t, farm, nil)
	var fb fallbacks
	f.ObserveDiskFallback(fb.observe)
	ctx := testCtx(t, time.Minute)
	// 6 MiB + 1000 bytes: tmpfs charges whole pages.
	mustExec(t, farm, "b1", "head -c 6292456 /dev/zero > /var/lib/mock/fill && mkdir -p /var/lib/mock/sub")

	paths := []string{"/var/lib/mock", "/mnt/build", "/var/lib/mock/sub", "/"}
	got, err := f.DiskUsage(ctx, "b1", paths)
	if err != nil || len(got) != len(paths) {
		t.Fatalf("DiskUsage = %+v, %v", got, err)
	}
	df, err := f.dfUsage(ctx, "b1", paths)
	if err != nil {
		t.Fatalf("df: %v", err)
	}
	// "/" is the machine's own disk, written to by everything else running
	// here between the two reads: only its fixed figures must agree.
	stable := func(us []Usage) []Usage {
		out := append([]Usage(nil), us...)
		for i := range out {
			if out[i].Path == "/" {
				out[i].Used, out[i].Avail, out[i].Percent = 0, 0, 0
			}
		}
		return out
	}
	if !reflect.DeepEqual(stable(got), stable(df)) {
		t.Errorf("statvfs and df differ:\nstatvfs %+v\ndf      %+v", got, df)
	}
	const page = 4096
	want := Usage{Path: "/var/lib/mock", Mount: "/var/lib/mock", Filesystem: "tmpfs", Size: 8 << 20,
		Used: 6<<20 + page, Avail: 2<<20 - page, Percent: float64(6<<20+page) * 100 / (8 << 20)}
	if got[0] != want {
		t.Errorf("mock = %+v, want %+v", got[0], want)
	}
	if u := got[2]; u.Mount != "/var/lib/mock" || u.Size != 8<<20 || u.Path != "/var/lib/mock/sub" {
		t.Errorf("a directory inside the mount = %+v, want the mount's figures", u)
	}

	// A missing path is named in the error; the others are read, as df does.
	got, err = f.DiskUsage(ctx, "hub", []string{"/mnt/koji", "/pub/fedora", "/var/lib/mock"})
	if err == nil || !strings.Contains(err.Error(), "/pub/fedora: No such file or directory") || !strings.Contains(err.Error(), "hub") {
		t.Errorf("missing path: err = %v", err)
	}
	if len(got) != 2 || got[0].Path != "/mnt/koji" || got[0].Size != 2<<20 || got[1].Path != "/var/lib/mock" {
		t.Errorf("readable paths with a missing one: %+v", got)
	}

	// Many checks, at once and in turn, use the one SFTP session per host.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := f.DiskUsage(ctx, "b1", paths[:2]); err != nil {
				t.Errorf("DiskUsage: %v", err)
			}
		})
	}
	wg.Wait()
	if n := sftpRequests(t, farm, "b1"); n != 1 {
		t.Errorf("b1 saw %d sftp subsystem requests, want 1 (one session for every check)", n)
	}
	if d := f.dials.Load(); d != 2 {
		t.Errorf("%d dials, want 2", d)
	}
	if got := fb.list(); len(got) != 0 {
		t.Errorf("fell back to df: %v", got)
	}
}

func TestDiskUsageFallsBackToDF(t *testing.T) {
	farm, _ := sftpFarm(t, "", builders.Spec{Name: "b1", MockMiB: 8, BuildMiB: 4})
	f := newFleet(t, farm, nil)
	var fb fallbacks
	f.ObserveDiskFallback(fb.observe)
	ctx := testCtx(t, time.Minute)
	mustExec(t, farm, "b1", "head -c 6291456 /dev/zero > /var/lib/mock/fill")
	for i := range 3 {
		got, err := f.DiskUsage(ctx, "b1", []string{"/var/lib/mock", "/mnt/build"})
		if err != nil || len(got) != 2 {
			t.Fatalf("DiskUsage = %+v, %v", got, err)
		}
		if u := got[0]; u.Mount != "/var/lib/mock" || u.Filesystem != "tmpfs" || u.Size != 8<<20 || u.Used != 6<<20 || u.Percent != 75 {
			t.Errorf("check %d: mock = %+v", i, u)
		}
	}
	want := []string{"b1 " + FallbackNoSubsystem, "b1 " + FallbackNoSubsystem, "b1 " + FallbackNoSubsystem}
	if got := fb.list(); !reflect.DeepEqual(got, want) {
		t.Errorf("fallbacks = %v, want %v", got, want)
	}
	// The refusal is remembered: the subsystem was asked for once.
	if n := sftpRequests(t, farm, "b1"); n != 1 {
		t.Errorf("b1 saw %d sftp subsystem requests, want 1", n)
	}
}

func TestSFTPReopened(t *testing.T) {
	farm, dir := sftpFarm(t, subsystem.SFTPServer, builders.Spec{Name: "b1", MockMiB: 8, BuildMiB: 4})
	f := newFleet(t, farm, nil)
	var fb fallbacks
	f.ObserveDiskFallback(fb.observe)
	ctx := testCtx(t, time.Minute)
	check := func(what string) {
		t.Helper()
		got, err := f.DiskUsage(ctx, "b1", []string{"/var/lib/mock"})
		if err != nil || len(got) != 1 || got[0].Size != 8<<20 {
			t.Fatalf("%s: DiskUsage = %+v, %v", what, got, err)
		}
	}
	check("first")

	// The subsystem dies; the connection lives: a new SFTP session on it.
	mustExec(t, farm, "b1", "kill $(pidof sftp-server)")
	check("after sftp-server died")
	if n, d := sftpRequests(t, farm, "b1"), f.dials.Load(); n != 2 || d != 1 {
		t.Errorf("after sftp-server died: %d sftp requests, %d dials; want 2, 1", n, d)
	}

	// The connection dies (the builder reboots): redialled, and a new SFTP
	// session on the new connection.
	if err := farm.StopHost("b1"); err != nil {
		t.Fatal(err)
	}
	if err := farm.StartHost(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	// The rebooted sshd read the harness's configuration again.
	if err := subsystem.Set(ctx, farm, dir, "b1", subsystem.SFTPServer); err != nil {
		t.Fatal(err)
	}
	check("after reboot")
	if n, d := sftpRequests(t, farm, "b1"), f.dials.Load(); n != 1 || d != 2 {
		t.Errorf("after reboot: %d sftp requests in the new sshd log, %d dials; want 1, 2", n, d)
	}
	if got := fb.list(); len(got) != 0 {
		t.Errorf("fell back to df: %v", got)
	}
}

func TestStatVFSHungHost(t *testing.T) {
	farm, _ := sftpFarm(t, subsystem.SFTPServer, builders.Spec{Name: "b1", MockMiB: 8, BuildMiB: 4})
	f := newFleet(t, farm, nil)
	ctx := testCtx(t, time.Minute)
	if _, err := f.DiskUsage(ctx, "b1", []string{"/var/lib/mock"}); err != nil {
		t.Fatal(err)
	}
	if err := farm.Pause("b1"); err != nil {
		t.Fatal(err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = farm.Resume("b1")
		}
	})
	// The caller's deadline bounds a check on an open SFTP session.
	hctx, cancel := context.WithTimeout(ctx, time.Second)
	start := time.Now()
	_, err := f.DiskUsage(hctx, "b1", []string{"/var/lib/mock"})
	cancel()
	if took := time.Since(start); !errors.Is(err, ErrTimeout) || took > 3*time.Second {
		t.Errorf("hung host: %v after %s; want ErrTimeout after about 1s", err, took)
	}
	if err := farm.Resume("b1"); err != nil {
		t.Fatal(err)
	}
	resumed = true
	if got, err := f.DiskUsage(ctx, "b1", []string{"/var/lib/mock"}); err != nil || len(got) != 1 || got[0].Size != 8<<20 {
		t.Errorf("after resume: %+v, %v", got, err)
	}
}
