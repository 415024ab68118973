package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/builders"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// Conversations about what the bot must refuse, or do with care, when the
// farm is not as it expects: output cut at ssh.max_output, a builder Koji
// does not know, mount points /proc/mounts shows as `\040(deleted)` and
// busy mounts, a xen config that is a symlink or that changed between
// the plan and the confirmation.

// safetyRefusal sends text as u and collects the bot's lines until the
// first error:, failing the test on a confirm:.
func safetyRefusal(t *testing.T, u *user, text string) []string {
	t.Helper()
	bldSend(u, text)
	return bldUntil(u, "the refusal of "+text, func(l string) bool {
		if strings.HasPrefix(l, "confirm:") {
			t.Fatalf("%q asked for confirmation: %s", text, l)
		}
		return strings.HasPrefix(l, "error:")
	})
}

// TestSafetyTruncatedOutput: with a small ssh.max_output, the listing of
// a clean-up directory is cut; the bot plans nothing from it, answers
// error: and touches nothing.
func TestSafetyTruncatedOutput(t *testing.T) {
	const nick, channel = "kojibot-cap", "#kojibot-cap"
	bldStartBot(t, nick, channel, map[string]any{"ssh": map[string]any{"max_output": 2048}})
	// Old entries with long names make find's output far over 2 KiB; a
	// young one whose name a cut record could shorten into an old one's.
	var names []string
	for i := range 40 {
		names = append(names, fmt.Sprintf("f40-build-%d-55-%s", 2000+i, strings.Repeat("x", 80)))
	}
	const young = builders.MockDir + "/f40-build-2100-55"
	bldCleanup(t, bldBuilder, "cd "+builders.MockDir+" && rm -rf f40-build-20??-55-xxx* "+young)
	bldExec(t, bldBuilder, "cd "+builders.MockDir+" && mkdir "+strings.Join(names, " ")+
		" && touch -d '10 days ago' "+strings.Join(names, " ")+" && mkdir "+young)
	listing, journal := bldListing(t, bldBuilder), bldJournal(t, bldBuilder)

	alice := join(t, nick, "alice", "")
	lines := safetyRefusal(t, alice, "cleanup "+bldBuilder)
	text := lines[len(lines)-1]
	for _, p := range []string{"error: " + bldBuilder + ": the listing of " + builders.MockDir + " was cut", "ssh.max_output", "nothing was done"} {
		if !strings.Contains(text, p) {
			t.Errorf("refusal %q lacks %q", text, p)
		}
	}
	if got := bldListing(t, bldBuilder); got != listing {
		t.Errorf("the builder changed:\nbefore\n%s\nafter\n%s", listing, got)
	}
	if got := bldJournalSince(t, bldBuilder, journal); len(got) > 0 {
		t.Errorf("the services were touched: %q", got)
	}
	// The dry run is refused the same way.
	lines = safetyRefusal(t, alice, "cleanup "+bldBuilder+" --dry-run")
	if !strings.Contains(lines[len(lines)-1], "ssh.max_output") {
		t.Errorf("dry run: %q", lines)
	}
	bldActive(t, bldBuilder, bldServices...)
}

// TestSafetyNoKojiHost: a builder that maps to no Koji host is refused,
// as the active-buildroot guard cannot work; with --no-koji-check the plan
// says active buildroots are not protected, and the clean-up runs.
func TestSafetyNoKojiHost(t *testing.T) {
	const renamed = "xenbuilder2-renamed.fedora.redhat.com"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := sb.DBs["koji"]
	if _, err := db.Exec(ctx, "UPDATE host SET name = $1 WHERE name = $2", renamed, bldKojiName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.Exec(ctx, "UPDATE host SET name = $1 WHERE name = $2", bldKojiName, renamed); err != nil {
			t.Errorf("renaming the host back: %v", err)
		}
	})
	const victim = builders.MockDir + "/f40-build-2201-55"
	bldCleanup(t, bldBuilder, "rm -rf "+victim+"\n"+bldStartServices())
	bldExec(t, bldBuilder, "mkdir -p "+victim+"/root && echo x > "+victim+"/root/f && touch -d '10 days ago' "+victim)
	listing, journal := bldListing(t, bldBuilder), bldJournal(t, bldBuilder)

	alice := join(t, mainBot, "alice", "")
	lines := safetyRefusal(t, alice, "cleanup "+bldBuilder)
	text := lines[len(lines)-1]
	for _, p := range []string{"error: " + bldBuilder + " maps to no Koji host", "active buildroots cannot be protected", "nothing was done", "--no-koji-check"} {
		if !strings.Contains(text, p) {
			t.Errorf("refusal %q lacks %q", text, p)
		}
	}
	if got := bldListing(t, bldBuilder); got != listing {
		t.Errorf("the refused clean-up changed the builder:\nbefore\n%s\nafter\n%s", listing, got)
	}
	if got := bldJournalSince(t, bldBuilder, journal); len(got) > 0 {
		t.Errorf("the refused clean-up touched the services: %q", got)
	}

	_, plan, token := bldPlan(alice, "cleanup "+bldBuilder+" --no-koji-check")
	planText := strings.Join(plan, "\n")
	if !strings.Contains(planText, "WARNING: "+bldBuilder+" maps to no Koji host: active buildroots are NOT protected") || bldPlanRow(planText, victim) == "" {
		t.Errorf("plan lacks the warning or %s:\n%s", victim, planText)
	}
	id, jobLines := bldConfirmJob(alice, token)
	bldInOrder(t, jobLines, bldBuilder+": stopped kojid, plague-builder", bldBuilder+": removed ", bldBuilder+": started kojid, plague-builder again",
		"job "+id+" (cleanup "+bldBuilder+" --no-koji-check) done in ")
	if got := strings.TrimSpace(bldExec(t, bldBuilder, "test -e "+victim+" && echo yes || echo no")); got != "no" {
		t.Errorf("%s still there", victim)
	}
	bldActive(t, bldBuilder, bldServices...)
}

// TestSafetyDeletedMount: a mount point that /proc/mounts shows ending in
// `\040(deleted)` is unmounted and its entry removed, its source intact;
// an entry whose mount cannot be unmounted (busy) is skipped and
// reported with the umount failure, and not deleted.
func TestSafetyDeletedMount(t *testing.T) {
	const (
		gone   = builders.MockDir + "/f40-build-2301-55"
		held   = builders.MockDir + "/f40-build-2302-55"
		src    = builders.BuildDir + "/kojibot-e2e-deleted-src"
		heldFS = builders.BuildDir + "/kojibot-e2e-busy-src"
	)
	bldCleanup(t, bldBuilder, `if [ -n "$(cat `+builders.ServiceStateDir+`/kojibot-e2e-sleeper 2>/dev/null)" ]; then kill "$(cat `+builders.ServiceStateDir+`/kojibot-e2e-sleeper)" 2>/dev/null; sleep 0.2; fi
rm -f `+builders.ServiceStateDir+`/kojibot-e2e-sleeper
umount "`+gone+`/root/proc (deleted)" 2>/dev/null || true
`+bldUnmountUnder(gone)+`
`+bldUnmountUnder(held)+`
rm -rf `+gone+" "+held+" "+src+" "+heldFS+"\n"+bldStartServices())
	bldExec(t, bldBuilder, `set -e
mkdir -p `+src+` `+heldFS+` "`+gone+`/root/proc (deleted)" `+held+`/root/dev
for i in 1 2 3; do echo "file $i" > `+src+`/f$i; echo "busy $i" > `+heldFS+`/f$i; done
mount --bind `+src+` "`+gone+`/root/proc (deleted)"
mount --bind `+heldFS+` `+held+`/root/dev
touch -d '10 days ago' `+gone+` `+held)
	sleeper := strings.TrimSpace(bldExec(t, bldBuilder, `(cd `+held+`/root/dev && exec sleep 600) </dev/null >/dev/null 2>&1 &
echo $! | tee `+builders.ServiceStateDir+`/kojibot-e2e-sleeper`))
	if sleeper == "" {
		t.Fatal("no pid for the process holding the mount")
	}
	if got := bldExec(t, bldBuilder, "grep -cF '"+gone+`/root/proc\040(deleted) ' /proc/mounts || true`); strings.TrimSpace(got) != "1" {
		t.Fatalf("/proc/mounts does not show the mount point as %s/root/proc\\040(deleted): %q\n%s", gone, got, bldExec(t, bldBuilder, "cat /proc/mounts"))
	}
	srcSums := bldExec(t, bldBuilder, "cd "+src+" && sha256sum *")
	heldSums := bldExec(t, bldBuilder, "cd "+heldFS+" && sha256sum *")

	alice := join(t, mainBot, "alice", "")
	_, plan, token := bldPlan(alice, "cleanup "+bldBuilder)
	if text := strings.Join(plan, "\n"); !strings.Contains(text, "delete 2 entries") {
		t.Fatalf("plan:\n%s", text)
	}
	id, lines := bldConfirmJob(alice, token)
	i := bldIndex(lines, bldBuilder+": removed 1 entry")
	if i < 0 {
		t.Fatalf("no report of 1 entry removed:\n%s", strings.Join(lines, "\n"))
	}
	report := lines[i]
	for _, p := range []string{"skipped 1: " + held + " (still holds mount " + held + "/root/dev", "umount " + held + "/root/dev failed", "busy"} {
		if !strings.Contains(report, p) {
			t.Errorf("report %q lacks %q", report, p)
		}
	}
	bldInOrder(t, lines, bldBuilder+": started kojid, plague-builder again", "job "+id+" (cleanup "+bldBuilder+") done in ")
	bldActive(t, bldBuilder, bldServices...)
	if got := strings.TrimSpace(bldExec(t, bldBuilder, "test -e "+gone+" && echo yes || echo no")); got != "no" {
		t.Errorf("%s still there", gone)
	}
	if got := bldExec(t, bldBuilder, "grep -F '"+gone+"' /proc/mounts || true"); got != "" {
		t.Errorf("mount left behind: %s", got)
	}
	if got := bldExec(t, bldBuilder, "cd "+src+" && sha256sum *"); got != srcSums {
		t.Errorf("the deleted mount's source changed:\n%s\nwas\n%s", got, srcSums)
	}
	// The busy entry is untouched, its mount and its source too.
	if got := bldExec(t, bldBuilder, "cd "+held+"/root/dev && sha256sum *"); got != heldSums {
		t.Errorf("the busy mount's content changed:\n%s\nwas\n%s", got, heldSums)
	}
	if got := bldExec(t, bldBuilder, "cd "+heldFS+" && sha256sum *"); got != heldSums {
		t.Errorf("the busy mount's source changed:\n%s\nwas\n%s", got, heldSums)
	}
}

// TestSafetyMemorySymlink: a guest config that is a symlink is neither
// shown nor edited; its target stays as it was and no backup is made.
func TestSafetyMemorySymlink(t *testing.T) {
	file := sandbox.XenConfigDir + "/xenbuilder1"
	orig := bldExec(t, sandbox.XenHost, "cat "+file)
	bldCleanup(t, sandbox.XenHost, "if [ -L "+file+" ]; then rm -f "+file+" && mv "+file+".real "+file+"; fi; rm -f "+file+".kojibot-*")
	bldExec(t, sandbox.XenHost, "mv "+file+" "+file+".real && ln -s "+file+".real "+file)
	listing := bldExec(t, sandbox.XenHost, "ls -l --full-time "+sandbox.XenConfigDir)

	alice := join(t, mainBot, "alice", "")
	alice.expect("memory xenbuilder1 6G", "error: ", file, "symbolic link")
	alice.expect("memory xenbuilder1", "error: ", "symbolic link")
	if got := bldExec(t, sandbox.XenHost, "cat "+file+".real"); got != orig {
		t.Errorf("the link's target changed:\n%s", got)
	}
	if got := bldExec(t, sandbox.XenHost, "ls -l --full-time "+sandbox.XenConfigDir); got != listing {
		t.Errorf("%s changed:\n%s\nwas\n%s", sandbox.XenConfigDir, got, listing)
	}
}

// TestSafetyMemoryChanged: the guest's memory changes between the plan
// and the confirmation: the confirmation is refused and the file kept as
// it now is, without a backup.
func TestSafetyMemoryChanged(t *testing.T) {
	file := sandbox.XenConfigDir + "/" + bldBuilder
	orig := bldExec(t, sandbox.XenHost, "cat "+file)
	bldCleanup(t, sandbox.XenHost, "printf '%s' "+bldQuote(orig)+" > "+file+" && rm -f "+file+".kojibot-*")
	if !strings.Contains(orig, "memory = 4096\n") {
		t.Fatalf("%s does not start with memory = 4096:\n%s", file, orig)
	}

	alice := join(t, mainBot, "alice", "")
	_, plan, token := bldPlan(alice, "memory "+bldBuilder+" 6G")
	if text := strings.Join(plan, "\n"); !strings.Contains(text, "set memory = 6144 (was 4096)") {
		t.Errorf("plan:\n%s", text)
	}
	// Someone edits the file by hand meanwhile.
	bldExec(t, sandbox.XenHost, "sed -i 's/^memory = 4096$/memory = 5120/' "+file)
	changed := bldExec(t, sandbox.XenHost, "cat "+file)
	listing := bldExec(t, sandbox.XenHost, "ls -l --full-time "+sandbox.XenConfigDir)

	alice.expect("confirm "+token, "error: ", "is now 5120, not 4096 as the plan showed", "nothing changed")
	if got := bldExec(t, sandbox.XenHost, "cat "+file); got != changed {
		t.Errorf("%s was written:\n%s\nwant\n%s", file, got, changed)
	}
	if got := bldExec(t, sandbox.XenHost, "ls -l --full-time "+sandbox.XenConfigDir); got != listing {
		t.Errorf("%s changed (a backup?):\n%s\nwas\n%s", sandbox.XenConfigDir, got, listing)
	}
}
