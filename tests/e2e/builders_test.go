package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/builders"
	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// Conversations with the main bot about the farm's machines: clean-up,
// restart, memory, reboot, override and disk, checked against what really
// happened inside the builders (their files, mounts, df and fakesvc
// journals), the Koji database and the koji/xl stand-ins. Helpers are
// prefixed bld so that they stay clear of other files of the package.

const (
	bldBuilder  = "xenbuilder2" // kojid and plague-builder, on xen4
	bldKojiName = "xenbuilder2.fedora.redhat.com"
	bldWait     = 3 * time.Minute // for a job's end, paced output included
)

var bldServices = []string{"kojid", "plague-builder"}

// bldExec runs script inside host's namespaces and fails the test when it
// fails.
func bldExec(t *testing.T, host, script string) string {
	t.Helper()
	out, err := sb.Farm.Exec(host, script)
	if err != nil {
		t.Fatalf("on %s: %v", host, err)
	}
	return out
}

// bldCleanup registers a restoring script, run even when the test failed;
// a failure to restore is an error of the test.
func bldCleanup(t *testing.T, host, script string) {
	t.Helper()
	t.Cleanup(func() {
		if out, err := sb.Farm.Exec(host, script); err != nil {
			t.Errorf("restoring %s: %v: %s", host, err, out)
		}
	})
}

// bldQuote single-quotes s for a shell script.
func bldQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// bldJournal is fakesvc's journal on host without the timestamps, one
// "ACTION SERVICE RESULT" a line.
func bldJournal(t *testing.T, host string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(bldExec(t, host, "cat "+builders.ServiceStateDir+"/journal 2>/dev/null || true"), "\n") {
		if f := strings.Fields(l); len(f) == 4 {
			out = append(out, strings.Join(f[1:], " "))
		}
	}
	return out
}

// bldJournalSince is what host's journal gained since before.
func bldJournalSince(t *testing.T, host string, before []string) []string {
	t.Helper()
	after := bldJournal(t, host)
	if len(after) < len(before) || !slices.Equal(after[:len(before)], before) {
		t.Fatalf("journal of %s was rewritten:\nbefore %q\nafter  %q", host, before, after)
	}
	return after[len(before):]
}

// bldStopStart is the journal of a clean-up of xenbuilder2: both services
// stopped, then both started.
var bldStopStart = []string{"stop kojid ok", "stop plague-builder ok", "start kojid ok", "start plague-builder ok"}

// bldActive fails the test unless every service runs on host.
func bldActive(t *testing.T, host string, services ...string) {
	t.Helper()
	for _, s := range services {
		if out, err := sb.Farm.Service(host, "is-active", s); err != nil || strings.TrimSpace(out) != "active" {
			t.Errorf("%s on %s is not running: %q %v", s, host, out, err)
		}
	}
}

// bldUsed is the sum of df's Used bytes of /var/lib/mock and /mnt/build on host.
func bldUsed(t *testing.T, host string) int64 {
	t.Helper()
	var sum int64
	for _, l := range strings.Split(strings.TrimSpace(bldExec(t, host, "df -P -B1 "+builders.MockDir+" "+builders.BuildDir+" | tail -n +2")), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("df line %q", l)
		}
		n, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatalf("df line %q: %v", l, err)
		}
		sum += n
	}
	return sum
}

// bldListing is every file under the clean-up dirs with type, size, mtime
// and link target, and the mounts under them: equal listings mean nothing
// changed.
func bldListing(t *testing.T, host string) string {
	t.Helper()
	return bldExec(t, host, `find `+builders.MockDir+` `+builders.BuildDir+` -printf '%p %y %s %T@ %l\n' | sort
grep -E ' (`+builders.MockDir+`|`+builders.BuildDir+`)/' /proc/mounts | sort || true`)
}

// bldEntries lists the direct children of dir on host, sorted.
func bldEntries(t *testing.T, host, dir string) []string {
	t.Helper()
	out := strings.Fields(bldExec(t, host, "ls -A "+dir))
	slices.Sort(out)
	return out
}

// bldSend sends "!koji text" as u.
func bldSend(u *user, text string) {
	u.t.Helper()
	if err := u.c.Privmsg(u.channel, "!koji "+text); err != nil {
		u.t.Fatalf("send %q: %v", text, err)
	}
}

// bldUntil collects the bot's lines addressed to u until done accepts one,
// and returns them all.
func bldUntil(u *user, what string, done func(line string) bool) []string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bldWait)
	defer cancel()
	var got []string
	for {
		m, err := u.c.Expect(ctx, func(m ircnet.Message) bool {
			return m.Command == "PRIVMSG" && m.Source == u.bot && m.Target() == u.channel && strings.HasPrefix(m.Text, u.nick+": ")
		})
		if err != nil {
			u.t.Fatalf("waiting for %s; got %q: %v\nbot output:\n%s", what, got, err, tail(bots[u.bot].Output(), 40))
		}
		line := strings.TrimPrefix(m.Text, u.nick+": ")
		got = append(got, line)
		if done(line) {
			return got
		}
	}
}

// bldQuiet collects the bot's lines addressed to u until none came for
// quiet, after at least one.
func bldQuiet(u *user, quiet time.Duration) []string {
	u.t.Helper()
	got := u.replies(1)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), quiet)
		m, err := u.c.Expect(ctx, func(m ircnet.Message) bool {
			return m.Command == "PRIVMSG" && m.Source == u.bot && m.Target() == u.channel && strings.HasPrefix(m.Text, u.nick+": ")
		})
		cancel()
		if err != nil {
			return got
		}
		got = append(got, strings.TrimPrefix(m.Text, u.nick+": "))
	}
}

// bldNotice collects the bot's private NOTICEs to u from the first line
// that first accepts to the first that last accepts; NOTICEs before it
// (the rest of earlier summarised replies) are passed over.
func bldNotice(u *user, what string, first, last func(string) bool) []string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bldWait)
	defer cancel()
	var got []string
	for {
		m, err := u.c.Expect(ctx, func(m ircnet.Message) bool {
			return m.Command == "NOTICE" && m.Source == u.bot && m.Target() == u.nick
		})
		if err != nil {
			u.t.Fatalf("waiting for the NOTICE with %s; got %q: %v", what, got, err)
		}
		if len(got) == 0 && !first(m.Text) {
			continue
		}
		got = append(got, m.Text)
		if last(m.Text) {
			return got
		}
	}
}

var bldTokenRe = regexp.MustCompile(`confirm ([a-z0-9]{8}) \(within `)

// bldPlan sends text, which must be answered with confirm:, and returns
// the lines before it (progress), the whole confirmation (from the channel
// or, when it was summarised there, from the private NOTICE) and its token.
func bldPlan(u *user, text string) (pre, plan []string, token string) {
	u.t.Helper()
	bldSend(u, text)
	lines := bldUntil(u, "confirm: for "+text, func(l string) bool {
		if strings.HasPrefix(l, "error:") || strings.HasPrefix(l, "denied:") {
			u.t.Fatalf("%q: %s", text, l)
		}
		return strings.HasPrefix(l, "confirm:")
	})
	pre, plan = lines[:len(lines)-1], lines[len(lines)-1:]
	for {
		last := plan[len(plan)-1]
		if m := bldTokenRe.FindStringSubmatch(last); m != nil {
			return pre, plan, m[1]
		}
		if strings.Contains(last, "sent to you by private notice") {
			break
		}
		plan = append(plan, bldUntil(u, "the rest of the confirmation", func(string) bool { return true })...)
	}
	plan = bldNotice(u, "the plan of "+text, func(l string) bool { return strings.HasPrefix(l, "confirm:") },
		func(l string) bool { return bldTokenRe.MatchString(l) })
	return pre, plan, bldTokenRe.FindStringSubmatch(plan[len(plan)-1])[1]
}

// bldPlanRow is what follows path in its row of a clean-up plan's table
// (kind, size, age), or "" when the plan has no row for path.
func bldPlanRow(plan, path string) string {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(path) + `  +(\S.*)$`).FindStringSubmatch(plan)
	if m == nil {
		return ""
	}
	return m[1]
}

var bldJobStarted = regexp.MustCompile(`^job ([0-9]+) started: `)

// bldStarted waits for "job N started" and returns N with the lines so far.
func bldStarted(u *user, what string) (string, []string) {
	u.t.Helper()
	lines := bldUntil(u, "the start of the job of "+what, func(l string) bool {
		if strings.HasPrefix(l, "error:") || strings.HasPrefix(l, "denied:") {
			u.t.Fatalf("%s: %s", what, l)
		}
		return bldJobStarted.MatchString(l)
	})
	return bldJobStarted.FindStringSubmatch(lines[len(lines)-1])[1], lines
}

// bldJobEnd collects the lines until job id's last one (done, failed or
// cancelled).
func bldJobEnd(u *user, id string) []string {
	u.t.Helper()
	return bldUntil(u, "the end of job "+id, func(l string) bool {
		return strings.HasPrefix(l, "job "+id+" (") && strings.Contains(l, ") done in ") ||
			strings.HasPrefix(l, "error: job "+id+" (") ||
			strings.HasPrefix(l, "job "+id+" cancelled after ")
	})
}

// bldConfirmJob confirms token and follows the job it starts to its end.
func bldConfirmJob(u *user, token string) (string, []string) {
	u.t.Helper()
	bldSend(u, "confirm "+token)
	id, lines := bldStarted(u, "confirm "+token)
	return id, append(lines, bldJobEnd(u, id)...)
}

// bldIndex is the index of the first line holding part, or -1.
func bldIndex(lines []string, part string) int {
	return slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, part) })
}

// bldInOrder fails the test unless every part is in lines, in this order.
func bldInOrder(t *testing.T, lines []string, parts ...string) {
	t.Helper()
	at := -1
	for _, p := range parts {
		i := bldIndex(lines, p)
		if i < 0 {
			t.Errorf("no line holds %q in\n%s", p, strings.Join(lines, "\n"))
			return
		}
		if i < at {
			t.Errorf("%q comes before the line expected earlier in\n%s", p, strings.Join(lines, "\n"))
		}
		at = i
	}
}

// bldStartBot runs another kojibot on the koji database with extra config,
// in its own channel, until the test ends.
func bldStartBot(t *testing.T, nick, channel string, extra map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	path, err := sb.WriteConfig(ctx, sandbox.BotConfig{Nick: nick, DB: "koji", Channel: channel, Extra: extra})
	if err != nil {
		t.Fatal(err)
	}
	b, err := sb.StartBot(binary, nick, path)
	if err != nil {
		t.Fatal(err)
	}
	botChannel[nick], bots[nick] = channel, b
	t.Cleanup(func() {
		b.Stop()
		delete(bots, nick)
		delete(botChannel, nick)
	})
	if err := waitJoined(ctx, nick); err != nil {
		t.Fatal(err)
	}
}

// bldAddBuildroot adds a Koji buildroot of xenbuilder2 for the test's
// length: an active one (state 0-2) for a task its kojid runs (the kojid
// expires any other), an expired one as it is left.
func bldAddBuildroot(t *testing.T, id int64, state int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if state < 3 {
		release, err := sb.HoldBuildroot(ctx, "koji", bldBuilder, id, state)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := release(ctx); err != nil {
				t.Errorf("releasing buildroot %d: %v", id, err)
			}
		})
		return
	}
	if err := sb.DBs["koji"].AddBuildroot(ctx, bldKojiName, id, state); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, q := range []string{"DELETE FROM standard_buildroot WHERE buildroot_id = $1", "DELETE FROM buildroot WHERE id = $1"} {
			if _, err := sb.DBs["koji"].Exec(ctx, q, id); err != nil {
				t.Errorf("removing buildroot %d: %v", id, err)
			}
		}
	})
}

// bldStartServices is a script line that starts xenbuilder2's services
// (a no-op for those running).
func bldStartServices() string {
	var b strings.Builder
	for _, s := range bldServices {
		b.WriteString(strings.NewReplacer("{action}", "start", "{service}", s).Replace(sb.Farm.ServiceCommand()) + "\n")
	}
	return b.String()
}

// bldUnmountUnder is a script line that unmounts everything under dir,
// deepest first.
func bldUnmountUnder(dir string) string { return sandbox.UnmountUnder(dir) }

var bldFreedRe = regexp.MustCompile(`freed [^(]*\(([0-9]+) bytes by df\)`)

// TestCleanupBuilder: the SOP's clean-up of xenbuilder2 made safe — a dry
// run changes nothing; the plan is confirmed; the services are stopped
// for the run and started again; old buildroots, plague builds, a chroot
// holding a bind mount and an old symlink go; new and active buildroots
// stay; the mount's source and the link's target are intact; the bytes
// freed are df's.
func TestCleanupBuilder(t *testing.T) {
	const mock = builders.MockDir
	fx := sandbox.DefaultCleanupFixture()
	plague, old, fresh, active := fx.Plague, fx.Old, fx.Fresh, fx.Active
	// 70042 is still waiting in Koji; 70043 is expired there, so it may go.
	bldAddBuildroot(t, fx.ActiveID, 1)
	bldAddBuildroot(t, fx.ExpiredID, 3)

	before := bldEntries(t, bldBuilder, mock)
	bldCleanup(t, bldBuilder, fx.RemoveScript()+bldStartServices())
	bldExec(t, bldBuilder, fx.Script())
	srcSums := bldExec(t, bldBuilder, "cd "+fx.Src+" && sha256sum * && ls -A | wc -l")
	targetSums := bldExec(t, bldBuilder, "cd "+fx.Target+" && sha256sum *")

	alice := join(t, mainBot, "alice", "")

	// A dry run shows the plan and changes nothing.
	listing, journal := bldListing(t, bldBuilder), bldJournal(t, bldBuilder)
	bldSend(alice, "cleanup "+bldBuilder+" --dry-run")
	dry := bldUntil(alice, "the dry run", func(l string) bool {
		if strings.HasPrefix(l, "error:") || strings.HasPrefix(l, "confirm:") {
			t.Fatalf("dry run: %s", l)
		}
		return strings.HasPrefix(l, "dry run")
	})
	if !strings.HasPrefix(dry[0], bldBuilder+" before: "+mock+" ") {
		t.Errorf("first line of the dry run %q, want the df before", dry[0])
	}
	head := dry[len(dry)-1]
	for _, p := range []string{"dry run, nothing will change for " + bldBuilder, "stop kojid, plague-builder", "delete 7 entries older than 7d", "1 active in Koji"} {
		if !strings.Contains(head, p) {
			t.Errorf("dry run %q lacks %q", head, p)
		}
	}
	// The rest of the summarised reply, then nothing changed.
	bldUntil(alice, "the end of the dry run", func(l string) bool { return strings.Contains(l, "private notice") })
	if got := bldListing(t, bldBuilder); got != listing {
		t.Errorf("the dry run changed the builder:\nbefore\n%s\nafter\n%s", listing, got)
	}
	if got := bldJournalSince(t, bldBuilder, journal); len(got) > 0 {
		t.Errorf("the dry run touched the services: %q", got)
	}

	// The plan, confirmed.
	used := bldUsed(t, bldBuilder)
	pre, plan, token := bldPlan(alice, "cleanup "+bldBuilder)
	if bldIndex(pre, bldBuilder+" before: ") < 0 {
		t.Errorf("no df before the plan: %q", pre)
	}
	planText := strings.Join(plan, "\n")
	for _, p := range []string{"clean-up plan for " + bldBuilder, "stop kojid, plague-builder;", "delete 7 entries", "start kojid, plague-builder again", "1 active in Koji"} {
		if !strings.Contains(planText, p) {
			t.Errorf("plan lacks %q:\n%s", p, planText)
		}
	}
	if !strings.Contains(planText, "\ndelete ") || !strings.Contains(planText, "  kind ") {
		t.Errorf("plan lacks the heading of its table (delete, kind, size, age):\n%s", planText)
	}
	for _, name := range old {
		if bldPlanRow(planText, mock+"/"+name) == "" {
			t.Errorf("plan does not delete %s:\n%s", name, planText)
		}
	}
	for _, name := range []string{fresh, active, "kojibot-e2e-src", "kojibot-e2e-target"} {
		if strings.Contains(planText, name) {
			t.Errorf("plan deletes %s:\n%s", name, planText)
		}
	}
	if !strings.HasPrefix(bldPlanRow(planText, mock+"/"+plague), "plague build  ") ||
		!strings.HasPrefix(bldPlanRow(planText, mock+"/f40-build-1003-55-bootstrap"), "koji buildroot  ") {
		t.Errorf("plan misclassifies the entries:\n%s", planText)
	}
	id, lines := bldConfirmJob(alice, token)
	bldInOrder(t, lines, "job "+id+" started: cleanup "+bldBuilder, bldBuilder+": stopped kojid, plague-builder",
		bldBuilder+": removed 7 entries, freed ", bldBuilder+": started kojid, plague-builder again", "job "+id+" (cleanup "+bldBuilder+") done in ")
	report := lines[max(bldIndex(lines, ": removed 7 entries"), 0)]
	m := bldFreedRe.FindStringSubmatch(report)
	if m == nil {
		t.Fatalf("no bytes freed in %q", report)
	}
	freed, _ := strconv.ParseInt(m[1], 10, 64)
	if diff := used - bldUsed(t, bldBuilder); freed != diff {
		t.Errorf("reported %d bytes freed, df says %d", freed, diff)
	}
	if freed < 11<<20 {
		t.Errorf("freed %d bytes, want the 11 MiB of the old entries at least", freed)
	}
	if strings.Contains(report, "skipped") {
		t.Errorf("entries skipped: %q", report)
	}

	// Services: stopped, then started again, and running.
	if got := bldJournalSince(t, bldBuilder, journal); !slices.Equal(got, bldStopStart) {
		t.Errorf("journal of the clean-up %q, want %q", got, bldStopStart)
	}
	bldActive(t, bldBuilder, bldServices...)

	// Old entries gone; new and active kept; what was outside untouched.
	want := slices.Clone(before)
	want = append(want, fresh, active)
	slices.Sort(want)
	if got := bldEntries(t, bldBuilder, mock); !slices.Equal(got, want) {
		t.Errorf("%s after the clean-up: %q, want %q", mock, got, want)
	}
	if got := bldExec(t, bldBuilder, "cd "+fx.Src+" && sha256sum * && ls -A | wc -l"); got != srcSums {
		t.Errorf("the bind mount's source changed:\n%s\nwas\n%s", got, srcSums)
	}
	if got := bldExec(t, bldBuilder, "cd "+fx.Target+" && sha256sum *"); got != targetSums {
		t.Errorf("the symlink's target changed:\n%s\nwas\n%s", got, targetSums)
	}
	if got := bldExec(t, bldBuilder, "grep chroot-old /proc/mounts || true"); got != "" {
		t.Errorf("mount left behind: %s", got)
	}
}

// TestCleanupSharedMountFull: with /mnt/koji over disk.full_percent,
// cleaning a builder does not help: the bot drafts the outage, names who
// to escalate to, and leaves the builder alone.
func TestCleanupSharedMountFull(t *testing.T) {
	const fill = sandbox.SharedMount + "/kojibot-e2e-fill"
	bldCleanup(t, sandbox.HubHost, "rm -f "+fill)
	df := strings.Fields(bldExec(t, sandbox.HubHost, "dd if=/dev/zero of="+fill+" bs=1M count=15 status=none && df -P -B1 "+sandbox.SharedMount+" | tail -n 1"))
	usedB, _ := strconv.ParseFloat(df[2], 64)
	availB, _ := strconv.ParseFloat(df[3], 64)
	if pct := usedB * 100 / (usedB + availB); pct < 90 {
		t.Fatalf("%s is only %.0f%% full", sandbox.SharedMount, pct)
	}
	// Something the clean-up would delete.
	const victim = builders.MockDir + "/f40-build-1011-55"
	bldCleanup(t, bldBuilder, "rm -rf "+victim)
	bldExec(t, bldBuilder, "mkdir -p "+victim+"/root && echo x > "+victim+"/root/f && touch -d '10 days ago' "+victim)
	listing, journal := bldListing(t, bldBuilder), bldJournal(t, bldBuilder)

	alice := join(t, mainBot, "alice", "")
	bldSend(alice, "cleanup "+bldBuilder)
	lines := bldUntil(alice, "the refusal", func(l string) bool {
		if strings.HasPrefix(l, "confirm:") {
			t.Fatalf("a clean-up with a full shared mount asked for confirmation: %s", l)
		}
		return strings.Contains(l, bldBuilder+" was not touched")
	})
	text := strings.Join(lines, "\n")
	if !strings.HasPrefix(lines[0], "error: shared mount "+sandbox.SharedMount+" on "+sandbox.HubHost+" is ") {
		t.Errorf("first line %q", lines[0])
	}
	for _, p := range []string{"full: cleaning " + bldBuilder + " will not help", "escalate to: kevin, nirik"} {
		if !strings.Contains(text, p) {
			t.Errorf("reply lacks %q:\n%s", p, text)
		}
	}
	m := regexp.MustCompile(`outage draft (o[0-9]+): (\S.*)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no outage draft in:\n%s", text)
	}
	if !strings.Contains(m[2], "outage show "+m[1]) {
		t.Errorf("draft link %q does not show %s", m[2], m[1])
	}

	// The draft, by its id.
	bldSend(alice, "outage show "+m[1])
	shown := bldUntil(alice, "the draft", func(l string) bool { return strings.Contains(l, "private notice") })
	if bldIndex(shown, "Subject: Unplanned Outage - Koji build system - ") < 0 {
		t.Errorf("outage show %s: %q", m[1], shown)
	}
	body := bldNotice(alice, "the draft's reason", func(l string) bool { return strings.HasPrefix(l, "To: ") },
		func(l string) bool { return strings.Contains(l, sandbox.SharedMount) })
	if reason := body[len(body)-1]; !strings.Contains(reason, "The shared mount "+sandbox.SharedMount+" on "+sandbox.HubHost+" is ") {
		t.Errorf("draft reason %q", reason)
	}

	if got := bldListing(t, bldBuilder); got != listing {
		t.Errorf("the builder was touched:\nbefore\n%s\nafter\n%s", listing, got)
	}
	if got := bldJournalSince(t, bldBuilder, journal); len(got) > 0 {
		t.Errorf("the services were touched: %q", got)
	}
	bldActive(t, bldBuilder, bldServices...)
}

// TestCleanupFailure: a delete that fails part-way (an immutable file —
// tmpfs takes chattr +i since Linux 6.0 — that even root cannot unlink)
// is reported as error:, and the services are started again.
func TestCleanupFailure(t *testing.T) {
	const stuck, other = builders.MockDir + "/f40-build-1021-55", builders.MockDir + "/f40-build-1022-55"
	bldCleanup(t, bldBuilder, "chattr -i "+stuck+"/root/locked 2>/dev/null; rm -rf "+stuck+" "+other)
	bldExec(t, bldBuilder, `set -e
for d in `+stuck+` `+other+`; do mkdir -p $d/root/etc; for i in 1 2 3; do echo $i > $d/root/etc/f$i; done; done
echo locked > `+stuck+`/root/locked`)
	if out, err := sb.Farm.Exec(bldBuilder, "chattr +i "+stuck+"/root/locked && lsattr "+stuck+"/root/locked"); err != nil ||
		!strings.Contains(strings.Fields(out + " x")[0], "i") {
		t.Fatalf("chattr +i on tmpfs (Linux 6.0+ needed): %q %v", out, err)
	}
	bldExec(t, bldBuilder, "touch -d '10 days ago' "+stuck+" "+other)
	journal := bldJournal(t, bldBuilder)

	alice := join(t, mainBot, "alice", "")
	_, plan, token := bldPlan(alice, "cleanup "+bldBuilder)
	if text := strings.Join(plan, "\n"); !strings.Contains(text, "delete 2 entries") {
		t.Errorf("plan:\n%s", text)
	}
	id, lines := bldConfirmJob(alice, token)
	last := lines[len(lines)-1]
	for _, p := range []string{"error: job " + id + " (cleanup " + bldBuilder + ") failed after ", "deleting " + filepath.Base(stuck) + " failed", "Operation not permitted"} {
		if !strings.Contains(last, p) {
			t.Errorf("failure %q lacks %q", last, p)
		}
	}
	bldInOrder(t, lines, bldBuilder+": stopped kojid, plague-builder", bldBuilder+": started kojid, plague-builder again", "error: job "+id)
	if got := bldJournalSince(t, bldBuilder, journal); !slices.Equal(got, bldStopStart) {
		t.Errorf("journal %q, want %q", got, bldStopStart)
	}
	bldActive(t, bldBuilder, bldServices...)
	// rm removed what it could of the entry, not the immutable file; the
	// other entry went only if it came first.
	if got := bldExec(t, bldBuilder, "find "+stuck+" -type f"); strings.TrimSpace(got) != stuck+"/root/locked" {
		t.Errorf("left of %s: %q, want only the locked file", stuck, got)
	}
	m := regexp.MustCompile(`\(removed ([0-9]+) before it\)`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("no count of removed entries in %q", last)
	}
	exists := strings.TrimSpace(bldExec(t, bldBuilder, "test -e "+other+" && echo yes || echo no"))
	if (m[1] == "1") != (exists == "no") || (m[1] != "0" && m[1] != "1") {
		t.Errorf("report says %s removed before it, and %s exists: %s", m[1], other, exists)
	}
}

// TestCleanupCancelAndBusy: while a clean-up runs, a second one of the
// same host is refused at once with the job's id and owner; cancelling it
// stops the remote work part-way and starts the services again.
func TestCleanupCancelAndBusy(t *testing.T) {
	// Many mounts inside one old entry: each is unmounted with its own
	// remote command, so the run lasts long enough to be cancelled.
	const slow, src, mounts = builders.MockDir + "/f40-build-1031-55", builders.BuildDir + "/kojibot-e2e-slow-src", 2000
	bldCleanup(t, bldBuilder, bldUnmountUnder(slow)+"\nrm -rf "+slow+" "+src+"\n"+bldStartServices())
	bldExec(t, bldBuilder, fmt.Sprintf(`set -e
mkdir -p %[1]s && echo src > %[1]s/file
mkdir -p %[2]s && cd %[2]s && mkdir $(seq -f m%%g %[3]d)
for i in $(seq %[3]d); do mount --bind %[1]s m$i; done
touch -d '10 days ago' %[2]s`, src, slow, mounts))
	countMounts := func() int {
		n, _ := strconv.Atoi(strings.TrimSpace(bldExec(t, bldBuilder, "grep -c ' "+slow+"/' /proc/mounts || true")))
		return n
	}
	if n := countMounts(); n != mounts {
		t.Fatalf("%d mounts set up, want %d", n, mounts)
	}
	journal := bldJournal(t, bldBuilder)
	alice := join(t, mainBot, "alice", "")
	carol := join(t, mainBot, "carol", "")

	_, plan, token := bldPlan(alice, "cleanup "+bldBuilder)
	if text := strings.Join(plan, "\n"); !strings.Contains(text, "delete 1 entry") {
		t.Fatalf("plan:\n%s", text)
	}
	bldSend(alice, "confirm "+token)
	id, _ := bldStarted(alice, "the slow clean-up")
	ended := false
	t.Cleanup(func() {
		if ended {
			return
		}
		// Do not leave the job holding the builder for the next tests.
		_ = alice.c.Privmsg(alice.channel, "!koji cancel "+id)
		ctx, cancel := context.WithTimeout(context.Background(), bldWait)
		defer cancel()
		_, _ = alice.c.Expect(ctx, func(m ircnet.Message) bool {
			return m.Source == alice.bot && strings.Contains(m.Text, "job "+id+" cancelled after ")
		})
	})

	got := carol.ask("cleanup " + bldBuilder)
	for _, p := range []string{"error: ", bldBuilder + " is busy with job " + id + " (cleanup " + bldBuilder + ", by alice", "cancel " + id} {
		if !strings.Contains(got, p) {
			t.Errorf("second clean-up: %q lacks %q", got, p)
		}
	}
	// Wait for the bot to say it stopped both services, and check on the
	// builder itself that they are: the deletion step is then under way.
	stopped := bldUntil(alice, "the services stopped", func(l string) bool {
		return strings.Contains(l, bldBuilder+": stopped kojid, plague-builder")
	})
	deadline := time.Now().Add(bldWait)
	for {
		out, err := sb.Farm.Service(bldBuilder, "is-active", "plague-builder")
		if err != nil && strings.TrimSpace(out) == "inactive" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("plague-builder was not stopped: %q %v", out, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	bldSend(alice, "cancel "+id)
	lines := append(stopped, bldUntil(alice, "the cancel", func(l string) bool { return strings.HasPrefix(l, "cancelling job "+id+" (cleanup "+bldBuilder+")") })...)
	lines = append(lines, bldJobEnd(alice, id)...)
	ended = true
	bldInOrder(t, lines, bldBuilder+": stopped kojid, plague-builder", bldBuilder+": started kojid, plague-builder again", "job "+id+" cancelled after ")
	if bldIndex(lines, ": removed ") >= 0 {
		t.Errorf("a cancelled clean-up reported completion:\n%s", strings.Join(lines, "\n"))
	}
	if got := bldJournalSince(t, bldBuilder, journal); !slices.Equal(got, bldStopStart) {
		t.Errorf("journal %q, want %q", got, bldStopStart)
	}
	bldActive(t, bldBuilder, bldServices...)
	// The remote work stopped part-way: the entry and its other mounts
	// remain, and no umount or rm runs on.
	left := countMounts()
	if left == 0 {
		t.Errorf("every mount was unmounted: the cancel did not stop the job")
	}
	time.Sleep(time.Second)
	if again := countMounts(); again != left {
		t.Errorf("mounts still being unmounted after the cancel: %d then %d", left, again)
	}
	if out := bldExec(t, bldBuilder, "pgrep -l -x 'umount|rm' || true"); out != "" {
		t.Errorf("remote commands still running after the cancel: %s", out)
	}
	t.Logf("%d of %d mounts unmounted before the cancel", mounts-left, mounts)
}

// TestRestartAll: the hub's httpd then kojira, then, after the grace, only
// the builders whose kojid did not check in since: the real kojids of
// xenbuilder2-4 are stopped (their hosts stand still), xenbuilder1's keeps
// checking in; the restart starts the stopped ones, which check in again.
func TestRestartAll(t *testing.T) {
	names := map[string]string{}
	for _, b := range sandbox.Builders {
		names[b] = b + sandbox.KojiDomain
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, b := range sandbox.Builders[1:] {
		if out, err := sb.Farm.Service(b, "stop", "kojid"); err != nil {
			t.Fatalf("stop kojid on %s: %v %s", b, err, out)
		}
		t.Cleanup(func() { _, _ = sb.Farm.Service(b, "start", "kojid") })
	}
	// A kojid stopped mid-cycle may have checked in once more.
	time.Sleep(time.Second)
	stoodStill := time.Now()
	// The hub machine's httpd is the Koji hub's Apache.
	hubPID := func() string {
		t.Helper()
		return strings.TrimSpace(bldExec(t, sandbox.HubHost, "cat "+builders.ServiceStateDir+"/httpd.pid"))
	}
	apacheBefore := hubPID()
	if out := bldExec(t, sandbox.HubHost, "tr '\\0' ' ' </proc/"+apacheBefore+"/cmdline"); !strings.Contains(out, "apache2") {
		t.Fatalf("the hub machine's httpd is %q, not the hub's Apache", out)
	}
	journals := map[string][]string{}
	for _, h := range append([]string{sandbox.HubHost}, sandbox.Builders...) {
		journals[h] = bldJournal(t, h)
	}

	alice := join(t, mainBot, "alice", "")
	_, plan, token := bldPlan(alice, "restart all")
	if text := strings.Join(plan, "\n"); !strings.Contains(text, "restart httpd then kojira on "+sandbox.HubHost+"; wait "+sandbox.ReconnectGrace.String()) {
		t.Errorf("plan:\n%s", text)
	}
	id, lines := bldConfirmJob(alice, token)
	bldInOrder(t, lines, sandbox.HubHost+": httpd restarted and active", sandbox.HubHost+": kojira restarted and active",
		"waiting "+sandbox.ReconnectGrace.String(), "1 builder checked in since the hub restart; 3 did not and will be restarted: xenbuilder2, xenbuilder3, xenbuilder4",
		"restarted the services of 3 builders, all active again: xenbuilder2, xenbuilder3, xenbuilder4", "job "+id+" (restart all) done in ")

	hub := bldJournalSince(t, sandbox.HubHost, journals[sandbox.HubHost])
	if want := []string{"restart httpd ok", "restart httpd ok", "restart kojira ok", "restart kojira ok"}; !slices.Equal(hub, want) {
		t.Errorf("hub journal %q, want %q (httpd, then kojira)", hub, want)
	}
	for _, b := range sandbox.Builders {
		got := bldJournalSince(t, b, journals[b])
		var want []string
		switch b {
		case "xenbuilder1":
		case bldBuilder:
			want = []string{"restart kojid ok", "restart kojid ok", "restart plague-builder ok", "restart plague-builder ok"}
		default:
			want = []string{"restart kojid ok", "restart kojid ok"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s journal %q, want %q", b, got, want)
		}
	}
	bldActive(t, sandbox.HubHost, "httpd", "kojira")
	bldActive(t, bldBuilder, bldServices...)
	// The hub itself was restarted, and answers.
	if after := hubPID(); after == apacheBefore {
		t.Errorf("the hub's Apache still runs as %s: not restarted", after)
	}
	if err := sb.Koji.WaitUp(ctx, 30*time.Second); err != nil {
		t.Error(err)
	}
	// The restarted kojids are real: their hosts check in again.
	for _, b := range sandbox.Builders {
		if _, err := sb.Koji.WaitCheckin(ctx, names[b], stoodStill, 30*time.Second); err != nil {
			t.Errorf("%s after the restart: %v\n%s", b, err, sb.KojidLog(b))
		}
	}
}

// TestMemory: setting a guest's memory rewrites only its memory line on the
// xen host and keeps a backup; a confirmation is its asker's only; a guest
// disabled in the xen map is refused.
func TestMemory(t *testing.T) {
	file := sandbox.XenConfigDir + "/" + bldBuilder
	orig := bldExec(t, sandbox.XenHost, "cat "+file)
	other := bldExec(t, sandbox.XenHost, "cat "+sandbox.XenConfigDir+"/xenbuilder1")
	entries := bldEntries(t, sandbox.XenHost, sandbox.XenConfigDir)
	bldCleanup(t, sandbox.XenHost, "printf '%s' "+bldQuote(orig)+" > "+file+" && rm -f "+file+".kojibot-*")
	memLine := regexp.MustCompile(`(?m)^memory = ([0-9]+)$`)
	cur := memLine.FindStringSubmatch(orig)
	if cur == nil || cur[1] == "6144" {
		t.Fatalf("%s does not start from memory other than 6144:\n%s", file, orig)
	}

	alice := join(t, mainBot, "alice", "")
	_, plan, token := bldPlan(alice, "memory "+bldBuilder+" 6G")
	if text := strings.Join(plan, "\n"); !strings.Contains(text, "set memory = 6144 (was "+cur[1]+") in "+file+" on "+sandbox.XenHost) {
		t.Errorf("plan:\n%s", text)
	}
	// Another member of the group cannot use alice's token, nor can bob.
	carol := join(t, mainBot, "carol", "")
	carol.expect("confirm "+token, "denied:", "another account")
	bob := join(t, mainBot, "bob", "")
	bob.expect("confirm "+token, "denied:")
	if got := bldExec(t, sandbox.XenHost, "cat "+file); got != orig {
		t.Fatalf("a refused confirmation changed %s:\n%s", file, got)
	}

	got := alice.expect("confirm "+token, bldBuilder+": memory "+cur[1]+" → 6144 MiB in "+file+" on "+sandbox.XenHost, "restart the guest")
	m := regexp.MustCompile(`\(backup (\S+)\)`).FindStringSubmatch(got)
	if m == nil || !strings.HasPrefix(m[1], file+".kojibot-") {
		t.Fatalf("no backup named in %q", got)
	}
	want := memLine.ReplaceAllString(orig, "memory = 6144")
	if after := bldExec(t, sandbox.XenHost, "cat "+file); after != want {
		t.Errorf("%s after:\n%s\nwant:\n%s", file, after, want)
	}
	if backup := bldExec(t, sandbox.XenHost, "cat "+m[1]); backup != orig {
		t.Errorf("backup %s:\n%s\nwant the old content:\n%s", m[1], backup, orig)
	}
	wantEntries := append(slices.Clone(entries), filepath.Base(m[1]))
	slices.Sort(wantEntries)
	if got := bldEntries(t, sandbox.XenHost, sandbox.XenConfigDir); !slices.Equal(got, wantEntries) {
		t.Errorf("%s holds %q, want %q (no temporary file left)", sandbox.XenConfigDir, got, wantEntries)
	}
	if got := bldExec(t, sandbox.XenHost, "cat "+sandbox.XenConfigDir+"/xenbuilder1"); got != other {
		t.Errorf("xenbuilder1's config changed:\n%s", got)
	}
	// The token was single-use.
	alice.expect("confirm "+token, "error:", "no pending action")

	alice.expect("memory xenbuilder3 4G", "error:", "xenbuilder3", "disabled")
}

// TestConfirmExpired: a token used after confirm.ttl is refused and the
// action does not run.
func TestConfirmExpired(t *testing.T) {
	const nick, channel = "kojibot-ttl", "#kojibot-ttl"
	bldStartBot(t, nick, channel, map[string]any{"confirm": map[string]any{"ttl": "2s"}})
	file := sandbox.XenConfigDir + "/" + bldBuilder
	orig := bldExec(t, sandbox.XenHost, "cat "+file)
	bldCleanup(t, sandbox.XenHost, "printf '%s' "+bldQuote(orig)+" > "+file+" && rm -f "+file+".kojibot-*")

	alice := join(t, nick, "alice", "")
	listing := bldExec(t, sandbox.XenHost, "ls -l --full-time "+sandbox.XenConfigDir)
	_, plan, token := bldPlan(alice, "memory "+bldBuilder+" 5G")
	if !strings.Contains(strings.Join(plan, "\n"), "(within 2s; only you, here)") {
		t.Errorf("plan does not give the 2s limit: %q", plan)
	}
	time.Sleep(2500 * time.Millisecond)
	alice.expect("confirm "+token, "error:", "expired", "run the command again")
	if got := bldExec(t, sandbox.XenHost, "cat "+file); got != orig {
		t.Errorf("an expired confirmation changed %s:\n%s", file, got)
	}
	if got := bldExec(t, sandbox.XenHost, "ls -l --full-time "+sandbox.XenConfigDir); got != listing {
		t.Errorf("an expired confirmation changed %s:\n%s\nwas\n%s", sandbox.XenConfigDir, got, listing)
	}
	// Expired is gone: the token cannot be tried again.
	alice.expect("confirm "+token, "error:", "no pending action")
}

// TestUnknownHostKey: a host whose key is not in ssh.known_hosts is
// refused; the reply in the channel names the host and the failure, never
// the known_hosts path, the host's address or an ssh-keyscan recipe, which
// go to the bot's log.
func TestUnknownHostKey(t *testing.T) {
	const nick, channel = "kojibot-keys", "#kojibot-keys"
	data, err := os.ReadFile(sb.Farm.KnownHosts())
	if err != nil {
		t.Fatal(err)
	}
	addr := sb.Farm.Address("xenbuilder4")
	i := strings.LastIndexByte(addr, ':')
	drop := "[" + addr[:i] + "]:" + addr[i+1:] + " "
	var kept []string
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if !strings.HasPrefix(l, drop) {
			kept = append(kept, l)
		}
	}
	if len(kept) != len(strings.SplitAfter(string(data), "\n"))-1 {
		t.Fatalf("xenbuilder4 (%s) is not exactly one line of %s:\n%s", drop, sb.Farm.KnownHosts(), data)
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(strings.Join(kept, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	bldStartBot(t, nick, channel, map[string]any{"ssh": map[string]any{"known_hosts": path}})

	alice := join(t, nick, "alice", "")
	bldSend(alice, "disk xenbuilder4")
	text := strings.Join(bldQuiet(alice, 3*time.Second), " ")
	if want := "error: xenbuilder4: unknown SSH host key (see the log)"; text != want {
		t.Errorf("reply %q, want %q", text, want)
	}
	host := addr[:i]
	for _, leak := range []string{path, filepath.Dir(path), "known_hosts", "ssh-keyscan", "ssh-keygen", addr, host, "SHA256:", "/"} {
		if strings.Contains(text, leak) {
			t.Errorf("reply carries %q: %s", leak, text)
		}
	}
	// The detail is in the bot's log.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := bots[nick].Output()
		if strings.Contains(out, "ssh-keyscan") && strings.Contains(out, path) && strings.Contains(out, "xenbuilder4") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the bot's log lacks the host key failure in full (path, ssh-keyscan):\n%s", tail(out, 20))
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The other hosts are reached as usual.
	alice.expect("disk "+bldBuilder, bldBuilder+": "+builders.MockDir+" ")
}

// TestDiskAllDownAndHung: with one builder down and one hung, disk all
// answers within the per-host deadline, with the others' df and the two
// named.
func TestDiskAllDownAndHung(t *testing.T) {
	alice := join(t, mainBot, "alice", "")
	down, paused := true, true
	restore := func() {
		if paused {
			paused = false
			if err := sb.Farm.Resume("xenbuilder4"); err != nil {
				t.Errorf("resuming xenbuilder4: %v", err)
			}
		}
		if down {
			down = false
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := sb.Farm.StartHost(ctx, "xenbuilder3"); err != nil {
				t.Errorf("restarting xenbuilder3: %v", err)
			}
		}
	}
	t.Cleanup(restore)
	if err := sb.Farm.StopHost("xenbuilder3"); err != nil {
		t.Fatal(err)
	}
	if err := sb.Farm.Pause("xenbuilder4"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	bldSend(alice, "disk all")
	lines := bldUntil(alice, "disk all", func(l string) bool { return strings.Contains(l, "private notice") })
	took := time.Since(start)
	t.Logf("disk all answered in %s", took.Round(time.Millisecond))
	// ssh.connect_timeout is 5s: 10s per host, plus the reply's pacing and a busy machine; still
	// below ssh.command_timeout (60s), which a hung host would cost without
	// the per-host deadline.
	if took > 45*time.Second {
		t.Errorf("disk all answered after %s", took.Round(time.Millisecond))
	}
	if want := "4 builders: 0 full, 2 could not be read; failed: xenbuilder3, xenbuilder4"; lines[0] != want {
		t.Errorf("head %q, want %q", lines[0], want)
	}
	if len(lines) < 2 || !regexp.MustCompile(`^builder +mount +used +free +note$`).MatchString(lines[1]) {
		t.Errorf("no table heading in %q", lines)
	}
	all := bldNotice(alice, "the whole of disk all", func(l string) bool { return strings.HasPrefix(l, "4 builders") },
		func(l string) bool { return strings.HasPrefix(l, "xenbuilder4 ") })
	text := strings.Join(all, "\n")
	for _, b := range []string{"xenbuilder1", "xenbuilder2"} {
		for _, dir := range []string{builders.MockDir, builders.BuildDir} {
			if !regexp.MustCompile(`(?m)^` + b + ` +` + regexp.QuoteMeta(dir) + ` +[0-9]+% +\S`).MatchString(text) {
				t.Errorf("no df of %s %s in:\n%s", b, dir, text)
			}
		}
	}
	if !regexp.MustCompile(`(?m)^xenbuilder3 +unreachable`).MatchString(text) {
		t.Errorf("xenbuilder3 not said unreachable:\n%s", text)
	}
	if l := all[len(all)-1]; !strings.Contains(l, "timed out") && !strings.Contains(l, "unreachable") {
		t.Errorf("xenbuilder4 line %q", l)
	}

	// Back again: the bot reaches both.
	restore()
	for _, b := range []string{"xenbuilder3", "xenbuilder4"} {
		alice.expect("disk "+b, b+": "+builders.MockDir+" ")
		bldActive(t, b, "kojid")
	}
}

// TestOverride: override runs exactly `koji tag-build --wait <tag> <nvr>`
// on the admin host, with the release's koji CLI logged in as the admin
// host's Koji user; the hub's tagBuild task is taken by a real kojid, and
// the reply names that task; the hub's faults (a build that does not
// exist, a tag the admin host may not tag into) come back as error:; bad
// input never reaches SSH.
func TestOverride(t *testing.T) {
	alice := join(t, mainBot, "alice", "")
	// Commands started on the admin host, by its sshd's log.
	sessions := func() int {
		t.Helper()
		log, err := sb.Farm.Log(sandbox.AdminHost)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(log, "Starting session: command for ")
	}
	before := sessions()
	run := func(release, nvr string) (string, []string, string) {
		t.Helper()
		log := sb.KojiLog()
		bldSend(alice, "override "+release+" "+nvr)
		id, lines := bldStarted(alice, "override "+release+" "+nvr)
		lines = append(lines, bldJobEnd(alice, id)...)
		return id, lines, strings.TrimPrefix(sb.KojiLog(), log)
	}
	ctx := context.Background()
	id, lines, called := run("f8", "foo-1.0-1")
	if want := "tag-build\n--wait\ndist-f8-override\nfoo-1.0-1\n--\n"; called != want {
		t.Errorf("koji called with %q, want %q", called, want)
	}
	bldInOrder(t, lines, "tagging foo-1.0-1 into dist-f8-override on "+sandbox.AdminHost, "tagged foo-1.0-1 into dist-f8-override (task ",
		"job "+id+" (override f8 foo-1.0-1) done in ")
	// The task the reply names is the hub's: a tagBuild by the admin
	// host's user, closed by the kojid's host; the build is tagged.
	taskID := regexp.MustCompile(`tagged foo-1\.0-1 into dist-f8-override \(task ([0-9]+)`).FindStringSubmatch(strings.Join(lines, "\n"))
	if taskID == nil {
		t.Fatalf("no task id in %q", lines)
	}
	anon := sb.Koji.Anonymous()
	n, _ := strconv.Atoi(taskID[1])
	task, err := anon.Struct(ctx, "getTaskInfo", n)
	if err != nil {
		t.Fatal(err)
	}
	// Taken by the kojid of one of the farm's builders.
	host, err := anon.Struct(ctx, "getHost", task["host_id"])
	if err != nil {
		t.Fatal(err)
	}
	name, _ := host["name"].(string)
	owner, err := anon.Struct(ctx, "getUser", task["owner"])
	if err != nil {
		t.Fatal(err)
	}
	if task["method"] != "tagBuild" || task["state"] != int64(2) || !slices.Contains(sandbox.Builders, strings.TrimSuffix(name, sandbox.KojiDomain)) || owner["name"] != sandbox.AdminKojiUser {
		t.Errorf("task %d: %v (owner %v, host %q); want a tagBuild by %s, CLOSED (2) on one of the builders", n, task, owner["name"], name, sandbox.AdminKojiUser)
	}
	tagged, err := anon.Structs(ctx, "listTagged", "dist-f8-override")
	if err != nil || len(tagged) != 1 || tagged[0]["nvr"] != "foo-1.0-1" {
		t.Errorf("listTagged dist-f8-override: %v, %v", tagged, err)
	}

	for _, tc := range []struct{ release, nvr, tag, fault string }{
		{"f8", "foo-missing-1.0-1", "dist-f8-override", "GenericError: No such build: 'foo-missing-1.0-1'"},
		{sandbox.LockedRelease, "foo-1.0-1", "dist-" + sandbox.LockedRelease + "-override", "ActionNotAllowed: tag requires admin permission"},
	} {
		id, lines, called = run(tc.release, tc.nvr)
		if want := "tag-build\n--wait\n" + tc.tag + "\n" + tc.nvr + "\n--\n"; called != want {
			t.Errorf("koji called with %q, want %q", called, want)
		}
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "error: job "+id+" (override "+tc.release+" "+tc.nvr+") failed") ||
			!strings.Contains(last, tc.fault) {
			t.Errorf("the hub's fault came back as %q, want %q in it", last, tc.fault)
		}
	}

	log, ran := sb.KojiLog(), sessions()
	if ran <= before {
		t.Fatalf("the admin host's sshd log shows no command (%d then %d sessions)", before, ran)
	}
	for _, tc := range []struct{ text, want string }{
		{"override f8 foo", "nvr must be"},
		{"override f8;id foo-1-1", "release must be"},
		{"override ../x foo-1-1", "release must be"},
		{"override f8 foo-1-1;id", "nvr must be"},
		{"override f8 $(id)-1-1", "nvr must be"},
	} {
		alice.expect(tc.text, "error: ", tc.want)
	}
	if got := strings.TrimPrefix(sb.KojiLog(), log); got != "" {
		t.Errorf("bad input reached koji: %q", got)
	}
	if got := sessions(); got != ran {
		t.Errorf("bad input ran %d commands on %s", got-ran, sandbox.AdminHost)
	}
}

// TestReboot: reboot goes through the xl stand-in on the xen host, the
// guest restarts, and the bot says when it is back.
func TestReboot(t *testing.T) {
	const bootID = "cat /proc/sys/kernel/random/boot_id"
	before, boot := sb.Reboots(), bldExec(t, bldBuilder, bootID)
	alice := join(t, mainBot, "alice", "")
	_, plan, token := bldPlan(alice, "reboot "+bldBuilder)
	if text := strings.Join(plan, "\n"); !strings.Contains(text, "kojibot-helper xl-reboot "+bldBuilder+"` on "+sandbox.XenHost) {
		t.Errorf("plan:\n%s", text)
	}
	id, lines := bldConfirmJob(alice, token)
	bldInOrder(t, lines, bldBuilder+": reboot sent; waiting for SSH", bldBuilder+" is back: SSH answered ", "job "+id+" (reboot "+bldBuilder+") done in ")
	deadline := time.Now().Add(2 * time.Minute)
	for sb.Reboots() != before+1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := sb.Reboots(); got != before+1 {
		t.Errorf("%d reboots carried out, want %d", got, before+1)
	}
	if got := bldExec(t, bldBuilder, bootID); got == boot {
		t.Errorf("boot id %s unchanged by the reboot", strings.TrimSpace(got))
	}
	bldActive(t, bldBuilder, bldServices...)
}
