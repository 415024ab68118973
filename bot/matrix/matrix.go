// Package matrix is kojibot's Matrix transport: it syncs with the
// homeserver (keeping the sync token in the state store, with the commands
// taken from each batch, so that a restart neither runs a command twice
// nor drops one silently), joins the configured rooms and leaves the
// others, hands command lines to the same Handler as IRC with the sender's
// Matrix id as the caller, and answers with m.notice replies that mention
// the caller.
package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/fedora-infra/kojibot/bot"
	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands"
	"github.com/fedora-infra/kojibot/config"
)

// PlacePrefix starts every Matrix place: "matrix:!room:server".
const PlacePrefix = "matrix:"

// State keys in the state store.
const (
	// keySync holds the syncState: the sync token and the commands taken
	// from the synced batches that have not finished yet.
	keySync = "matrix.sync"
	// keyNextBatch is where an earlier version kept the bare sync token;
	// it is read when keySync is missing.
	keyNextBatch   = "matrix.next_batch"
	keyAccessToken = "matrix.access_token" // only when logged in with a password
)

// finalKey is the content key that marks a command's last reply (true).
const finalKey = "org.fedoraproject.kojibot.final"

// syncState is what the store keeps of the sync, in one record so that it
// is written at once: the token to sync from (next_batch) and the
// commands taken from the batches up to it that have not finished. It is
// written before those commands start, so a crash can neither run a
// command of an earlier batch again (its batch is behind the token) nor
// lose one silently: those still listed as taken when the bot starts were
// interrupted, and their callers are told so instead of seeing them run a
// second time.
type syncState struct {
	NextBatch string  `json:"next_batch"`
	Taken     []taken `json:"taken,omitempty"`
}

// taken is a command event handed to the Handler and not finished.
type taken struct {
	Room   id.RoomID  `json:"room"`
	Event  id.EventID `json:"event"`
	Sender id.UserID  `json:"sender"`
	// Text is the command line without the prefix.
	Text string `json:"text"`
}

// Handler runs one command: bot.Handler, the interface to the commands
// that both transports share.
type Handler = bot.Handler

// KV is the part of the state store the transport needs.
type KV interface {
	Get(ctx context.Context, key string) (string, bool, error)
	Put(ctx context.Context, key, value string) error
}

// Options are what New builds a Bot from.
type Options struct {
	Config  config.Matrix
	Handler Handler
	// State keeps the sync token (and a token obtained by password login).
	State KV
	// Log receives operational messages; nil discards. Secrets never
	// reach it.
	Log *slog.Logger
	// LongOutput, when set, publishes a reply longer than max_lines and
	// returns its URL.
	LongOutput func(text string) (url string, ok bool)
	// HTTPClient talks to the homeserver; nil is a client with a timeout.
	HTTPClient *http.Client
	// BackoffMax caps the wait between attempts while the homeserver is
	// down; 0 is a minute.
	BackoffMax time.Duration
	// Limits is the inbound rate limit: a bucket for each sender linked to
	// a FAS user (see Identify), one shared by everyone else: guests and
	// users of other servers, where anyone can make accounts. Nil: no
	// limit.
	Limits *bot.UserLimits
	// Identify reports whether a sender's Matrix id resolves to a FAS user
	// (matrix.fas_server, acl.accounts or a FASJSON link). It is called on
	// a worker, never in the sync loop, so it may ask FASJSON. Nil: only
	// the users of matrix.fas_server that are not guests are linked.
	Identify func(ctx context.Context, sender string) bool
	// Workers is how many commands run at once; 0 is 8.
	Workers int
}

// Bot is the bot's Matrix side. Create it with New, then Run it.
type Bot struct {
	opts    Options
	log     *slog.Logger
	cli     *mautrix.Client
	self    id.UserID
	started time.Time

	connected atomic.Bool
	notify    chan reply.Message
	wg        sync.WaitGroup

	// qmu guards the callers' queues: the commands of each caller run one
	// at a time, in order; callers with commands waiting are served in
	// turn by at most opts.Workers workers.
	qmu    sync.Mutex
	queues map[id.UserID]*callerQueue
	ready  []id.UserID // callers with commands waiting and none running
	busy   int         // commands running

	// saveMu orders the writes of the sync state: each write holds it from
	// the snapshot to the Put, so the last snapshot is the one stored.
	saveMu sync.Mutex

	mu      sync.Mutex
	since   string               // the sync token of the last batch taken
	running map[id.EventID]taken // commands taken and not finished
	// interrupted are the commands that were taken and not finished when
	// the bot last stopped; their callers are told, once.
	interrupted []taken
	// tellTries counts the attempts at telling them; after maxTellTries
	// those left (a room no longer served) are dropped, logged.
	tellTries  int
	rooms      map[id.RoomID]bool // configured rooms, joined
	pending    []string           // configured rooms not joined yet
	notifyRoom id.RoomID
	warned     map[id.RoomID]bool // encrypted rooms told once
	encrypted  map[id.RoomID]bool
	seen       map[id.EventID]bool
	names      map[id.RoomID]*roomName
}

// roomName is what the bot knows of a room's names, to show it by name
// (jobs, the audit) rather than by its id alone.
type roomName struct {
	entry string // the configured entry it was joined for, when an alias
	alias string // m.room.canonical_alias
	alt   []string
	name  string // m.room.name
}

// callerQueue is one caller's commands waiting to run.
type callerQueue struct {
	cmds    []command
	running bool
	// told is set once the caller was told their queue is full, until it
	// drains.
	told bool
}

// maxQueued is how many commands of one caller may wait; more are refused.
const maxQueued = 20

// New checks opts and returns a Bot. opts.Config is a validated matrix:
// section (config.Default holds the defaults): New fills in none of it.
func New(opts Options) (*Bot, error) {
	if opts.Handler == nil || opts.State == nil {
		return nil, errors.New("matrix: nil Handler or State")
	}
	if !config.ValidMatrixUserID(opts.Config.UserID) {
		return nil, fmt.Errorf("matrix: %q is not a Matrix user id", opts.Config.UserID)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = time.Minute
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 90 * time.Second}
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	return &Bot{opts: opts, log: opts.Log, self: id.UserID(opts.Config.UserID),
		notify: make(chan reply.Message, 100), queues: map[id.UserID]*callerQueue{},
		rooms: map[id.RoomID]bool{}, warned: map[id.RoomID]bool{}, encrypted: map[id.RoomID]bool{},
		seen: map[id.EventID]bool{}, running: map[id.EventID]taken{}, names: map[id.RoomID]*roomName{}}, nil
}

// Connected reports whether the last /sync succeeded (for /healthz).
func (b *Bot) Connected() bool { return b.connected.Load() }

// Notify queues m for matrix.notify_room. It never blocks: when the queue
// is full the notification is dropped and logged. The FAS users m
// mentions are mentioned as Matrix users of matrix.fas_server, when set.
func (b *Bot) Notify(m reply.Message) {
	select {
	case b.notify <- m:
	default:
		b.log.Warn("matrix notification dropped: queue full", "text", m.String())
	}
}

// Run connects, joins and syncs until ctx ends; a homeserver that is down
// is retried with backoff. It returns an error only when the bot cannot
// log in at all.
func (b *Bot) Run(ctx context.Context) error {
	b.started = time.Now()
	if err := b.connect(ctx); err != nil {
		return err
	}
	b.pending = append([]string(nil), b.opts.Config.Rooms...)
	st, err := b.loadSync(ctx)
	if err != nil {
		return err
	}
	since := st.NextBatch
	b.mu.Lock()
	b.since, b.interrupted = since, st.Taken
	b.mu.Unlock()
	if len(st.Taken) > 0 {
		b.log.Warn("matrix: commands interrupted by the last stop; they are not run again", "count", len(st.Taken))
	}
	b.wg.Add(1)
	go func() { defer b.wg.Done(); b.sendNotifications(ctx) }()
	defer b.wg.Wait()
	bo := backoff{max: b.opts.BackoffMax}
	first := since == ""
	for ctx.Err() == nil {
		b.joinPending(ctx)
		b.tellInterrupted(ctx)
		resp, err := b.cli.SyncRequest(ctx, 30000, since, "", false, event.PresenceOnline)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			b.connected.Store(false)
			wait := bo.next()
			if d, ok := retryAfter(err); ok {
				wait = d
			}
			b.log.Warn("matrix sync failed; retrying", "error", redactErr(err), "in", wait)
			sleep(ctx, wait)
			continue
		}
		if !b.connected.Swap(true) {
			b.log.Info("matrix sync up", "user_id", b.self)
		}
		bo.reset()
		cmds := b.handleSync(ctx, resp, first)
		first = false
		since = resp.NextBatch
		// The token and the commands taken from this batch are stored
		// before any of them starts.
		b.mu.Lock()
		b.since = since
		for _, c := range cmds {
			b.running[c.t.Event] = c.t
		}
		b.mu.Unlock()
		if err := b.saveSync(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			b.log.Error("matrix: saving the sync state; the batch's commands are refused", "error", err)
			for _, c := range cmds {
				b.finished(c.t.Event)
				c.out.Send(reply.Text(reply.Error, "the bot cannot record its Matrix sync position in its state store, so this command was not run (a restart could run it twice); ask again later"))
			}
			continue
		}
		for _, c := range cmds {
			b.enqueue(ctx, c)
		}
	}
	b.connected.Store(false)
	return nil
}

// connect builds the client: discovers the homeserver when not given, and
// logs in with the password when no access token is configured.
func (b *Bot) connect(ctx context.Context) error {
	cfg := b.opts.Config
	hs := cfg.Homeserver
	if hs == "" {
		_, server, _ := strings.Cut(cfg.UserID[1:], ":")
		wk, err := mautrix.DiscoverClientAPIWithClient(ctx, b.opts.HTTPClient, server)
		if err != nil || wk == nil {
			return fmt.Errorf("matrix: discovering the homeserver of %s: %v", server, err)
		}
		hs = wk.Homeserver.BaseURL
	}
	token := cfg.AccessToken.Reveal()
	if token == "" {
		stored, _, err := b.opts.State.Get(ctx, keyAccessToken)
		if err != nil {
			return fmt.Errorf("matrix: reading the stored token: %w", err)
		}
		token = stored
	}
	cli, err := mautrix.NewClient(hs, b.self, token)
	if err != nil {
		return fmt.Errorf("matrix: homeserver %q: %w", hs, err)
	}
	cli.Client = b.opts.HTTPClient
	b.cli = cli
	if token == "" {
		resp, err := cli.Login(ctx, &mautrix.ReqLogin{
			Type:       mautrix.AuthTypePassword,
			Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: cfg.UserID},
			Password:   cfg.Password.Reveal(), InitialDeviceDisplayName: "kojibot", StoreCredentials: true,
		})
		if err != nil {
			return fmt.Errorf("matrix: logging in as %s: %s", cfg.UserID, redactErr(err))
		}
		if err := b.opts.State.Put(ctx, keyAccessToken, resp.AccessToken); err != nil {
			return fmt.Errorf("matrix: keeping the access token: %w", err)
		}
	}
	return nil
}

// joinPending joins the configured rooms not joined yet.
func (b *Bot) joinPending(ctx context.Context) {
	b.mu.Lock()
	pending := append([]string(nil), b.pending...)
	b.mu.Unlock()
	for _, r := range pending {
		b.join(ctx, r, r)
	}
}

// join joins target (a room id or alias) for entry, a configured room
// still pending, and records it as served when that works.
func (b *Bot) join(ctx context.Context, entry, target string) bool {
	resp, err := b.cli.JoinRoom(ctx, target, nil)
	if err != nil {
		b.log.Warn("matrix: cannot join room yet", "room", entry, "error", redactErr(err))
		return false
	}
	b.serve(entry, resp.RoomID)
	b.log.Info("matrix: joined", "room", entry, "room_id", resp.RoomID)
	return true
}

// serve records room as the configured entry's: served, and no longer
// pending.
func (b *Bot) serve(entry string, room id.RoomID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rooms[room] = true
	if entry == b.opts.Config.NotifyRoom || (b.opts.Config.NotifyRoom == "" && b.notifyRoom == "") {
		b.notifyRoom = room
	}
	if strings.HasPrefix(entry, "#") {
		b.nameOf(room).entry = entry
	}
	for i, p := range b.pending {
		if p == entry {
			b.pending = append(b.pending[:i:i], b.pending[i+1:]...)
			break
		}
	}
}

// nameOf is what is known of room's names; b.mu is held.
func (b *Bot) nameOf(room id.RoomID) *roomName {
	n := b.names[room]
	if n == nil {
		n = &roomName{}
		b.names[room] = n
	}
	return n
}

// pendingEntry is the configured room, not joined yet, that room is: by
// its id, an alias the room's state lists (canonical or alternative), or
// an alias the homeserver resolves to it. ok is false when room is none
// of them; sure is false when that is not known, because an alias could
// not be resolved (a federation failure, a 5xx): such a room is neither
// served nor left yet.
func (b *Bot) pendingEntry(ctx context.Context, room id.RoomID) (entry string, ok, sure bool) {
	b.mu.Lock()
	pending := append([]string(nil), b.pending...)
	var aliases []string
	if n := b.names[room]; n != nil {
		aliases = append([]string{n.alias}, n.alt...)
	}
	b.mu.Unlock()
	for _, p := range pending {
		if p == string(room) || (strings.HasPrefix(p, "#") && slices.Contains(aliases, p)) {
			return p, true, true
		}
	}
	sure = true
	for _, p := range pending {
		if !strings.HasPrefix(p, "#") {
			continue
		}
		r, err := b.cli.ResolveAlias(ctx, id.RoomAlias(p))
		switch {
		case err == nil && r.RoomID == room:
			return p, true, true
		case err != nil && !errors.Is(err, mautrix.MNotFound):
			b.log.Warn("matrix: cannot resolve a configured alias yet", "room", p, "error", redactErr(err))
			sure = false
		}
	}
	return "", false, sure
}

// configured reports whether room is one the bot serves.
func (b *Bot) configured(room id.RoomID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rooms[room]
}

// loadSync reads the stored sync state (or the bare token an earlier
// version kept).
func (b *Bot) loadSync(ctx context.Context) (syncState, error) {
	var st syncState
	v, ok, err := b.opts.State.Get(ctx, keySync)
	if err != nil {
		return st, fmt.Errorf("matrix: reading the sync state: %w", err)
	}
	if ok {
		if err := json.Unmarshal([]byte(v), &st); err != nil {
			return st, fmt.Errorf("matrix: the stored sync state is damaged: %w", err)
		}
		return st, nil
	}
	if st.NextBatch, _, err = b.opts.State.Get(ctx, keyNextBatch); err != nil {
		return st, fmt.Errorf("matrix: reading the sync token: %w", err)
	}
	return st, nil
}

// saveSync stores the sync token with the commands taken and not finished
// (those running and those interrupted whose callers were not told yet).
func (b *Bot) saveSync(ctx context.Context) error {
	b.saveMu.Lock()
	defer b.saveMu.Unlock()
	b.mu.Lock()
	st := syncState{NextBatch: b.since, Taken: append([]taken(nil), b.interrupted...)}
	for _, t := range b.running {
		st.Taken = append(st.Taken, t)
	}
	b.mu.Unlock()
	v, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return b.opts.State.Put(ctx, keySync, string(v))
}

// finished forgets a command that has finished (or was refused).
func (b *Bot) finished(evt id.EventID) {
	b.mu.Lock()
	delete(b.running, evt)
	b.mu.Unlock()
}

// maxTellTries is how many times tellInterrupted tries a caller.
const maxTellTries = 10

// tellInterrupted tells the callers of the commands interrupted by the
// last stop that they were not run again. A caller it cannot tell now is
// tried again before the next sync, up to maxTellTries times.
func (b *Bot) tellInterrupted(ctx context.Context) {
	b.mu.Lock()
	list := b.interrupted
	b.tellTries++
	tries := b.tellTries
	b.mu.Unlock()
	if len(list) == 0 {
		return
	}
	var left []taken
	for _, t := range list {
		if !b.configured(t.Room) {
			left = append(left, t) // not joined yet
			continue
		}
		answered, err := b.answered(ctx, t)
		if err != nil {
			b.log.Warn("matrix: cannot tell yet whether an interrupted command was answered", "room_id", t.Room, "event_id", t.Event, "error", redactErr(err))
			left = append(left, t)
			continue
		}
		if answered {
			// Stopped after its last reply and before it was recorded
			// as finished: it was answered; a notice would be a second
			// answer.
			b.log.Info("matrix: a command the last stop left taken had been answered; not telling the caller again", "room_id", t.Room, "event_id", t.Event, "command", t.Text)
			continue
		}
		b.log.Warn("matrix: telling the caller a command was interrupted", "room_id", t.Room, "event_id", t.Event, "sender", t.Sender, "command", t.Text)
		caller := t.Sender
		m := reply.Text(reply.Error, fmt.Sprintf(
			"interrupted: kojibot stopped before %q finished and will not run it again; check what it did (jobs --all) and ask again if it is still needed", t.Text))
		if b.send(ctx, t.Room, b.compose([]reply.Message{m}, t.Event, &caller, true)) == "" {
			left = append(left, t)
		}
	}
	if tries >= maxTellTries {
		for _, t := range left {
			b.log.Error("matrix: could not tell the caller a command was interrupted; giving up", "room_id", t.Room, "event_id", t.Event, "sender", t.Sender, "command", t.Text)
		}
		left = nil
	}
	b.mu.Lock()
	b.interrupted = left
	b.mu.Unlock()
	if len(left) < len(list) {
		if err := b.saveSync(ctx); err != nil && ctx.Err() == nil {
			b.log.Error("matrix: saving the sync state", "error", err)
		}
	}
}

// answeredWithin is how many of the bot's events after a command
// answered looks through for its last reply.
const answeredWithin = 100

// answered reports whether the room holds the last reply (marked Final)
// of the bot to t's command: the command ended, although the store still
// lists it as taken. A homeserver that does not serve the event's
// context (a 4xx) says no; one that cannot be asked now is an error.
func (b *Bot) answered(ctx context.Context, t taken) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := b.cli.Context(ctx, t.Room, t.Event, &mautrix.FilterPart{Senders: []id.UserID{b.self}, Types: []event.Type{event.EventMessage}}, answeredWithin)
	if err != nil {
		var he mautrix.HTTPError
		if errors.As(err, &he) && he.Response != nil && he.Response.StatusCode >= 400 && he.Response.StatusCode < 500 && he.Response.StatusCode != http.StatusTooManyRequests {
			return false, nil
		}
		return false, err
	}
	for _, e := range resp.EventsAfter {
		if e.Sender != b.self {
			continue
		}
		if final, _ := e.Content.Raw[finalKey].(bool); final {
			if rel, ok := e.Content.Raw["m.relates_to"].(map[string]any); ok {
				if irt, ok := rel["m.in_reply_to"].(map[string]any); ok && irt["event_id"] == string(t.Event) {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// command is a command line taken from a room event, to be handed to the
// Handler.
type command struct {
	t   taken
	req commands.Request
	out *output
	// stale, when set, is how long before the start the command was
	// sent: it is answered, never run.
	stale time.Duration
}

// linked reports whether sender resolves to a FAS user: Options.Identify,
// or without it a user of matrix.fas_server who is not a guest.
func (b *Bot) linked(ctx context.Context, sender id.UserID) bool {
	if b.opts.Identify != nil {
		return b.opts.Identify(ctx, string(sender))
	}
	local, server := sender.Localpart(), sender.Homeserver()
	return b.opts.Config.FASServer != "" && strings.EqualFold(server, b.opts.Config.FASServer) &&
		strings.Trim(local, "0123456789") != "" // not a guest
}

// limitKey is the inbound rate-limit bucket of sender: its own when it is
// linked to a FAS user, else the one shared by everyone who is not.
func (b *Bot) limitKey(ctx context.Context, sender id.UserID) string {
	if b.linked(ctx, sender) {
		return "matrix:" + string(sender)
	}
	return bot.AnonymousBucket
}

// enqueue puts c in its caller's queue, to run when the caller's earlier
// commands have and a worker is free. It never blocks: a caller with
// maxQueued commands waiting is refused (told once until their queue
// drains).
func (b *Bot) enqueue(ctx context.Context, c command) {
	b.qmu.Lock()
	q := b.queues[c.t.Sender]
	if q == nil {
		q = &callerQueue{}
		b.queues[c.t.Sender] = q
	}
	if len(q.cmds) >= maxQueued {
		tell := !q.told
		q.told = true
		b.qmu.Unlock()
		b.log.Warn("matrix: command refused: too many of the caller's commands waiting", "room_id", c.t.Room,
			"event_id", c.t.Event, "sender", c.t.Sender, "waiting", maxQueued)
		b.finished(c.t.Event)
		if tell {
			c.out.Send(reply.Text(reply.Error, fmt.Sprintf("too busy: %d commands of yours are waiting; try again when they are done", maxQueued)))
		}
		b.saveSoon(ctx)
		return
	}
	q.cmds = append(q.cmds, c)
	if !q.running && len(q.cmds) == 1 {
		b.ready = append(b.ready, c.t.Sender)
	}
	b.schedule(ctx)
	b.qmu.Unlock()
}

// schedule starts the first command of the callers next in turn while
// workers are free; b.qmu is held.
func (b *Bot) schedule(ctx context.Context) {
	for ctx.Err() == nil && b.busy < b.opts.Workers && len(b.ready) > 0 {
		sender := b.ready[0]
		b.ready = b.ready[1:]
		q := b.queues[sender]
		c := q.cmds[0]
		q.cmds = q.cmds[1:]
		q.running = true
		b.busy++
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.run(ctx, c)
			b.qmu.Lock()
			defer b.qmu.Unlock()
			b.busy--
			q.running = false
			if len(q.cmds) > 0 {
				b.ready = append(b.ready, sender)
			} else {
				q.told = false
				delete(b.queues, sender)
			}
			b.schedule(ctx)
		}()
	}
}

// run runs c on a worker; when it returns, c is no longer taken. A command
// over its caller's inbound limit is not run; the caller is told once
// until a command of theirs is allowed again.
func (b *Bot) run(ctx context.Context, c command) {
	defer b.saveSoon(ctx)
	defer b.finished(c.t.Event)
	// Its last reply goes out marked Final before the command stops being
	// taken: a bot started between the two finds it and does not tell the
	// caller the command was interrupted.
	c.out.hold()
	defer c.out.release()
	if b.opts.Limits != nil {
		key := b.limitKey(ctx, c.t.Sender)
		if ok, warn := b.opts.Limits.Allow(key); !ok {
			b.log.Info("matrix: command refused: over the inbound limit", "room_id", c.t.Room, "event_id", c.t.Event, "sender", c.t.Sender)
			if warn {
				text := "slow down, please: too many commands; try again in a few seconds"
				if key == bot.AnonymousBucket {
					text = "slow down, please: too many commands from people not identified to FAS"
				}
				c.out.Send(reply.Text(reply.Info, text))
			}
			return
		}
	}
	b.opts.Handler.Handle(ctx, c.req, c.out)
}

// saveSoon stores the sync state after a command finished or was refused.
func (b *Bot) saveSoon(ctx context.Context) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := b.saveSync(sctx); err != nil {
		b.log.Error("matrix: saving the sync state", "error", err)
	}
}

// handleSync acts on one /sync answer and returns the commands it holds,
// in order, not started yet. On the first sync without a stored token,
// what was said before the bot started is history and is not acted on.
func (b *Bot) handleSync(ctx context.Context, resp *mautrix.RespSync, first bool) []command {
	received := time.Now()
	var cmds []command
	for room := range resp.Rooms.Invite {
		if b.configured(room) {
			continue
		}
		// An invite to a configured room the bot could not join by itself
		// (invite-only) is accepted.
		entry, ok, sure := b.pendingEntry(ctx, room)
		switch {
		case ok:
			b.join(ctx, entry, string(room))
		case sure:
			b.log.Info("matrix: leaving a room it was invited to but does not serve", "room_id", room)
			if _, err := b.cli.LeaveRoom(ctx, room); err != nil {
				b.log.Warn("matrix: leave failed", "room_id", room, "error", redactErr(err))
			}
		}
	}
	for room, jr := range resp.Rooms.Join {
		for _, evt := range jr.State.Events {
			b.noteState(room, evt)
		}
		for _, evt := range jr.Timeline.Events {
			if evt.StateKey != nil {
				b.noteState(room, evt)
			}
		}
		if !b.configured(room) && !b.adopt(ctx, room) {
			continue
		}
		var stale []command
		for _, evt := range jr.Timeline.Events {
			if first && time.UnixMilli(evt.Timestamp).Before(b.started) {
				continue // history: said before the bot started
			}
			c, ok := b.handleEvent(ctx, room, evt, received)
			switch {
			case !ok:
			case c.stale > 0:
				stale = append(stale, c)
			default:
				cmds = append(cmds, c)
			}
		}
		b.tellStale(ctx, room, stale)
	}
	return cmds
}

// adopt decides about a room the bot is in but does not serve yet. One
// that matches a configured entry is served from now on (its join was
// answered with an error, a 502 or a 429, yet went through); one that
// matches none is left; one that cannot be matched yet (an alias that
// does not resolve now) is neither. It reports whether room is served.
func (b *Bot) adopt(ctx context.Context, room id.RoomID) bool {
	entry, ok, sure := b.pendingEntry(ctx, room)
	switch {
	case ok:
		b.serve(entry, room)
		b.log.Info("matrix: serving a configured room it is in", "room", entry, "room_id", room)
		return true
	case !sure:
		b.log.Warn("matrix: in a room it cannot match to its configuration yet; neither serving nor leaving it", "room_id", room)
		return false
	}
	b.log.Info("matrix: leaving a room it does not serve", "room_id", room)
	b.mu.Lock()
	delete(b.names, room)
	b.mu.Unlock()
	if _, err := b.cli.LeaveRoom(ctx, room); err != nil {
		b.log.Warn("matrix: leave failed", "room_id", room, "error", redactErr(err))
	}
	return false
}

// tellStale tells the callers of commands sent more than
// matrix.max_delay before they reached the bot (it was away, or the
// events were held up) that they were not run: one reply to a lone
// command; after a long outage, one message for all of a room's, with a
// table of who asked what, mentioning each of them.
func (b *Bot) tellStale(ctx context.Context, room id.RoomID, stale []command) {
	for _, c := range stale {
		b.log.Info("matrix: not running a command that reached the bot too late", "room_id", room, "event_id", c.t.Event,
			"sender", c.t.Sender, "command", c.t.Text, "delay", c.stale.Round(time.Second), "max_delay", b.opts.Config.MaxDelay)
	}
	switch len(stale) {
	case 0:
		return
	case 1:
		c := stale[0]
		m := reply.Text(reply.Error, fmt.Sprintf("not run: sent %s before it reached kojibot (matrix.max_delay is %s); ask again if it is still needed",
			c.stale.Round(time.Second), b.opts.Config.MaxDelay))
		b.send(ctx, room, b.compose([]reply.Message{m}, c.t.Event, &c.t.Sender, true))
		return
	}
	table := &reply.Table{Columns: []reply.Column{{Name: "who"}, {Name: "command"}, {Name: "delay", Right: true}}}
	var callers []id.UserID
	for _, c := range stale {
		table.Rows = append(table.Rows, []string{string(c.t.Sender), c.t.Text, c.stale.Round(time.Second).String()})
		if !slices.Contains(callers, c.t.Sender) {
			callers = append(callers, c.t.Sender)
		}
	}
	m := reply.Message{Kind: reply.Error, Table: table, Lines: []string{fmt.Sprintf(
		"not run: %d commands reached kojibot more than %s (matrix.max_delay) after they were sent; ask again if they are still needed",
		len(stale), b.opts.Config.MaxDelay)}}
	c := b.compose([]reply.Message{m}, "", nil, true)
	c.Mentions = &event.Mentions{UserIDs: callers}
	b.send(ctx, room, c)
}

// noteState remembers which rooms are encrypted, and their names.
func (b *Bot) noteState(room id.RoomID, evt *event.Event) {
	str := func(k string) string { v, _ := evt.Content.Raw[k].(string); return v }
	b.mu.Lock()
	defer b.mu.Unlock()
	switch evt.Type {
	case event.StateEncryption:
		b.encrypted[room] = true
	case event.StateCanonicalAlias:
		n := b.nameOf(room)
		n.alias, n.alt = str("alias"), nil
		if alt, ok := evt.Content.Raw["alt_aliases"].([]any); ok {
			for _, a := range alt {
				if a, ok := a.(string); ok {
					n.alt = append(n.alt, a)
				}
			}
		}
	case event.StateRoomName:
		b.nameOf(room).name = str("name")
	}
}

// PlaceName is how room is shown beside its id (jobs, the audit): its
// canonical alias, else the alias it was configured by, else its name;
// "" when none is known.
func (b *Bot) PlaceName(room id.RoomID) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.names[room]
	switch {
	case n == nil:
		return ""
	case n.alias != "":
		return n.alias
	case n.entry != "":
		return n.entry
	}
	return n.name
}

// handleEvent returns the command line of a room event received at
// received, if it holds one.
func (b *Bot) handleEvent(ctx context.Context, room id.RoomID, evt *event.Event, received time.Time) (command, bool) {
	if evt.Sender == b.self {
		return command{}, false
	}
	b.mu.Lock()
	dup := b.seen[evt.ID]
	if len(b.seen) > 10000 {
		clear(b.seen)
	}
	b.seen[evt.ID] = true
	enc := b.encrypted[room]
	b.mu.Unlock()
	if dup {
		return command{}, false
	}
	if evt.Type == event.EventEncrypted || (enc && evt.Type != event.EventMessage) {
		b.mu.Lock()
		warned := b.warned[room]
		b.warned[room] = true
		b.mu.Unlock()
		if !warned {
			b.send(ctx, room, b.notice("I cannot read encrypted messages: I work only in unencrypted rooms.", "", nil))
		}
		return command{}, false
	}
	if evt.Type != event.EventMessage {
		return command{}, false
	}
	raw := evt.Content.Raw
	if mt, _ := raw["msgtype"].(string); mt != "m.text" {
		return command{}, false
	}
	if rel, ok := raw["m.relates_to"].(map[string]any); ok && rel["rel_type"] == "m.replace" {
		return command{}, false // an edit: commands are not re-run
	}
	body, _ := raw["body"].(string)
	text, ok := bot.Route(b.opts.Config.CommandPrefix, true, strings.TrimSpace(body))
	if !ok {
		return command{}, false
	}
	caller := evt.Sender
	if delay := received.Sub(time.UnixMilli(evt.Timestamp)); delay > b.opts.Config.MaxDelay {
		// Sent long before it reached the bot (the bot was away, or the
		// event was held up on its way): the caller is told (tellStale)
		// rather than left waiting, and it is not run.
		return command{t: taken{Room: room, Event: evt.ID, Sender: caller, Text: text}, stale: delay}, true
	}
	return command{
		t: taken{Room: room, Event: evt.ID, Sender: caller, Text: text},
		req: commands.Request{
			Transport: commands.TransportMatrix,
			Account:   string(caller),
			Nick:      string(caller),
			Place:     PlacePrefix + string(room),
			PlaceName: b.PlaceName(room),
			Text:      text,
			Received:  received,
		},
		out: &output{b: b, room: room, caller: caller, replyTo: evt.ID},
	}, true
}

// sendNotifications delivers the notifications, retrying while the
// homeserver is down.
func (b *Bot) sendNotifications(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-b.notify:
			c := b.compose([]reply.Message{m}, "", nil, true)
			for ctx.Err() == nil {
				b.mu.Lock()
				room := b.notifyRoom
				b.mu.Unlock()
				if room != "" && b.send(ctx, room, c) != "" {
					break
				}
				sleep(ctx, 2*time.Second)
			}
		}
	}
}

// content is an m.notice, as sent.
type content struct {
	MsgType       string          `json:"msgtype"`
	Body          string          `json:"body"`
	Format        string          `json:"format,omitempty"`
	FormattedBody string          `json:"formatted_body,omitempty"`
	RelatesTo     map[string]any  `json:"m.relates_to,omitempty"`
	Mentions      *event.Mentions `json:"m.mentions,omitempty"`
	// NewContent is, in an edit (m.replace), the message's new content.
	NewContent *content `json:"m.new_content,omitempty"`
	// Final marks the last reply a command sent while it ran (see
	// output.hold): a bot that finds it in the room knows the command
	// was answered, even if it is still listed as taken.
	Final bool `json:"org.fedoraproject.kojibot.final,omitempty"` // finalKey
	// capped is set when compose left lines out.
	capped bool
}

// notice renders a text message of kind Info for the caller; see compose.
func (b *Bot) notice(text string, replyTo id.EventID, caller *id.UserID) *content {
	return b.compose([]reply.Message{reply.Text(reply.Info, text)}, replyTo, caller, true)
}

// send sends c to room and returns the new event's id ("" on failure),
// waiting out rate limits.
func (b *Bot) send(ctx context.Context, room id.RoomID, c *content) id.EventID {
	for attempt := 0; attempt < 5 && ctx.Err() == nil; attempt++ {
		resp, err := b.cli.SendMessageEvent(ctx, room, event.EventMessage, c)
		if err == nil {
			return resp.EventID
		}
		d, limited := retryAfter(err)
		if !limited {
			b.log.Warn("matrix: sending failed", "room_id", room, "error", redactErr(err))
			return ""
		}
		sleep(ctx, d)
	}
	return ""
}

// output is where a command run from Matrix writes its replies: each one
// an m.notice replying to the caller's event, except a job's progress,
// which is one notice edited as the job goes on.
type output struct {
	b       *Bot
	room    id.RoomID
	caller  id.UserID
	replyTo id.EventID

	mu       sync.Mutex // held while a job's progress is sent, to keep edits in order
	progress map[string]*progress
	// holding: the command runs, and its last reply so far waits in
	// pending, so that the one it ends with is sent marked Final.
	holding bool
	pending *content
}

// hold makes o keep each reply until the next one (or release): the
// command's last reply is then known, and marked.
func (o *output) hold() {
	o.mu.Lock()
	o.holding = true
	o.mu.Unlock()
}

// release sends the reply held back, marked Final, and sends every later
// one (a job's) at once.
func (o *output) release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.holding = false
	if c := o.pending; c != nil {
		o.pending = nil
		c.Final = true
		o.b.send(context.Background(), o.room, c)
	}
}

// flush sends the reply held back, unmarked; o.mu is held.
func (o *output) flush() {
	if c := o.pending; c != nil {
		o.pending = nil
		o.b.send(context.Background(), o.room, c)
	}
}

// progress is one job's progress message: the messages so far, the event
// that shows them ("" until it was sent), and whether it shows them all.
type progress struct {
	msgs  []reply.Message
	event id.EventID
	// capped is set while the message shows only max_lines of lines: it
	// is completed (with one long-output page) by the job's result.
	capped bool
}

// SendProgress implements commands.ProgressOutput. The first progress
// message of a job is sent as a notice (replying to the caller's event,
// without mentioning them); later ones edit it (m.replace) to hold every
// message so far, capped at max_lines. A capped edit publishes no
// long-output page: the job's result does, once, with a last edit.
func (o *output) SendProgress(jobID string, m reply.Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flush() // in order: a reply held back goes before the progress
	if o.progress == nil {
		o.progress = map[string]*progress{}
	}
	p := o.progress[jobID]
	if p == nil {
		p = &progress{}
		o.progress[jobID] = p
	}
	p.msgs = append(p.msgs, m)
	c := o.b.compose(p.msgs, o.replyTo, nil, false)
	p.capped = c.capped
	c.Mentions = &event.Mentions{}
	if p.event == "" {
		p.event = o.b.send(context.Background(), o.room, c)
		return
	}
	o.b.send(context.Background(), o.room, edit(p.event, c))
}

// edit is the m.replace event that makes target show c.
func edit(target id.EventID, c *content) *content {
	nc := *c
	nc.RelatesTo = nil
	return &content{MsgType: c.MsgType, Body: "* " + c.Body, Format: c.Format, FormattedBody: "* " + c.FormattedBody,
		Mentions:   &event.Mentions{},
		RelatesTo:  map[string]any{"rel_type": "m.replace", "event_id": target},
		NewContent: &nc}
}

// Send implements commands.Output.
func (o *output) Send(m reply.Message) {
	c := o.b.compose([]reply.Message{m}, o.replyTo, &o.caller, true)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.holding {
		o.flush()
		o.pending = c
		return
	}
	o.b.send(context.Background(), o.room, c)
}

// SendResult implements commands.ResultOutput. Progress messages capped
// so far are completed first: one last edit each, with the link to all
// their lines.
func (o *output) SendResult(m reply.Message) {
	o.mu.Lock()
	o.flush()
	for _, p := range o.progress {
		if !p.capped || p.event == "" {
			continue
		}
		p.capped = false
		c := o.b.compose(p.msgs, o.replyTo, nil, true)
		c.Mentions = &event.Mentions{}
		o.b.send(context.Background(), o.room, edit(p.event, c))
	}
	o.mu.Unlock()
	o.Send(m)
}

// retryAfter reports whether err is a 429 and how long to wait.
func retryAfter(err error) (time.Duration, bool) {
	var he mautrix.HTTPError
	if !errors.As(err, &he) {
		return 0, false
	}
	if he.RespError == nil || (he.RespError.ErrCode != "M_LIMIT_EXCEEDED" && he.RespError.StatusCode != http.StatusTooManyRequests) {
		if he.Response == nil || he.Response.StatusCode != http.StatusTooManyRequests {
			return 0, false
		}
	}
	d := time.Second
	if he.RespError != nil {
		if ms, ok := he.RespError.ExtraData["retry_after_ms"].(float64); ok && ms > 0 {
			d = time.Duration(ms) * time.Millisecond
		}
	}
	return min(d, 5*time.Minute), true
}

// redactErr is err's text for a log line: mautrix errors name the URL,
// never the token (which travels in a header), but a query string could;
// cut it.
func redactErr(err error) string {
	s := err.Error()
	if i := strings.Index(s, "access_token="); i >= 0 {
		s = s[:i] + "access_token=[redacted]"
	}
	return s
}

// backoff is capped exponential backoff with jitter.
type backoff struct {
	cur, max time.Duration
}

// next returns the next wait: between half and all of the current step,
// which doubles from 500ms up to max.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = min(500*time.Millisecond, b.max)
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

// reset starts again from the smallest step, after a success.
func (b *backoff) reset() { b.cur = 0 }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
