package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/fedora-infra/kojibot/tests/harness/matrixhs"
)

// startMatrixBot starts a bot of its own (IRC nick nick, Matrix user
// user) serving the main Matrix room with command prefix prefix, so that
// only it answers there; matrix is merged into its matrix: section, extra
// into the rest of its config. It waits until the bot is in the room
// unless noWait, and returns the bot's Matrix id.
func startMatrixBot(t *testing.T, nick, user, prefix string, matrix, extra map[string]any, noWait bool) id.UserID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	password := user + "-password"
	self, pwFile := matrixBotUser(ctx, t, user, password)
	section := map[string]any{"homeserver": hs.URL, "user_id": string(self), "password_file": pwFile,
		"rooms": []string{roomAlias}, "command_prefix": prefix}
	for k, v := range matrix {
		section[k] = v
	}
	cfg := map[string]any{"matrix": section}
	for k, v := range extra {
		cfg[k] = v
	}
	bldStartBot(t, nick, "#"+strings.TrimPrefix(nick, "kojibot-"), cfg)
	if !noWait {
		waitMember(t, self)
	}
	return self
}

// matrixUserOf is user, joined to the main room, talking to the bot self
// (IRC nick nick).
func matrixUserOf(t *testing.T, user string, self id.UserID, nick string) *mUser {
	u := matrixJoin(t, user)
	u.bot, u.botName = self, nick
	return u
}

// askRaw sends text as it is and returns the body of the bot's reply.
func (u *mUser) askRaw(text string) string {
	u.t.Helper()
	evt := u.sendRaw(text)
	for _, e := range u.botNotices(evt, 1) {
		if replyTo(e) == evt {
			return mBody(e)
		}
	}
	return ""
}

// sendRaw sends text as it is and returns the event id.
func (u *mUser) sendRaw(text string) id.EventID {
	u.t.Helper()
	resp, err := u.cli.SendText(context.Background(), u.roomID(), text)
	if err != nil {
		u.t.Fatalf("send: %v", err)
	}
	return resp.EventID
}

// TestMatrixStrangersNotIdentified: with matrix.fas_server naming another
// server, the users of this homeserver are strangers unless acl.accounts
// links them. A stranger is denied even the read-only commands (hosts,
// connections, jobs --all, disk all), which need @identified, and shares
// one rate bucket with every other stranger; a linked user is identified
// and has a bucket of its own, which the strangers cannot empty.
func TestMatrixStrangersNotIdentified(t *testing.T) {
	const nick = "kojibot-mtrust"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := hs.CreateUser(ctx, "mallory", "mallory-password"); err != nil {
		t.Fatal(err)
	}
	matrixUsers["mallory"] = "mallory-password"
	self := startMatrixBot(t, nick, "kojitrust", "!trust",
		map[string]any{"fas_server": "fas.example.org"},
		map[string]any{
			"acl":      map[string]any{"accounts": map[string]any{"@bob:" + matrixhs.ServerName: "bob"}},
			"commands": map[string]any{"user_rate": 0.01, "user_burst": 4},
		}, false)
	alice := matrixUserOf(t, "alice", self, nick)
	for _, cmd := range []string{"hosts", "connections", "jobs --all", "disk all"} {
		got := alice.askRaw("!trust " + cmd)
		if !strings.HasPrefix(got, "@alice:fedora.im: denied: ") || !strings.Contains(got, "not linked to a FAS user") {
			t.Errorf("%s from a stranger: %q, want denied: not linked", cmd, got)
		}
	}
	// The strangers' bucket (4) is empty now: mallory is told to slow down.
	mallory := matrixUserOf(t, "mallory", self, nick)
	if got := mallory.askRaw("!trust hosts ppc3"); !strings.Contains(got, "slow down, please: too many commands from people not identified to FAS") {
		t.Errorf("mallory after the strangers' bucket emptied: %q, want slow down", got)
	}
	// bob, linked by acl.accounts, is identified and has his own bucket.
	bob := matrixUserOf(t, "bob", self, nick)
	for _, cmd := range []string{"hosts ppc3", "whoami"} {
		got := bob.askRaw("!trust " + cmd)
		if strings.Contains(got, "denied:") || strings.Contains(got, "slow down") {
			t.Errorf("%s from bob (linked): %q, want an answer", cmd, got)
		}
		if cmd == "whoami" && !strings.Contains(got, "bob") {
			t.Errorf("whoami of bob: %q, want FAS user bob", got)
		}
	}
}

// TestMatrixBusyCallerDoesNotBlock: a caller whose commands all wait (on
// a row lock in the Koji database) holds neither the sync loop nor the
// workers: another caller is answered at once, and the stuck caller's
// commands run, one at a time, when the lock goes.
func TestMatrixBusyCallerDoesNotBlock(t *testing.T) {
	const nick = "kojibot-mbusy"
	self := startMatrixBot(t, nick, "kojibusy", "!busy", nil,
		map[string]any{"commands": map[string]any{"timeout": "3m", "user_rate": 5, "user_burst": 30}}, false)
	alice := matrixUserOf(t, "alice", self, nick)
	bob := matrixUserOf(t, "bob", self, nick)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	capacity := query[float64](t, "koji", `SELECT hc.capacity FROM host_config hc JOIN host h ON h.id = hc.host_id
		WHERE h.name = 'ppc3.fedora.redhat.com' AND hc.active`)
	before := snapshot(t, "koji")
	// The active host_config row, which capacity locks first.
	release := holdKojiRows(ctx, t, `SELECT 1 FROM host_config hc JOIN host h ON h.id = hc.host_id
		WHERE h.name = 'ppc3.fedora.redhat.com' AND hc.active FOR UPDATE OF hc`)
	// More than the bot's 8 workers, each waiting for the row; the same
	// capacity, so that nothing changes when they run.
	var stuck []id.EventID
	for range 10 {
		stuck = append(stuck, alice.sendRaw(fmt.Sprintf("!busy capacity ppc3 %g", capacity)))
	}
	waiting := func() int {
		return query[int](t, "koji", `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
	}
	for deadline := time.Now().Add(replyTimeout); waiting() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the bot's capacity never waited for the row\n%s", tail(bots[nick].Output(), 30))
		}
	}
	time.Sleep(time.Second) // the rest of the batch has reached the bot
	start := time.Now()
	evt := bob.sendRaw("!busy host ppc3")
	got, ok := bob.syncUntil(20*time.Second, func(e *event.Event) bool { return e.Sender == self && replyTo(e) == evt },
		func(got []*event.Event) bool { return len(got) > 0 })
	if !ok {
		t.Errorf("bob's command was not answered within 20s while alice's waited\n%s", tail(bots[nick].Output(), 30))
	} else if body := mBody(got[0]); !strings.Contains(body, "ppc3.fedora.redhat.com") {
		t.Errorf("bob: %q", body)
	} else {
		t.Logf("bob answered in %s", time.Since(start).Round(time.Millisecond))
	}
	if n := waiting(); n != 1 {
		t.Errorf("%d of alice's commands wait on the lock at once, want one (hers run one at a time)", n)
	}
	release()
	// Alice's commands all run once the lock is gone.
	es, _ := alice.syncUntil(2*replyTimeout, func(e *event.Event) bool { return e.Sender == self },
		func(got []*event.Event) bool {
			for _, s := range stuck {
				if countReplies(got, s) == 0 {
					return false
				}
			}
			return true
		})
	for i, s := range stuck {
		if n := countReplies(es, s); n != 1 {
			t.Errorf("alice's command %d: %d replies, want 1", i, n)
		}
	}
	if after := snapshot(t, "koji"); after != before {
		t.Errorf("the database changed\nbefore %s\nafter  %s", before, after)
	}
}

// TestMatrixJoinFailureRoomKept: the bot's joins are answered 502 by a
// proxy in front of the homeserver, though they go through. The bot finds
// itself in its configured room at the next sync and serves it: it is
// never left, and its commands are answered.
func TestMatrixJoinFailureRoomKept(t *testing.T) {
	const nick = "kojibot-mjoin"
	target, err := url.Parse(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	var joins atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if r.Request.Method == http.MethodPost && strings.Contains(r.Request.URL.Path, "/join/") {
			joins.Add(1)
			r.Body.Close()
			r.StatusCode, r.Status = http.StatusBadGateway, "502 Bad Gateway"
			r.Body = io.NopCloser(strings.NewReader("<html>bad gateway</html>"))
			r.ContentLength = -1
			r.Header.Del("Content-Length")
			r.Header.Set("Content-Type", "text/html")
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	self := startMatrixBot(t, nick, "kojijoin", "!join", map[string]any{"homeserver": srv.URL}, nil, false)
	alice := matrixUserOf(t, "alice", self, nick)
	if got := alice.askRaw("!join host ppc3"); !strings.Contains(got, "ppc3.fedora.redhat.com") {
		t.Errorf("host ppc3: %q", got)
	}
	if joins.Load() == 0 {
		t.Fatal("the bot never tried to join through the proxy")
	}
	// Still there a while later, never having left.
	time.Sleep(3 * time.Second)
	var m event.MemberEventContent
	if err := alice.cli.StateEvent(context.Background(), matrixRoom, event.StateMember, string(self), &m); err != nil || m.Membership != event.MembershipJoin {
		t.Errorf("the bot's membership: %q (%v), want join", m.Membership, err)
	}
	if out := bots[nick].Output(); strings.Contains(out, "leaving a room it does not serve") {
		t.Errorf("the bot left its room:\n%s", tail(out, 30))
	}
}

// TestMatrixDelayedCommandNotRun: a command that reaches the bot more than
// matrix.max_delay after it was sent (the bot is stopped meanwhile, as a
// slow federation link or a stuck proxy would hold it up) is answered
// "not run", with the delay, and does not run.
func TestMatrixDelayedCommandNotRun(t *testing.T) {
	const nick = "kojibot-mdelay"
	self := startMatrixBot(t, nick, "kojidelay", "!delay", map[string]any{"max_delay": "2s"}, nil, false)
	alice := matrixUserOf(t, "alice", self, nick)
	// The bot answers a command on time.
	if got := alice.askRaw("!delay host ppc3"); !strings.Contains(got, "ppc3.fedora.redhat.com") {
		t.Fatalf("host ppc3: %q", got)
	}
	pid := bots[nick].PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	before := snapshot(t, "koji")
	evt := alice.sendRaw("!delay capacity bkernel07 5")
	time.Sleep(5 * time.Second)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	es := alice.botNotices(evt, 1)
	es = append(es, alice.botNoticesFor(2*time.Second)...)
	var replies []string
	for _, e := range es {
		if replyTo(e) == evt {
			replies = append(replies, mBody(e))
		}
	}
	if len(replies) != 1 || !strings.HasPrefix(replies[0], "@alice:fedora.im: error: not run: sent ") ||
		!strings.Contains(replies[0], "before it reached kojibot (matrix.max_delay is 2s)") {
		t.Errorf("replies to the delayed command: %q, want one saying it was not run, with the delay", replies)
	}
	if after := snapshot(t, "koji"); after != before {
		t.Errorf("the database changed: the delayed command ran\nbefore %s\nafter  %s", before, after)
	}
}
