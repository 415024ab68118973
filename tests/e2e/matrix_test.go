package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/fedora-infra/kojibot/tests/harness/matrixhs"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// The homeserver the main bot also serves, and its room.
var (
	hs         *matrixhs.Server
	matrixRoom id.RoomID
	roomAlias  = "#admin:" + matrixhs.ServerName
)

// Matrix users: the bot, a member of the sandbox's group, a FAS user who
// is not, and the room's creator.
var matrixUsers = map[string]string{"kojibot": "bot-password", "alice": "alice-m-password", "bob": "bob-m-password", "opsadmin": "ops-password"}

// startMatrix builds and starts Dendrite under dir, creates the users and
// the room, and returns the matrix: section of the main bot's config.
func startMatrix(ctx context.Context, dir string) (map[string]any, error) {
	root, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	begin := time.Now()
	bin, err := matrixhs.Build(ctx, filepath.Join(root, "..", ".."))
	if err != nil {
		return nil, err
	}
	built := time.Now()
	if hs, err = matrixhs.Start(ctx, bin, filepath.Join(dir, "dendrite")); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "dendrite: build (or cache) %s, start %s\n", built.Sub(begin).Round(time.Millisecond), time.Since(built).Round(time.Millisecond))
	for u, pw := range matrixUsers {
		if _, err := hs.CreateUser(ctx, u, pw); err != nil {
			return nil, err
		}
	}
	admin, err := matrixLogin(ctx, "opsadmin")
	if err != nil {
		return nil, err
	}
	resp, err := admin.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomAliasName: "admin", Name: "admin"})
	if err != nil {
		return nil, fmt.Errorf("create room: %w", err)
	}
	matrixRoom = resp.RoomID
	tokenFile := filepath.Join(dir, "matrix-password")
	if err := os.WriteFile(tokenFile, []byte(matrixUsers["kojibot"]+"\n"), 0o600); err != nil {
		return nil, err
	}
	return map[string]any{
		"homeserver":    hs.URL,
		"user_id":       "@kojibot:" + matrixhs.ServerName,
		"password_file": tokenFile,
		"rooms":         []string{roomAlias},
		"max_lines":     60,
	}, nil
}

func matrixLogin(ctx context.Context, user string) (*mautrix.Client, error) {
	cli, err := mautrix.NewClient(hs.URL, "", "")
	if err != nil {
		return nil, err
	}
	_, err = cli.Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: user},
		Password:   matrixUsers[user], StoreCredentials: true})
	if err != nil {
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	return cli, nil
}

// mUser is a Matrix user in the bot's room.
type mUser struct {
	t     *testing.T
	cli   *mautrix.Client
	since string
}

func matrixJoin(t *testing.T, user string) *mUser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := matrixLogin(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.JoinRoom(ctx, string(matrixRoom), nil); err != nil {
		t.Fatalf("join: %v", err)
	}
	resp, err := cli.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
	if err != nil {
		t.Fatal(err)
	}
	return &mUser{t: t, cli: cli, since: resp.NextBatch}
}

// say sends "!koji text" and returns the event id.
func (u *mUser) say(text string) id.EventID {
	u.t.Helper()
	resp, err := u.cli.SendText(context.Background(), matrixRoom, "!koji "+text)
	if err != nil {
		u.t.Fatalf("send: %v", err)
	}
	return resp.EventID
}

// botNotices syncs until the bot sent n notices replying to evt (or the
// generous timeout passes) and returns every notice of the bot seen.
func (u *mUser) botNotices(evt id.EventID, n int) []*event.Event {
	u.t.Helper()
	var got []*event.Event
	deadline := time.Now().Add(replyTimeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := u.cli.SyncRequest(ctx, 2000, u.since, "", false, event.PresenceOnline)
		cancel()
		if err != nil {
			time.Sleep(300 * time.Millisecond)
			continue
		}
		u.since = resp.NextBatch
		if jr := resp.Rooms.Join[matrixRoom]; jr != nil {
			for _, e := range jr.Timeline.Events {
				if e.Sender == "@kojibot:"+matrixhs.ServerName && e.Content.Raw["msgtype"] == "m.notice" {
					got = append(got, e)
				}
			}
		}
		if countReplies(got, evt) >= n {
			return got
		}
	}
	u.t.Fatalf("waiting for %d replies to %s; got %d\nbot output:\n%s", n, evt, len(got), tail(bots[mainBot].Output(), 40))
	return nil
}

func countReplies(es []*event.Event, to id.EventID) int {
	n := 0
	for _, e := range es {
		if replyTo(e) == to {
			n++
		}
	}
	return n
}

func replyTo(e *event.Event) id.EventID {
	rel, _ := e.Content.Raw["m.relates_to"].(map[string]any)
	irt, _ := rel["m.in_reply_to"].(map[string]any)
	s, _ := irt["event_id"].(string)
	return id.EventID(s)
}

// ask sends a command and returns the body of the bot's reply to it.
func (u *mUser) ask(text string) string {
	u.t.Helper()
	evt := u.say(text)
	for _, e := range u.botNotices(evt, 1) {
		if replyTo(e) == evt {
			return e.Content.Raw["body"].(string)
		}
	}
	return ""
}

func TestMatrixCapacity(t *testing.T) {
	alice := matrixJoin(t, "alice")
	got := alice.ask("capacity bkernel05 3")
	if want := "@alice:fedora.im: bkernel05.fedoraproject.org capacity 2 → 3"; !strings.HasPrefix(got, want) {
		t.Fatalf("alice: %q, want prefix %q", got, want)
	}
	bob := matrixJoin(t, "bob")
	if got := bob.ask("capacity bkernel05 4"); !strings.Contains(got, "denied:") || !strings.Contains(got, "sysadmin-build") {
		t.Fatalf("bob: %q, want denied naming the group", got)
	}
}

func TestMatrixReplyShape(t *testing.T) {
	alice := matrixJoin(t, "alice")
	evt := alice.say("hosts")
	es := alice.botNotices(evt, 1)
	// Give a second message, if any, time to arrive.
	es = append(es, alice.botNoticesFor(2*time.Second)...)
	if n := countReplies(es, evt); n != 1 {
		t.Fatalf("hosts: %d messages, want 1", n)
	}
	for _, e := range es {
		if replyTo(e) != evt {
			continue
		}
		body := e.Content.Raw["body"].(string)
		if lines := strings.Count(body, "\n") + 1; lines < 35 {
			t.Errorf("hosts reply has %d lines, want the 36 hosts", lines)
		}
		m, _ := e.Content.Raw["m.mentions"].(map[string]any)
		if ids, _ := m["user_ids"].([]any); len(ids) != 1 || ids[0] != "@alice:fedora.im" {
			t.Errorf("m.mentions = %v", e.Content.Raw["m.mentions"])
		}
		if f, _ := e.Content.Raw["formatted_body"].(string); !strings.Contains(f, "<pre>") {
			t.Errorf("formatted_body lacks <pre>: %.200q", f)
		}
	}
}

// botNoticesFor syncs for d and returns the bot's notices.
func (u *mUser) botNoticesFor(d time.Duration) []*event.Event {
	var got []*event.Event
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := u.cli.SyncRequest(ctx, 500, u.since, "", false, event.PresenceOnline)
		cancel()
		if err != nil {
			continue
		}
		u.since = resp.NextBatch
		if jr := resp.Rooms.Join[matrixRoom]; jr != nil {
			for _, e := range jr.Timeline.Events {
				if e.Sender == "@kojibot:"+matrixhs.ServerName {
					got = append(got, e)
				}
			}
		}
	}
	return got
}

func TestMatrixInviteLeft(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bob := matrixJoin(t, "bob")
	resp, err := bob.cli.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat",
		Invite: []id.UserID{"@kojibot:" + matrixhs.ServerName}})
	if err != nil {
		t.Fatal(err)
	}
	// The bot declines: its membership becomes "leave".
	deadline := time.Now().Add(replyTimeout)
	for time.Now().Before(deadline) {
		var m event.MemberEventContent
		err := bob.cli.StateEvent(ctx, resp.RoomID, event.StateMember, "@kojibot:"+matrixhs.ServerName, &m)
		if err == nil && m.Membership == event.MembershipLeave {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the bot did not leave the room it was invited to\n%s", tail(bots[mainBot].Output(), 30))
}

func TestMatrixIRCTokenRefused(t *testing.T) {
	u := join(t, mainBot, "alice", "")
	_, _, token := bldPlan(u, "reboot xenbuilder2")
	alice := matrixJoin(t, "alice")
	if got := alice.ask("confirm " + token); !strings.Contains(got, "denied:") {
		t.Fatalf("confirm on Matrix of an IRC token: %q, want denied", got)
	}
}

func TestMatrixHomeserverRestart(t *testing.T) {
	alice := matrixJoin(t, "alice")
	before := alice.say("hosts bkernel01")
	alice.botNotices(before, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := hs.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	alice = matrixJoin(t, "alice")
	after := alice.say("hosts bkernel02")
	es := alice.botNotices(after, 1)
	es = append(es, alice.botNoticesFor(3*time.Second)...)
	if n := countReplies(es, before); n != 0 {
		t.Errorf("the command before the restart was answered again (%d times)", n)
	}
	if n := countReplies(es, after); n != 1 {
		t.Errorf("the command after the restart was answered %d times, want 1", n)
	}
}

// waitMatrixJoined waits until the main bot is in the Matrix room.
func waitMatrixJoined(ctx context.Context) error {
	admin, err := matrixLogin(ctx, "opsadmin")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var m event.MemberEventContent
		err := admin.StateEvent(ctx, matrixRoom, event.StateMember, "@kojibot:"+matrixhs.ServerName, &m)
		if err == nil && m.Membership == event.MembershipJoin {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the bot did not join %s:\n%s", roomAlias, tail(bots[mainBot].Output(), 40))
}

// roomEvents syncs until done holds for one of the room's events (from
// anyone) or timeout passes, and returns every event seen.
func (u *mUser) roomEvents(timeout time.Duration, what string, done func(*event.Event) bool) []*event.Event {
	u.t.Helper()
	var got []*event.Event
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := u.cli.SyncRequest(ctx, 2000, u.since, "", false, event.PresenceOnline)
		cancel()
		if err != nil {
			time.Sleep(300 * time.Millisecond)
			continue
		}
		u.since = resp.NextBatch
		found := false
		if jr := resp.Rooms.Join[matrixRoom]; jr != nil {
			for _, e := range jr.Timeline.Events {
				got = append(got, e)
				found = found || done(e)
			}
		}
		if found {
			return got
		}
	}
	u.t.Fatalf("waiting for %s: not there after %s\nbot output:\n%s", what, timeout, tail(bots[mainBot].Output(), 40))
	return nil
}

// mBody is an event's body, "" when it has none.
func mBody(e *event.Event) string {
	s, _ := e.Content.Raw["body"].(string)
	return s
}

// mReplaces is the event e edits (m.replace), or "".
func mReplaces(e *event.Event) id.EventID {
	rel, _ := e.Content.Raw["m.relates_to"].(map[string]any)
	if rel["rel_type"] != "m.replace" {
		return ""
	}
	s, _ := rel["event_id"].(string)
	return id.EventID(s)
}

// TestMatrixCleanupProgressEdits: a cleanup confirmed on Matrix says it
// started, reports its progress in one notice that it edits (m.replace)
// as it goes, and posts its result as a new message mentioning the caller.
func TestMatrixCleanupProgressEdits(t *testing.T) {
	fx := sandbox.DefaultCleanupFixture()
	bldAddBuildroot(t, fx.ActiveID, 1)
	bldAddBuildroot(t, fx.ExpiredID, 3)
	bldCleanup(t, bldBuilder, fx.RemoveScript()+bldStartServices())
	bldExec(t, bldBuilder, fx.Script())

	alice := matrixJoin(t, "alice")
	self := id.UserID("@kojibot:" + matrixhs.ServerName)
	plan := alice.say("cleanup " + bldBuilder)
	var token string
	alice.roomEvents(replyTimeout, "the confirmation of the cleanup", func(e *event.Event) bool {
		if e.Sender != self || replyTo(e) != plan {
			return false
		}
		if b := mBody(e); strings.Contains(b, "error:") || strings.Contains(b, "denied:") {
			t.Fatalf("cleanup: %s", b)
		}
		if m := bldTokenRe.FindStringSubmatch(mBody(e)); m != nil {
			token = m[1]
			return true
		}
		return false
	})
	confirm := alice.say("confirm " + token)
	started := regexp.MustCompile(`job ([0-9]+) started: cleanup ` + regexp.QuoteMeta(bldBuilder))
	var job string
	es := alice.roomEvents(3*replyTimeout, "the end of the cleanup job", func(e *event.Event) bool {
		if e.Sender != self {
			return false
		}
		if m := started.FindStringSubmatch(mBody(e)); m != nil && replyTo(e) == confirm {
			job = m[1]
		}
		b := mBody(e)
		return job != "" && replyTo(e) == confirm && (strings.Contains(b, "job "+job+" (cleanup") || strings.Contains(b, "job "+job+" cancelled"))
	})
	// Give late events, if any, time to arrive.
	es = append(es, alice.botNoticesFor(3*time.Second)...)
	var progress, results []*event.Event
	for _, e := range es {
		if e.Sender != self || replyTo(e) != confirm {
			continue
		}
		switch b := mBody(e); {
		case started.MatchString(b):
		case strings.Contains(b, "job "+job+" (cleanup "+bldBuilder+") done in "):
			results = append(results, e)
		default:
			progress = append(progress, e)
		}
	}
	if len(results) != 1 {
		t.Fatalf("%d result messages, want 1", len(results))
	}
	if m, _ := results[0].Content.Raw["m.mentions"].(map[string]any); fmt.Sprint(m["user_ids"]) != "[@alice:fedora.im]" {
		t.Errorf("the result mentions %v, want alice", results[0].Content.Raw["m.mentions"])
	}
	if len(progress) != 1 {
		var bodies []string
		for _, e := range progress {
			bodies = append(bodies, mBody(e))
		}
		t.Fatalf("%d progress messages, want 1 edited: %q", len(progress), bodies)
	}
	target := progress[0].ID
	var edits []*event.Event
	for _, e := range es {
		if mReplaces(e) == target {
			edits = append(edits, e)
		} else if e.Sender == self && mReplaces(e) != "" {
			t.Errorf("an edit of another event %s: %q", mReplaces(e), mBody(e))
		}
	}
	if len(edits) < 2 {
		t.Fatalf("%d edits of the progress message %q, want at least 2", len(edits), mBody(progress[0]))
	}
	last, _ := edits[len(edits)-1].Content.Raw["m.new_content"].(map[string]any)
	final, _ := last["body"].(string)
	bldInOrder(t, strings.Split(final, "\n"), bldBuilder+": stopped kojid, plague-builder",
		bldBuilder+": removed 7 entries, freed ", bldBuilder+": started kojid, plague-builder again")
}

// TestMatrixWatchNotifiesBoth: a bot serving an IRC channel and a Matrix
// room posts a watcher notification (a full shared mount) in both.
func TestMatrixWatchNotifiesBoth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const watchUser, watchPassword = "kojiwatch", "watch-password"
	if _, err := hs.CreateUser(ctx, watchUser, watchPassword); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(t.TempDir(), "matrix-password")
	if err := os.WriteFile(pwFile, []byte(watchPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	alice := matrixJoin(t, "alice")
	keepCheckingIn(t, "")
	u, _ := watchBot(t, "kojibot-mwatch", map[string]any{"matrix": map[string]any{
		"homeserver": hs.URL, "user_id": "@" + watchUser + ":" + matrixhs.ServerName, "password_file": pwFile,
		"rooms": []string{roomAlias}, "notify_room": roomAlias,
	}})
	fill := fmt.Sprintf("dd if=/dev/zero of=%s/fill bs=1M count=15 2>/dev/null; sync", sandbox.SharedMount)
	if out, err := sb.Farm.Exec(sandbox.HubHost, fill); err != nil {
		t.Fatalf("filling %s: %v %s", sandbox.SharedMount, err, out)
	}
	t.Cleanup(func() { _, _ = sb.Farm.Exec(sandbox.HubHost, "rm -f "+sandbox.SharedMount+"/fill") })
	want := "ALERT shared mount " + sandbox.SharedMount
	onIRC := waitNotice(t, u, 90*time.Second, want)
	watcher := id.UserID("@" + watchUser + ":" + matrixhs.ServerName)
	var onMatrix string
	alice.roomEvents(90*time.Second, "the notification on Matrix", func(e *event.Event) bool {
		if e.Sender == watcher && strings.Contains(mBody(e), want) {
			onMatrix = mBody(e)
			return true
		}
		return false
	})
	// The same alert: the same outage draft.
	draft := regexp.MustCompile(`outage draft o[0-9]+`)
	if d := draft.FindString(onIRC); d == "" || !strings.Contains(onMatrix, d) {
		t.Errorf("the notifications differ:\nIRC    %q\nMatrix %q", onIRC, onMatrix)
	}
}
