package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/matrixhs"
	"github.com/fedora-infra/kojibot/tests/harness/realkoji"
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

// mUser is a Matrix user in a bot's room: by default the main bot's.
type mUser struct {
	t     *testing.T
	cli   *mautrix.Client
	since string
	// room, bot and botName, when set, are the room, the bot's Matrix id
	// and its name in bots, instead of the main bot's.
	room    id.RoomID
	bot     id.UserID
	botName string
}

func (u *mUser) roomID() id.RoomID {
	if u.room != "" {
		return u.room
	}
	return matrixRoom
}

func (u *mUser) botID() id.UserID {
	if u.bot != "" {
		return u.bot
	}
	return "@kojibot:" + matrixhs.ServerName
}

// botOutput is the tail of the bot's output, for a failure.
func (u *mUser) botOutput() string {
	name := u.botName
	if name == "" {
		name = mainBot
	}
	if b := bots[name]; b != nil {
		return tail(b.Output(), 40)
	}
	return ""
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
	resp, err := u.cli.SendText(context.Background(), u.roomID(), "!koji "+text)
	if err != nil {
		u.t.Fatalf("send: %v", err)
	}
	return resp.EventID
}

// botNotices syncs until the bot sent n notices replying to evt (or the
// generous timeout passes) and returns every notice of the bot seen.
func (u *mUser) botNotices(evt id.EventID, n int) []*event.Event {
	u.t.Helper()
	isNotice := func(e *event.Event) bool { return e.Sender == u.botID() && e.Content.Raw["msgtype"] == "m.notice" }
	got, ok := u.syncUntil(replyTimeout, isNotice, func(got []*event.Event) bool { return countReplies(got, evt) >= n })
	if !ok {
		u.t.Fatalf("waiting for %d replies to %s; got %d\nbot output:\n%s", n, evt, countReplies(got, evt), u.botOutput())
	}
	return got
}

// syncUntil syncs the user's room until done holds for the events kept so
// far (those keep accepts), or timeout passes; it returns them, and
// whether done held.
func (u *mUser) syncUntil(timeout time.Duration, keep func(*event.Event) bool, done func([]*event.Event) bool) ([]*event.Event, bool) {
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
		if jr := resp.Rooms.Join[u.roomID()]; jr != nil {
			for _, e := range jr.Timeline.Events {
				if keep(e) {
					got = append(got, e)
				}
			}
		}
		if done(got) {
			return got, true
		}
	}
	return got, false
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
		// Other tests add hosts: the headline says how many rows follow.
		var hosts int
		if _, err := fmt.Sscanf(strings.TrimPrefix(body, "@alice:fedora.im: "), "%d hosts,", &hosts); err != nil || hosts < 36 {
			t.Errorf("hosts reply headline: %.80q (%v)", body, err)
		}
		if lines := strings.Count(body, "\n") + 1; lines != hosts+2 {
			t.Errorf("hosts reply has %d lines, want %d (the headline, the table's heading, the %d hosts):\n%s", lines, hosts+2, hosts, body)
		}
		m, _ := e.Content.Raw["m.mentions"].(map[string]any)
		if ids, _ := m["user_ids"].([]any); len(ids) != 1 || ids[0] != "@alice:fedora.im" {
			t.Errorf("m.mentions = %v", e.Content.Raw["m.mentions"])
		}
		// The table decided by the command, as an HTML table: not IRC's text.
		f, _ := e.Content.Raw["formatted_body"].(string)
		for _, want := range []string{"<table><thead><tr><th>host</th><th>enabled</th>", "<tr><td>bkernel01.fedoraproject.org</td><td>yes</td>", "</tbody></table>"} {
			if !strings.Contains(f, want) {
				t.Errorf("formatted_body lacks %q: %.300q", want, f)
			}
		}
		if strings.Contains(f, "<pre>") {
			t.Errorf("formatted_body shows the table as text: %.300q", f)
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
		if jr := resp.Rooms.Join[u.roomID()]; jr != nil {
			for _, e := range jr.Timeline.Events {
				if e.Sender == u.botID() {
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
	all := func(*event.Event) bool { return true }
	checked := 0 // done sees each event once, in order
	got, ok := u.syncUntil(timeout, all, func(got []*event.Event) bool {
		for ; checked < len(got); checked++ {
			if done(got[checked]) {
				return true
			}
		}
		return false
	})
	if !ok {
		u.t.Fatalf("waiting for %s: not there after %s\nbot output:\n%s", what, timeout, u.botOutput())
	}
	return got
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
// room posts a watcher notification (a full shared mount) in both, as a
// structured message: on Matrix the outage draft is a link (<a href>) and
// the FAS users of disk.escalate are mentioned (m.mentions and pills) as
// users of matrix.fas_server; on IRC they are named.
func TestMatrixWatchNotifiesBoth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const watchUser, watchPassword = "kojiwatch", "watch-password"
	self, pwFile := matrixBotUser(ctx, t, watchUser, watchPassword)
	alice := matrixJoin(t, "alice")
	keepCheckingIn(t, "")
	u, _ := watchBot(t, "kojibot-mwatch", map[string]any{"matrix": map[string]any{
		"homeserver": hs.URL, "user_id": string(self), "password_file": pwFile,
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
	var notice *event.Event
	alice.roomEvents(90*time.Second, "the notification on Matrix", func(e *event.Event) bool {
		if e.Sender == watcher && strings.Contains(mBody(e), want) {
			onMatrix, notice = mBody(e), e
			return true
		}
		return false
	})
	// The same alert: the same outage draft.
	draft := regexp.MustCompile(`outage draft (o[0-9]+): (http://\S+/drafts/[a-z0-9]+)`)
	m := draft.FindStringSubmatch(onIRC)
	if m == nil || !strings.Contains(onMatrix, m[0]) {
		t.Fatalf("the notifications differ:\nIRC    %q\nMatrix %q", onIRC, onMatrix)
	}
	if !strings.HasSuffix(onIRC, m[2]+" — escalate: kevin, nirik") {
		t.Errorf("IRC notification %q: want the draft's link, then the people to escalate to", onIRC)
	}
	html, _ := notice.Content.Raw["formatted_body"].(string)
	for _, part := range []string{
		`<a href="` + m[2] + `">outage draft ` + m[1] + `</a>`,
		`escalate: <a href="https://matrix.to/#/@kevin:` + matrixhs.ServerName + `">@kevin:` + matrixhs.ServerName + `</a>, ` +
			`<a href="https://matrix.to/#/@nirik:` + matrixhs.ServerName + `">@nirik:` + matrixhs.ServerName + `</a>`,
	} {
		if !strings.Contains(html, part) {
			t.Errorf("Matrix notification's formatted_body lacks %s:\n%s", part, html)
		}
	}
	mentions, _ := notice.Content.Raw["m.mentions"].(map[string]any)
	if got, want := fmt.Sprint(mentions["user_ids"]), fmt.Sprintf("[@kevin:%[1]s @nirik:%[1]s]", matrixhs.ServerName); got != want {
		t.Errorf("Matrix notification mentions %v, want %s", notice.Content.Raw["m.mentions"], want)
	}
}

// guestHS is a second Dendrite (fedora.im too) that lets anyone register
// a guest, with a bot of its own that keeps the Matrix defaults
// (max_lines 30) and has an HTTP server for long replies.
type guestHS struct {
	hs      *matrixhs.Server
	room    id.RoomID
	bot     id.UserID
	webBase string
}

// startGuestHS starts the second homeserver and its bot until t ends.
func startGuestHS(t *testing.T) *guestHS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	h, err := matrixhs.StartWith(ctx, matrixhs.BinDir(), filepath.Join(dir, "dendrite"), matrixhs.Options{Guests: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	g := &guestHS{hs: h, bot: "@kojiguest:" + matrixhs.ServerName}
	const botPassword, adminPassword = "guest-bot-password", "guest-admin-password"
	for u, pw := range map[string]string{"kojiguest": botPassword, "opsguest": adminPassword, "alice": "alice-m-password"} {
		if _, err := h.CreateUser(ctx, u, pw); err != nil {
			t.Fatal(err)
		}
	}
	admin := g.login(t, "opsguest", adminPassword)
	// Guests may join only where m.room.guest_access is can_join.
	resp, err := admin.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomAliasName: "ops", Name: "ops",
		InitialState: []*event.Event{{Type: event.StateGuestAccess, StateKey: new(string),
			Content: event.Content{Parsed: &event.GuestAccessEventContent{GuestAccess: event.GuestAccessCanJoin}}}}})
	if err != nil {
		t.Fatalf("create room: %v", err)
	}
	g.room = resp.RoomID
	pwFile := filepath.Join(dir, "matrix-password")
	if err := os.WriteFile(pwFile, []byte(botPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	g.webBase = fmt.Sprintf("http://127.0.0.1:%d", port)
	bldStartBot(t, "kojibot-mguest", "#mguest", map[string]any{
		"matrix": map[string]any{"homeserver": h.URL, "user_id": string(g.bot), "password_file": pwFile,
			"rooms": []string{"#ops:" + matrixhs.ServerName}},
		"http": map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", port), "public_url": g.webBase},
	})
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var m event.MemberEventContent
		if err := admin.StateEvent(ctx, g.room, event.StateMember, string(g.bot), &m); err == nil && m.Membership == event.MembershipJoin {
			return g
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the bot did not join the room of the second homeserver\n%s", tail(bots["kojibot-mguest"].Output(), 40))
	return nil
}

func (g *guestHS) login(t *testing.T, user, password string) *mautrix.Client {
	t.Helper()
	cli, err := mautrix.NewClient(g.hs.URL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Login(context.Background(), &mautrix.ReqLogin{Type: mautrix.AuthTypePassword,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: user},
		Password:   password, StoreCredentials: true}); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return cli
}

// join makes cli join the room and returns it as a user there.
func (g *guestHS) join(t *testing.T, cli *mautrix.Client) *mUser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cli.JoinRoom(ctx, string(g.room), nil); err != nil {
		t.Fatalf("join: %v", err)
	}
	resp, err := cli.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
	if err != nil {
		t.Fatal(err)
	}
	return &mUser{t: t, cli: cli, since: resp.NextBatch, room: g.room, bot: g.bot, botName: "kojibot-mguest"}
}

// TestMatrixGuestsAndLongReplies runs against a bot with the Matrix
// defaults on a homeserver that allows guests.
func TestMatrixGuestsAndLongReplies(t *testing.T) {
	g := startGuestHS(t)

	// A 40-line reply with max_lines 30 is one message: 29 lines and a
	// last one linking to the whole reply.
	t.Run("LongReplyOneMessage", func(t *testing.T) {
		addHosts(t, 4) // 36 + 4: `hosts` has 40 lines
		alice := g.join(t, g.login(t, "alice", "alice-m-password"))
		evt := alice.say("hosts")
		es := alice.botNotices(evt, 1)
		es = append(es, alice.botNoticesFor(2*time.Second)...)
		if n := countReplies(es, evt); n != 1 {
			t.Fatalf("hosts: %d messages, want 1", n)
		}
		var body string
		for _, e := range es {
			if replyTo(e) == evt {
				body = mBody(e)
			}
		}
		lines := strings.Split(body, "\n")
		if len(lines) != 30 {
			t.Fatalf("the reply has %d lines, want max_lines (30):\n%s", len(lines), body)
		}
		m := regexp.MustCompile(`^\(([0-9]+) more lines: (http://\S+)\)$`).FindStringSubmatch(lines[29])
		if m == nil || !strings.HasPrefix(m[2], g.webBase+"/") {
			t.Fatalf("last line %q, want (N more lines: %s/…)", lines[29], g.webBase)
		}
		code, page := httpGet(t, m[2])
		if code != 200 {
			t.Fatalf("GET %s: %d", m[2], code)
		}
		all := strings.Split(strings.TrimRight(page, "\n"), "\n")
		if len(all) < 40 || fmt.Sprint(len(all)-29) != m[1] {
			t.Errorf("the page has %d lines; the message says %s more than its 29", len(all), m[1])
		}
		for i := 1; i <= 34; i++ {
			if h := fmt.Sprintf("bkernel%02d.fedoraproject.org", i); !strings.Contains(page, h) {
				t.Errorf("the page lacks %s", h)
			}
		}
	})

	// A guest (fedora.im, like a FAS user, but registered as a guest) is
	// never identified: capacity is denied and the database unchanged.
	t.Run("GuestDenied", func(t *testing.T) {
		cli, err := mautrix.NewClient(g.hs.URL, "", "")
		if err != nil {
			t.Fatal(err)
		}
		reg, _, err := cli.RegisterGuest(context.Background(), &mautrix.ReqRegister[any]{})
		if err != nil {
			t.Fatalf("guest registration: %v", err)
		}
		cli.UserID, cli.AccessToken = reg.UserID, reg.AccessToken
		if _, server, _ := strings.Cut(string(reg.UserID), ":"); server != matrixhs.ServerName {
			t.Fatalf("guest %s is not on %s", reg.UserID, matrixhs.ServerName)
		}
		guest := g.join(t, cli)
		before := snapshot(t, "koji")
		got := guest.ask("capacity ppc3 8")
		if !strings.HasPrefix(got, string(reg.UserID)+": denied: ") || !strings.Contains(got, "guests are never identified") {
			t.Errorf("guest %s: %q, want denied as a guest", reg.UserID, got)
		}
		// Nor is the guest identified for the read-only commands.
		for _, cmd := range []string{"hosts", "connections", "jobs --all"} {
			if got := guest.ask(cmd); !strings.HasPrefix(got, string(reg.UserID)+": denied: ") || !strings.Contains(got, "guests are never identified") {
				t.Errorf("%s from guest %s: %q, want denied as a guest", cmd, reg.UserID, got)
			}
		}
		if who := guest.ask("whoami"); strings.Contains(who, "FAS user "+strings.TrimPrefix(strings.Split(string(reg.UserID), ":")[0], "@")) {
			t.Errorf("whoami of the guest: %q, want no FAS user", who)
		}
		if after := snapshot(t, "koji"); after != before {
			t.Errorf("the database changed after the denial:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// addHosts adds n builders bkernel31… to the koji database until t ends.
func addHosts(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := sb.Koji.AdminClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Logout(context.Background()) }()
	var names []string
	for i := 31; i < 31+n; i++ {
		name := fmt.Sprintf("bkernel%02d.fedoraproject.org", i)
		names = append(names, name)
		if _, err := admin.Int(ctx, "addHost", name, []string{"x86_64"}); err != nil {
			t.Fatalf("adding %s: %v", name, err)
		}
		if _, err := admin.Call(ctx, "editHost", name, realkoji.Kwargs{"capacity": 2.0}); err != nil {
			t.Fatalf("editing %s: %v", name, err)
		}
		if err := sb.Koji.CheckIn(ctx, name, 0, true); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, q := range []string{
			// Koji has no call that removes a host: its rows go.
			`DELETE FROM host_channels WHERE host_id IN (SELECT id FROM host WHERE name = ANY($1))`,
			`DELETE FROM host_config WHERE host_id IN (SELECT id FROM host WHERE name = ANY($1))`,
			`DELETE FROM host WHERE name = ANY($1)`,
			`DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = ANY($1))`,
			`DELETE FROM user_krb_principals WHERE user_id IN (SELECT id FROM users WHERE name = ANY($1))`,
			`DELETE FROM users WHERE name = ANY($1)`,
		} {
			if _, err := sb.DBs["koji"].Exec(ctx, q, names); err != nil {
				t.Errorf("removing the hosts: %v", err)
			}
		}
	})
}

// arrival is a room event and when a client's /sync delivered it.
type arrival struct {
	evt *event.Event
	at  time.Time
}

// syncEvents long-polls cli's /sync from since until ctx ends and sends
// every timeline event of room, with its arrival time, to the channel.
func syncEvents(ctx context.Context, cli *mautrix.Client, since string, room id.RoomID) <-chan arrival {
	ch := make(chan arrival, 64)
	go func() {
		defer close(ch)
		for ctx.Err() == nil {
			resp, err := cli.SyncRequest(ctx, 30000, since, "", false, event.PresenceOnline)
			at := time.Now()
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			since = resp.NextBatch
			if jr := resp.Rooms.Join[room]; jr != nil {
				for _, e := range jr.Timeline.Events {
					select {
					case ch <- arrival{e, at}:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	}()
	return ch
}

// awaitEvent reads ch until match holds, and returns the arrival time.
func awaitEvent(b *testing.B, ch <-chan arrival, what string, match func(*event.Event) bool) time.Time {
	b.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case a, ok := <-ch:
			if !ok {
				b.Fatalf("waiting for %s: the sync stopped", what)
			}
			if match(a.evt) {
				return a.at
			}
		case <-timeout:
			b.Fatalf("waiting for %s: nothing after 30s", what)
		}
	}
}

// BenchmarkMatrixReply measures, over 60 tries, the time from a client's
// "!koji host ppc3" sent to Dendrite to the bot's reply seen by that
// client's /sync (long-polling), and beside it the Matrix floor: a message
// of one client seen by another client's /sync on the same homeserver. The
// bot is built without the race detector. Run:
// go test -run '^$' -bench MatrixReply -benchtime 1x ./tests/e2e/
func BenchmarkMatrixReply(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bin, err := sandbox.BuildBinary(b.TempDir(), false)
	if err != nil {
		b.Fatal(err)
	}
	const benchUser, benchPassword = "kojibench", "bench-password"
	if _, err := hs.CreateUser(ctx, benchUser, benchPassword); err != nil {
		b.Fatal(err)
	}
	alice, err := matrixLogin(ctx, "alice")
	if err != nil {
		b.Fatal(err)
	}
	bob, err := matrixLogin(ctx, "bob")
	if err != nil {
		b.Fatal(err)
	}
	resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomAliasName: "bench", Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	room := resp.RoomID
	if _, err := bob.JoinRoom(ctx, string(room), nil); err != nil {
		b.Fatal(err)
	}
	pwFile := filepath.Join(b.TempDir(), "matrix-password")
	if err := os.WriteFile(pwFile, []byte(benchPassword+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	const nick = "kojibot-mbench"
	botChannel[nick] = "#mbench"
	path, err := sb.WriteConfig(ctx, sandbox.BotConfig{Nick: nick, DB: "koji", Channel: "#mbench", Lenient: true,
		Extra: map[string]any{"matrix": map[string]any{"homeserver": hs.URL, "user_id": "@" + benchUser + ":" + matrixhs.ServerName,
			"password_file": pwFile, "rooms": []string{"#bench:" + matrixhs.ServerName}},
			// The tries come faster than a person's commands: the inbound
			// limit must not be what is measured.
			"commands": map[string]any{"user_rate": 1000, "user_burst": 1000}}})
	if err != nil {
		b.Fatal(err)
	}
	bot, err := sb.StartBot(bin, nick, path)
	if err != nil {
		b.Fatal(err)
	}
	bots[nick] = bot
	defer func() { bot.Stop(); delete(bots, nick) }()
	self := id.UserID("@" + benchUser + ":" + matrixhs.ServerName)
	joined := false
	for deadline := time.Now().Add(2 * time.Minute); !joined && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var m event.MemberEventContent
		joined = alice.StateEvent(ctx, room, event.StateMember, string(self), &m) == nil && m.Membership == event.MembershipJoin
	}
	if !joined {
		b.Fatalf("the bench bot did not join:\n%s", tail(bot.Output(), 30))
	}
	initial := func(cli *mautrix.Client) string {
		r, err := cli.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
		if err != nil {
			b.Fatal(err)
		}
		return r.NextBatch
	}
	aliceEvents := syncEvents(ctx, alice, initial(alice), room)
	bobEvents := syncEvents(ctx, bob, initial(bob), room)
	const tries = 60
	var reply, floor []time.Duration
	b.ResetTimer()
	for i := 0; i < tries; i++ {
		start := time.Now()
		sent, err := alice.SendText(ctx, room, "!koji host ppc3")
		if err != nil {
			b.Fatal(err)
		}
		var body string
		at := awaitEvent(b, aliceEvents, "the reply", func(e *event.Event) bool {
			body = mBody(e)
			return e.Sender == self && replyTo(e) == sent.EventID
		})
		reply = append(reply, at.Sub(start))
		if !strings.Contains(body, "ppc3.fedora.redhat.com") || strings.Contains(body, "error:") {
			b.Fatalf("reply %d: %q", i, body)
		}
		start = time.Now()
		msg, err := alice.SendText(ctx, room, fmt.Sprintf("floor %d", i))
		if err != nil {
			b.Fatal(err)
		}
		at = awaitEvent(b, bobEvents, "the message at bob", func(e *event.Event) bool { return e.ID == msg.EventID })
		floor = append(floor, at.Sub(start))
	}
	b.StopTimer()
	pct := func(d []time.Duration, p int) float64 {
		s := append([]time.Duration(nil), d...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return float64(s[(len(s)-1)*p/100].Microseconds()) / 1000
	}
	b.ReportMetric(pct(reply, 50), "reply-p50-ms")
	b.ReportMetric(pct(reply, 99), "reply-p99-ms")
	b.ReportMetric(pct(floor, 50), "floor-p50-ms")
	b.ReportMetric(pct(floor, 99), "floor-p99-ms")
}

// TestMatrixCrashNotReplayed: a bot killed (SIGKILL) while a command from
// Matrix runs does not run it again when it starts again from its state
// store; it tells the caller the command was interrupted, and the
// database shows no change.
func TestMatrixCrashNotReplayed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const crashUser, crashPassword, nick = "kojicrash", "crash-password", "kojibot-mcrash"
	self, pwFile := matrixBotUser(ctx, t, crashUser, crashPassword)
	// Its own prefix in the main bot's room, so that only it answers.
	bldStartBot(t, nick, "#mcrash", map[string]any{"matrix": map[string]any{
		"homeserver": hs.URL, "user_id": string(self), "password_file": pwFile,
		"rooms": []string{roomAlias}, "command_prefix": "!crash"}})
	path := bots[nick].Config
	alice := matrixJoin(t, "alice")
	waitMember(t, self)

	// Hold ppc3's row, so that the bot's capacity waits inside its
	// transaction.
	release := holdKojiRows(ctx, t, `SELECT 1 FROM host WHERE name = 'ppc3.fedora.redhat.com' FOR UPDATE`)
	before := snapshot(t, "koji")
	sent, err := alice.cli.SendText(ctx, matrixRoom, "!crash capacity ppc3 7")
	if err != nil {
		t.Fatal(err)
	}
	waiting := func() int {
		return query[int](t, "koji", `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
	}
	for deadline := time.Now().Add(replyTimeout); waiting() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the bot's capacity never waited for the row\n%s", tail(bots[nick].Output(), 30))
		}
	}
	if err := syscall.Kill(bots[nick].PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for !bots[nick].Exited() {
		time.Sleep(20 * time.Millisecond)
	}
	release()
	b, err := sb.StartBot(binary, nick, path)
	if err != nil {
		t.Fatal(err)
	}
	bots[nick] = b
	t.Cleanup(b.Stop)
	var told string
	es := alice.roomEvents(2*replyTimeout, "the notice that the command was interrupted", func(e *event.Event) bool {
		if e.Sender == self && replyTo(e) == sent.EventID && strings.Contains(mBody(e), "interrupted") {
			told = mBody(e)
			return true
		}
		return false
	})
	// The bot works on: a later command is answered; the first never is.
	later, err := alice.cli.SendText(ctx, matrixRoom, "!crash host ppc3")
	if err != nil {
		t.Fatal(err)
	}
	es = append(es, alice.roomEvents(replyTimeout, "the answer to a later command", func(e *event.Event) bool {
		return e.Sender == self && replyTo(e) == later.EventID
	})...)
	es = append(es, alice.botNoticesFor(2*time.Second)...)
	if want := "@alice:fedora.im: error: interrupted: kojibot stopped before \"capacity ppc3 7\" finished"; !strings.HasPrefix(told, want) {
		t.Errorf("told %q, want prefix %q", told, want)
	}
	n := 0
	for _, e := range es {
		if e.Sender == self && replyTo(e) == sent.EventID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d replies to the interrupted command, want 1 (the notice)", n)
	}
	if after := snapshot(t, "koji"); after != before {
		t.Errorf("the database changed: the command ran\nbefore %s\nafter  %s", before, after)
	}
}

// waitMember waits until user has joined the main Matrix room.
func waitMember(t *testing.T, user id.UserID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := matrixLogin(ctx, "opsadmin")
	if err != nil {
		t.Fatal(err)
	}
	for ctx.Err() == nil {
		var m event.MemberEventContent
		if admin.StateEvent(ctx, matrixRoom, event.StateMember, string(user), &m) == nil && m.Membership == event.MembershipJoin {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not join %s", user, roomAlias)
}

// matrixBotUser creates a bot's account on the homeserver and returns its
// Matrix id and a file holding its password (matrix.password_file).
func matrixBotUser(ctx context.Context, t *testing.T, user, password string) (id.UserID, string) {
	t.Helper()
	if _, err := hs.CreateUser(ctx, user, password); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(t.TempDir(), "matrix-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return id.UserID("@" + user + ":" + matrixhs.ServerName), pwFile
}
