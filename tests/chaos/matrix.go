package chaos

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"maunium.net/go/mautrix"
	mevent "maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/fedora-infra/kojibot/tests/harness/matrixhs"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// matrixWatcher is the Matrix account that asks the bot something in the
// room, to see that it answers there too: a FAS user outside the ops
// group, as the IRC watcher is a nick without an account.
const matrixWatcher = "chaosw"

// matrixPassword is an account's password on the homeserver (Dendrite
// wants at least 8 characters).
func matrixPassword(account string) string { return account + "-matrix-pw" }

// matrixBot is the bot's Matrix user id.
var matrixBot = id.UserID("@" + sandbox.MatrixBotUser + ":" + matrixhs.ServerName)

// mchat is one Matrix account in the ops room: it sends commands and
// syncs the room in the background, keeping every event it sees.
type mchat struct {
	cli  *mautrix.Client
	self id.UserID
	room id.RoomID

	mu     sync.Mutex
	events []*mevent.Event
	mine   map[id.EventID]bool // the commands it sent
	since  string
	stop   context.CancelFunc
	done   chan struct{}
}

// matrixLogin logs user in on the sandbox's homeserver and joins the
// room.
func (f *farm) matrixLogin(ctx context.Context, user, password string) (*mautrix.Client, error) {
	cli, err := mautrix.NewClient(f.matrix.HS.URL, "", "")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := cli.Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: user},
		Password:   password, StoreCredentials: true}); err != nil {
		return nil, fmt.Errorf("matrix login %s: %w", user, err)
	}
	if _, err := cli.JoinRoom(ctx, string(f.matrix.RoomID), nil); err != nil {
		return nil, fmt.Errorf("matrix join %s: %w", user, err)
	}
	return cli, nil
}

// openChat starts syncing the room as cli from now on (what was said
// before is not kept), retrying while the homeserver is down.
func (f *farm) openChat(ctx context.Context, cli *mautrix.Client) (*mchat, error) {
	m := &mchat{cli: cli, self: cli.UserID, room: f.matrix.RoomID, mine: map[id.EventID]bool{}, done: make(chan struct{})}
	var last error
	for i := 0; i < 60; i++ {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := cli.SyncRequest(sctx, 0, "", `{"room":{"timeline":{"limit":1}}}`, false, mevent.PresenceOnline)
		cancel()
		if err == nil {
			m.since = resp.NextBatch
			last = nil
			break
		}
		last = err
		time.Sleep(time.Second)
	}
	if last != nil {
		return nil, last
	}
	sctx, stop := context.WithCancel(context.Background())
	m.stop = stop
	go m.run(sctx)
	return m, nil
}

// run syncs until ctx ends, keeping the room's timeline events.
func (m *mchat) run(ctx context.Context) {
	defer close(m.done)
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := m.cli.SyncRequest(rctx, 1000, m.since, "", false, mevent.PresenceOnline)
		cancel()
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
			continue
		}
		m.mu.Lock()
		m.since = resp.NextBatch
		if jr := resp.Rooms.Join[m.room]; jr != nil {
			m.events = append(m.events, jr.Timeline.Events...)
		}
		m.mu.Unlock()
	}
}

// close stops the sync.
func (m *mchat) close() {
	m.stop()
	<-m.done
}

// say sends "!koji text"; it reports whether the homeserver took it.
func (m *mchat) say(text string) (id.EventID, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := m.cli.SendText(ctx, m.room, "!koji "+text)
	if err != nil {
		return "", false
	}
	m.mu.Lock()
	m.mine[resp.EventID] = true
	m.mu.Unlock()
	return resp.EventID, true
}

// sentIt reports whether evt is a command m sent.
func (m *mchat) sentIt(evt id.EventID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mine[evt]
}

// botEvents are the bot's messages seen so far, edits left out.
func (m *mchat) botEvents() []*mevent.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*mevent.Event
	for _, e := range m.events {
		if e.Sender != matrixBot || e.Type != mevent.EventMessage || replaces(e) != "" {
			continue
		}
		out = append(out, e)
	}
	return out
}

// lines are the bot's replies to the commands m sent that address it
// (its mention first): a job's progress message, which addresses no
// one, is left out, as IRC's channel lines without the caller's nick.
func (m *mchat) lines() []line {
	prefix := string(m.self) + ": "
	var out []line
	for _, e := range m.botEvents() {
		if b := body(e); m.sentIt(replyTo(e)) && strings.HasPrefix(b, prefix) {
			out = append(out, line{text: strings.TrimPrefix(b, prefix), at: time.UnixMilli(e.Timestamp)})
		}
	}
	return out
}

// roomLines are the bodies of every message of the bot in the room.
func (m *mchat) roomLines() []string {
	var out []string
	for _, e := range m.botEvents() {
		out = append(out, body(e))
	}
	return out
}

// answers asks the bot "jobs" and reports whether it answered within 10s.
func (m *mchat) answers() bool {
	evt, ok := m.say("jobs")
	if !ok {
		return false
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range m.botEvents() {
			if replyTo(e) == evt {
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func replyTo(e *mevent.Event) id.EventID {
	rel, _ := e.Content.Raw["m.relates_to"].(map[string]any)
	irt, _ := rel["m.in_reply_to"].(map[string]any)
	s, _ := irt["event_id"].(string)
	return id.EventID(s)
}

// replaces is the event an edit replaces, "" when e is no edit.
func replaces(e *mevent.Event) id.EventID {
	rel, _ := e.Content.Raw["m.relates_to"].(map[string]any)
	if t, _ := rel["rel_type"].(string); t != "m.replace" {
		return ""
	}
	s, _ := rel["event_id"].(string)
	return id.EventID(s)
}

func body(e *mevent.Event) string {
	s, _ := e.Content.Raw["body"].(string)
	return s
}
