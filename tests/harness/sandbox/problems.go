package sandbox

import (
	"context"
	"fmt"
	"strings"

	"github.com/fedora-infra/kojibot/tests/harness/builders"
)

// CleanupFixture is the SOP's mess under a builder's /var/lib/mock: old Koji
// buildroots, a plague build dir, a chroot holding a bind mount, an old
// symlink to somewhere precious, a fresh buildroot and one that Koji still
// uses. The end-to-end clean-up test and the demo farm both build it.
type CleanupFixture struct {
	// Old are the entries a clean-up deletes (10 days old).
	Old []string
	// Plague is the plague build dir among Old.
	Plague string
	// Fresh is a new buildroot; Active an old one whose buildroot
	// (ActiveID) is still waiting in Koji. ExpiredID is the buildroot
	// among Old that Koji has expired.
	Fresh, Active       string
	ActiveID, ExpiredID int64
	// Src and Target are under /mnt/build: the bind mount's source and
	// the symlink's target, which a clean-up must leave intact.
	Src, Target string
	// OldMiB is what Old holds, in MiB.
	OldMiB int
}

// DefaultCleanupFixture is the fixture of TestCleanupBuilder and the demo.
func DefaultCleanupFixture() CleanupFixture {
	plague := "fedora-9-x86_64-core-" + strings.Repeat("0123456789abcdef", 3)[:40]
	return CleanupFixture{
		Old: []string{"f40-build-1001-55", "f40-build-1002-55", "f40-build-1003-55-bootstrap",
			"f40-build-70043-55", plague, "chroot-old", "old-link"},
		Plague: plague,
		Fresh:  "f40-build-1004-55", Active: "f40-build-70042-55",
		ActiveID: 70042, ExpiredID: 70043,
		Src:    builders.BuildDir + "/kojibot-e2e-src",
		Target: builders.BuildDir + "/kojibot-e2e-target",
		OldMiB: 11,
	}
}

// Script is a shell script, run inside the builder, that makes the
// fixture's entries (the Koji buildroots are AddBuildroots' business).
func (f CleanupFixture) Script() string {
	const mock = builders.MockDir
	return `set -e
cd ` + mock + `
mk() { mkdir -p "$1/root/var/tmp"; dd if=/dev/zero of="$1/root/var/tmp/data" bs=1M count=$2 status=none; }
mk f40-build-1001-55 3; mk f40-build-1002-55 3; mk f40-build-1003-55-bootstrap 2; mk f40-build-70043-55 1
mk ` + f.Plague + ` 2; mk ` + f.Fresh + ` 2; mk ` + f.Active + ` 2
mkdir -p chroot-old/proc-like chroot-old/etc ` + f.Src + ` ` + f.Target + `
echo chroot > chroot-old/etc/os-release
for i in 1 2 3; do echo "source file $i" > ` + f.Src + `/file$i; done
dd if=/dev/urandom of=` + f.Src + `/blob bs=64k count=4 status=none
mount --bind ` + f.Src + ` ` + mock + `/chroot-old/proc-like
echo target > ` + f.Target + `/file
ln -s ` + f.Target + ` old-link
touch -h -d '10 days ago' ` + strings.Join(f.Old, " ") + ` ` + f.Active
}

// RemoveScript is a shell script that removes what Script made (unmounting
// the chroot's bind mount first).
func (f CleanupFixture) RemoveScript() string {
	const mock = builders.MockDir
	var paths []string
	for _, e := range append(append([]string(nil), f.Old...), f.Fresh, f.Active) {
		paths = append(paths, mock+"/"+e)
	}
	return UnmountUnder(mock+"/chroot-old") + "\nrm -rf " + strings.Join(paths, " ") + " " + f.Src + " " + f.Target + "\n"
}

// AddBuildroots adds the fixture's Koji buildroots of builder b to the
// farm's hub database db: ActiveID waiting (state 1) for a task b's kojid
// runs (HoldBuildroot, until the sandbox closes), ExpiredID expired
// (state 3).
func (f CleanupFixture) AddBuildroots(ctx context.Context, s *Sandbox, db, b string) error {
	dsns, ok := s.DBs[db]
	if !ok {
		return fmt.Errorf("sandbox: no database %q", db)
	}
	if _, err := s.HoldBuildroot(ctx, db, b, f.ActiveID, 1); err != nil {
		return err
	}
	return dsns.AddBuildroot(ctx, b+KojiDomain, f.ExpiredID, 3)
}

// UnmountUnder is a script line that unmounts everything under dir,
// deepest first.
func UnmountUnder(dir string) string {
	return `for m in $(awk -v d=` + shellQuote(dir) + ` 'index($2, d "/") == 1 || $2 == d {print $2}' /proc/mounts | sort -r); do umount "$m"; done`
}

// The demo farm's problems (SeedProblems).
const (
	// MessyBuilder has the CleanupFixture.
	MessyBuilder = "xenbuilder2"
	// FullBuilder's /var/lib/mock is FullBuilderPercent full.
	FullBuilder        = "xenbuilder3"
	FullBuilderPercent = 93
	// StaleBuilder has not checked in for an hour.
	StaleBuilder = "xenbuilder4"
	// SharedPercent is how full SharedMount starts.
	SharedPercent = 85
	// KojiDomain completes the farm's builder names into Koji host names.
	KojiDomain = ".fedora.redhat.com"
)

// fillScript writes file so that the tmpfs at mount (of mib MiB) is about
// percent full.
func fillScript(mount, file string, mib, percent int) string {
	blocks := mib * 16 * percent / 100 // 64 KiB blocks
	return fmt.Sprintf("dd if=/dev/zero of=%s/%s bs=64k count=%d status=none && sync", mount, file, blocks)
}

// SeedProblems gives the farm (Options.Farm) and its Koji database db the
// SOP's problems, for the demo and the tour (the end-to-end tests build
// their own): the CleanupFixture on MessyBuilder with its buildroots in
// db, FullBuilder's /var/lib/mock at FullBuilderPercent, StaleBuilder's
// kojid stopped and its host not checked in for an hour (the hosts
// without a kojid keep checking in: see Start),
// and SharedMount at SharedPercent.
func (s *Sandbox) SeedProblems(ctx context.Context, db string) error {
	if s.Farm == nil {
		return fmt.Errorf("sandbox: SeedProblems needs the farm")
	}
	dsns, ok := s.DBs[db]
	if !ok {
		return fmt.Errorf("sandbox: no database %q", db)
	}
	fx := DefaultCleanupFixture()
	if out, err := s.Farm.Exec(MessyBuilder, fx.Script()); err != nil {
		return fmt.Errorf("sandbox: %s: %v: %s", MessyBuilder, err, out)
	}
	if err := fx.AddBuildroots(ctx, s, db, MessyBuilder); err != nil {
		return fmt.Errorf("sandbox: buildroots: %w", err)
	}
	if out, err := s.Farm.Exec(FullBuilder, fillScript(builders.MockDir, "f40-build-2001-55.tar", 32, FullBuilderPercent)); err != nil {
		return fmt.Errorf("sandbox: %s: %v: %s", FullBuilder, err, out)
	}
	if out, err := s.Farm.Exec(HubHost, fillScript(SharedMount, "packages.img", 16, SharedPercent)); err != nil {
		return fmt.Errorf("sandbox: %s: %v: %s", HubHost, err, out)
	}
	// The stale builder's kojid is stopped, as after a crash an hour ago.
	if out, err := s.Farm.Service(StaleBuilder, "stop", "kojid"); err != nil {
		return fmt.Errorf("sandbox: %s: stop kojid: %v: %s", StaleBuilder, err, out)
	}
	if _, err := dsns.Exec(ctx, `UPDATE host SET update_time = now() - interval '1 hour' WHERE name = $1`, StaleBuilder+KojiDomain); err != nil {
		return err
	}
	return nil
}

// FillSharedCommand is a shell line for a person at the machine's root
// shell that pushes SharedMount over disk.full_percent (root enters the
// hub's namespaces: nobody logs in to the farm as root).
func (s *Sandbox) FillSharedCommand() string {
	return s.Farm.ExecCommand(HubHost, fmt.Sprintf("dd if=/dev/zero of=%s/fill bs=1M count=2 status=none", SharedMount))
}

// FillShared pushes SharedMount over disk.full_percent.
func (s *Sandbox) FillShared() error {
	if out, err := s.Farm.Exec(HubHost, fmt.Sprintf("dd if=/dev/zero of=%s/fill bs=1M count=2 status=none; sync", SharedMount)); err != nil {
		return fmt.Errorf("sandbox: fill %s: %v: %s", SharedMount, err, out)
	}
	return nil
}
