package contrib_test

import (
	"strings"
	"testing"
)

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
