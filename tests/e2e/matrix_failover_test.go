package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// TestMatrixFailover: two `kojibot run` on one PostgreSQL store, with IRC
// and Matrix, serve the main Matrix room under a prefix of their own. The
// leader is SIGKILLed while a command of alice's runs (it waits for a
// Koji row the test holds) and just as bob sends another; alice sends one
// more while no replica leads. The standby takes over with the shared
// sync record: the commands answered before the kill are not answered
// again, the one that was running is told it was interrupted (and its
// change is not made), bob's is answered once or told it was not run,
// and the ones sent after the kill are answered once, by the new leader.
func TestMatrixFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const user, password, nick = "kojiha", "ha-password", "kojibot-mha"
	self, pwFile := matrixBotUser(ctx, t, user, password)
	// Its own prefix in the main bot's room, so that only it answers.
	r := startReplicasWith(t, nick, "#mha", "kojibot_mha", map[string]any{"matrix": map[string]any{
		"homeserver": hs.URL, "user_id": string(self), "password_file": pwFile,
		"rooms": []string{roomAlias}, "command_prefix": "!ha"}})
	alice := matrixJoin(t, "alice")
	alice.bot, alice.botName = self, nick
	bob := matrixJoin(t, "bob")
	waitMember(t, self)

	var seen []*event.Event // the bot's notices, as alice syncs
	send := func(u *mUser, text string) id.EventID {
		t.Helper()
		resp, err := u.cli.SendText(ctx, matrixRoom, "!ha "+text)
		if err != nil {
			t.Fatalf("send %q: %v", text, err)
		}
		return resp.EventID
	}
	// awaitReply syncs until the bot replied to evt, within d.
	awaitReply := func(evt id.EventID, what string, d time.Duration) *event.Event {
		t.Helper()
		for _, e := range seen {
			if replyTo(e) == evt && mReplaces(e) == "" {
				return e
			}
		}
		isBot := func(e *event.Event) bool { return e.Sender == self }
		var found *event.Event
		got, _ := alice.syncUntil(d, isBot, func(got []*event.Event) bool {
			for _, e := range got {
				if replyTo(e) == evt && mReplaces(e) == "" {
					found = e
					return true
				}
			}
			return false
		})
		seen = append(seen, got...)
		if found == nil {
			t.Fatalf("no reply to %s within %s\nleader 0:\n%s\nleader 1:\n%s", what, d,
				tail(r.running[0].Output(), 30), tail(r.running[1].Output(), 30))
		}
		return found
	}

	var before []id.EventID
	for range 3 {
		evt := send(alice, "help")
		awaitReply(evt, "a command before the kill", replyTimeout)
		before = append(before, evt)
	}

	// Hold bkernel20's row, so that the leader's capacity waits inside its
	// transaction when it is killed.
	const host = "bkernel20.fedoraproject.org"
	release := holdKojiRows(ctx, t, `SELECT 1 FROM host WHERE name = $1 FOR UPDATE`, host)
	capacity := func() float64 {
		return query[float64](t, "koji", `SELECT capacity FROM host_config WHERE host_id = (SELECT id FROM host WHERE name = $1) AND active`, host)
	}
	was := capacity()
	running := send(alice, "capacity bkernel20 7")
	waiting := func() int {
		return query[int](t, "koji", `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
	}
	for deadline := time.Now().Add(replyTimeout); waiting() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the leader's capacity never waited for the row\n%s", tail(r.running[r.leader()].Output(), 30))
		}
	}
	lead := r.leader()
	killed := r.running[lead]
	// Bob's command reaches the homeserver as the leader dies: the leader
	// may not have synced it, may have taken it, or may have answered it.
	during := send(bob, "help")
	at := time.Now()
	if err := syscall.Kill(killed.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for !killed.Exited() {
		time.Sleep(10 * time.Millisecond)
	}
	release()
	bots[nick] = r.running[1-lead]
	// Sent while no replica leads.
	switching := send(alice, "hosts bkernel01")
	told := awaitReply(running, "the interrupted capacity", failoverWithin+replyTimeout)
	awaitReply(switching, "the command sent during the switch", failoverWithin+replyTimeout)
	awaitReply(during, "bob's command sent as the leader was killed", replyTimeout)
	if r.leader() != 1-lead {
		t.Fatal("the standby does not lead")
	}
	after := send(alice, "hosts bkernel02")
	awaitReply(after, "a command after the failover", replyTimeout)
	t.Logf("failover: the new leader answered %s after the SIGKILL", time.Since(at).Round(time.Millisecond))
	// Give a second answer, if any, time to arrive.
	seen = append(seen, alice.botNoticesFor(3*time.Second)...)
	r.noRace(killed)

	if want := "@alice:fedora.im: error: interrupted: kojibot stopped before \"capacity bkernel20 7\" finished"; !strings.HasPrefix(mBody(told), want) {
		t.Errorf("the running command: %q, want prefix %q", mBody(told), want)
	}
	if got := capacity(); got != was {
		t.Errorf("%s capacity %v after the failover, want %v: the interrupted command was run", host, got, was)
	}
	answers := func(evt id.EventID) []string {
		var bodies []string
		for _, e := range seen {
			if replyTo(e) == evt && mReplaces(e) == "" {
				bodies = append(bodies, mBody(e))
			}
		}
		return bodies
	}
	for i, evt := range before {
		if got := answers(evt); len(got) != 1 {
			t.Errorf("command %d before the kill answered %d times, want once (none replayed): %q", i+1, len(got), got)
		}
	}
	for what, evt := range map[string]id.EventID{"the running capacity": running, "bob's help": during,
		"the command sent during the switch": switching, "the command after the failover": after} {
		if got := answers(evt); len(got) != 1 {
			t.Errorf("%s answered %d times, want once: %q", what, len(got), got)
		}
	}
	for _, b := range answers(switching) {
		if !strings.Contains(b, "bkernel01") {
			t.Errorf("the command sent during the switch: %q, want its result", b)
		}
	}
}
