package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/builders"
	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// TestConfirmAcrossFailover: a clean-up asked of the leader of two
// replicas, the leader SIGKILLed before the confirmation, and `confirm
// <token>` given to the replica that took over: the confirmation is in
// the store, the new leader plans the clean-up again, finds the plan
// unchanged and runs it, once. The builder's files and services say so;
// the token then works no more.
func TestConfirmAcrossFailover(t *testing.T) {
	const nick, channel, mock = "kojibot-hacf", "#hacf", builders.MockDir
	fx := sandbox.DefaultCleanupFixture()
	bldAddBuildroot(t, fx.ActiveID, 1)
	bldAddBuildroot(t, fx.ExpiredID, 3)
	bldCleanup(t, bldBuilder, fx.RemoveScript()+bldStartServices())
	bldExec(t, bldBuilder, fx.Script())

	r := startReplicas(t, nick, channel, "kojibot_hacf")
	alice := join(t, nick, "alice", "")
	_, plan, token := bldPlan(alice, "cleanup "+bldBuilder)
	if !strings.Contains(strings.Join(plan, "\n"), "delete 7 entries") {
		t.Fatalf("plan:\n%s", strings.Join(plan, "\n"))
	}
	journal := bldJournal(t, bldBuilder)
	listing := bldListing(t, bldBuilder)

	lead := r.leader()
	killed := r.running[lead]
	if err := syscall.Kill(killed.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for !killed.Exited() {
		time.Sleep(10 * time.Millisecond)
	}
	r.noRace(killed)
	if got := bldListing(t, bldBuilder); got != listing {
		t.Fatalf("the builder changed before the confirmation:\nbefore\n%s\nafter\n%s", listing, got)
	}
	bots[nick] = r.running[1-lead]
	probe := cfProbe(t, alice)
	if r.leader() != 1-lead {
		t.Fatal("the standby did not take over")
	}

	bldSend(alice, "confirm "+token)
	lines := bldUntil(alice, "the start of the confirmed clean-up", func(l string) bool {
		if strings.Contains(l, probe) {
			return false // a late answer to a probe
		}
		if strings.HasPrefix(l, "error:") || strings.HasPrefix(l, "denied:") || strings.HasPrefix(l, "confirm:") {
			t.Fatalf("confirm %s on the new leader: %s", token, l)
		}
		return bldJobStarted.MatchString(l)
	})
	id := bldJobStarted.FindStringSubmatch(lines[len(lines)-1])[1]
	lines = append(lines, bldJobEnd(alice, id)...)
	bldInOrder(t, lines, "job "+id+" started: cleanup "+bldBuilder, bldBuilder+": stopped kojid, plague-builder",
		bldBuilder+": removed 7 entries, freed ", bldBuilder+": started kojid, plague-builder again", "job "+id+" (cleanup "+bldBuilder+") done in ")

	// On the machine: the old entries are gone, the others kept, the
	// services stopped and started once, and running.
	left := bldEntries(t, bldBuilder, mock)
	for _, name := range fx.Old {
		if slices.Contains(left, name) {
			t.Errorf("%s is still on %s after the clean-up", name, bldBuilder)
		}
	}
	for _, name := range []string{fx.Fresh, fx.Active} {
		if !slices.Contains(left, name) {
			t.Errorf("%s was deleted", name)
		}
	}
	bldActive(t, bldBuilder, bldServices...)
	if got := bldJournalSince(t, bldBuilder, journal); !slices.Equal(got, bldStopStart) {
		t.Errorf("services journal %q, want %q (one clean-up)", got, bldStopStart)
	}

	// The token was used: a second confirm runs nothing.
	got := alice.ask("confirm " + token)
	if !strings.HasPrefix(got, "error: no pending action has token") {
		t.Errorf("a second confirm: %q", got)
	}
	if got := bldJournalSince(t, bldBuilder, journal); !slices.Equal(got, bldStopStart) {
		t.Errorf("services journal %q after a second confirm, want one clean-up", got)
	}
}

// cfProbe sends `confirm <probe>`, a token that never exists, until the
// bot answers; it returns the probes' common prefix, so that later
// answers to them can be told from other lines.
func cfProbe(t *testing.T, u *user) string {
	t.Helper()
	prefix := fmt.Sprintf("probe%d", nickSeq.Add(1))
	deadline := time.Now().Add(failoverWithin + 15*time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		p := fmt.Sprintf("%s%d", prefix, n)
		if err := u.c.Privmsg(u.channel, "!koji confirm "+p); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := u.c.Expect(ctx, func(m ircnet.Message) bool {
			return m.Command == "PRIVMSG" && m.Source == u.bot && strings.HasPrefix(m.Text, u.nick+": ") && strings.Contains(m.Text, prefix)
		})
		cancel()
		if err == nil {
			return prefix
		}
	}
	t.Fatal("the replica that took over never answered")
	return ""
}
