package commands

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/config"
)

func TestClassify(t *testing.T) {
	for name, want := range map[string]struct {
		kind string
		id   int64
	}{
		"f40-build-1001-55":           {kindKoji, 1001},
		"f40-build-1003-55-bootstrap": {kindKoji, 1003},
		"dist-f8-build-12-3":          {kindKoji, 12},
		"fedora-devel-i386-core-0123456789abcdef0123456789abcdef01234567": {kindPlague, 0},
		"lost+found":     {kindOther, 0},
		"f40-build-1001": {kindOther, 0},
		"cache":          {kindOther, 0},
	} {
		e := &entry{Name: name}
		e.classify()
		if e.Kind != want.kind || e.Buildroot != want.id {
			t.Errorf("%s: %s/%d, want %s/%d", name, e.Kind, e.Buildroot, want.kind, want.id)
		}
	}
}

func TestMountsUnder(t *testing.T) {
	var mounts []mount
	for _, p := range []string{"/", "/var/lib/mock", "/var/lib/mock/a-1-1/root/proc", "/var/lib/mock/a-1-1/root/dev/pts",
		"/var/lib/mock/a-1-1/root/dev", "/var/lib/mock/a-1-10/root/proc", "/var/lib/mock/a-1-1x"} {
		mounts = append(mounts, mount{Literal: p, Path: p})
	}
	var got []string
	for _, m := range mountsUnder("/var/lib/mock/a-1-1", mounts) {
		got = append(got, m.Path)
	}
	want := []string{"/var/lib/mock/a-1-1/root/dev/pts", "/var/lib/mock/a-1-1/root/proc", "/var/lib/mock/a-1-1/root/dev"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mountsUnder = %q, want %q (deepest first, no sibling prefixes)", got, want)
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/mnt/a\040b`: "/mnt/a b", `/x\011y`: "/x\ty", `/plain`: "/plain", `/trail\04`: `/trail\04`, `/bs\134`: `/bs\`} {
		if got := fleet.UnescapeMountField(in); got != want {
			t.Errorf("UnescapeMountField(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{168 * time.Hour: "7d", 36 * time.Hour: "36h", 40 * time.Minute: "40m", 4 * time.Second: "4s"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

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
