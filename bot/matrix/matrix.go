// Package matrix is kojibot's Matrix transport: it syncs with the
// homeserver (keeping the sync token in the state store), joins the
// configured rooms and leaves the others, hands command lines to the same
// Handler as IRC with the sender's Matrix id as the caller, and answers
// with m.notice replies that mention the caller.
package matrix

import (
	"context"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/fedora-infra/kojibot/commands"
	"github.com/fedora-infra/kojibot/config"
)

// PlacePrefix starts every Matrix place: "matrix:!room:server".
const PlacePrefix = "matrix:"

// State keys in the state store.
const (
	keyNextBatch   = "matrix.next_batch"
	keyAccessToken = "matrix.access_token" // only when logged in with a password
)

// Handler runs one command; it is implemented by the commands dispatcher.
type Handler interface {
	Handle(ctx context.Context, req commands.Request, out commands.Output)
}

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
}

// Bot is the bot's Matrix side. Create it with New, then Run it.
type Bot struct {
	opts    Options
	log     *slog.Logger
	cli     *mautrix.Client
	self    id.UserID
	started time.Time

	connected atomic.Bool
	notify    chan string
	workers   chan struct{}
	wg        sync.WaitGroup

	mu         sync.Mutex
	rooms      map[id.RoomID]bool // configured rooms, joined
	pending    []string           // configured rooms not joined yet
	notifyRoom id.RoomID
	warned     map[id.RoomID]bool // encrypted rooms told once
	encrypted  map[id.RoomID]bool
	seen       map[id.EventID]bool
}

// New checks opts and returns a Bot.
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
	if opts.Config.CommandPrefix == "" {
		opts.Config.CommandPrefix = "!koji"
	}
	if opts.Config.MaxLines < 2 {
		opts.Config.MaxLines = 30
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = time.Minute
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 90 * time.Second}
	}
	return &Bot{opts: opts, log: opts.Log, self: id.UserID(opts.Config.UserID),
		notify: make(chan string, 100), workers: make(chan struct{}, 8),
		rooms: map[id.RoomID]bool{}, warned: map[id.RoomID]bool{}, encrypted: map[id.RoomID]bool{},
		seen: map[id.EventID]bool{}}, nil
}

// Connected reports whether the last /sync succeeded (for /healthz).
func (b *Bot) Connected() bool { return b.connected.Load() }

// Notify queues text for matrix.notify_room. It never blocks: when the
// queue is full the notification is dropped and logged.
func (b *Bot) Notify(text string) {
	select {
	case b.notify <- text:
	default:
		b.log.Warn("matrix notification dropped: queue full", "text", text)
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
	since, _, err := b.opts.State.Get(ctx, keyNextBatch)
	if err != nil {
		return fmt.Errorf("matrix: reading the sync token: %w", err)
	}
	b.wg.Add(1)
	go func() { defer b.wg.Done(); b.sendNotifications(ctx) }()
	defer b.wg.Wait()
	bo := backoff{max: b.opts.BackoffMax}
	first := since == ""
	for ctx.Err() == nil {
		b.joinPending(ctx)
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
		b.handleSync(ctx, resp, first)
		first = false
		since = resp.NextBatch
		if err := b.opts.State.Put(ctx, keyNextBatch, since); err != nil && ctx.Err() == nil {
			b.log.Error("matrix: saving the sync token", "error", err)
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
	pending := b.pending
	b.pending = nil
	b.mu.Unlock()
	var still []string
	for _, r := range pending {
		resp, err := b.cli.JoinRoom(ctx, r, nil)
		if err != nil {
			b.log.Warn("matrix: cannot join room yet", "room", r, "error", redactErr(err))
			still = append(still, r)
			continue
		}
		b.mu.Lock()
		b.rooms[resp.RoomID] = true
		if r == b.opts.Config.NotifyRoom || (b.opts.Config.NotifyRoom == "" && b.notifyRoom == "") {
			b.notifyRoom = resp.RoomID
		}
		b.mu.Unlock()
		b.log.Info("matrix: joined", "room", r, "room_id", resp.RoomID)
	}
	b.mu.Lock()
	b.pending = append(b.pending, still...)
	b.mu.Unlock()
}

// configured reports whether room is one the bot serves.
func (b *Bot) configured(room id.RoomID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rooms[room]
}

// handleSync acts on one /sync answer. On the first sync without a stored
// token, what was said before the bot started is history and is not acted
// on.
func (b *Bot) handleSync(ctx context.Context, resp *mautrix.RespSync, first bool) {
	for room := range resp.Rooms.Invite {
		if b.configured(room) {
			continue
		}
		b.log.Info("matrix: leaving a room it was invited to but does not serve", "room_id", room)
		if _, err := b.cli.LeaveRoom(ctx, room); err != nil {
			b.log.Warn("matrix: leave failed", "room_id", room, "error", redactErr(err))
		}
	}
	for room, jr := range resp.Rooms.Join {
		if !b.configured(room) {
			b.log.Info("matrix: leaving a room it does not serve", "room_id", room)
			if _, err := b.cli.LeaveRoom(ctx, room); err != nil {
				b.log.Warn("matrix: leave failed", "room_id", room, "error", redactErr(err))
			}
			continue
		}
		for _, evt := range jr.State.Events {
			b.noteState(room, evt)
		}
		for _, evt := range jr.Timeline.Events {
			b.noteState(room, evt)
			if first && time.UnixMilli(evt.Timestamp).Before(b.started) {
				continue // history: said before the bot started
			}
			b.handleEvent(ctx, room, evt)
		}
	}
}

// noteState remembers which rooms are encrypted.
func (b *Bot) noteState(room id.RoomID, evt *event.Event) {
	if evt.Type == event.StateEncryption {
		b.mu.Lock()
		b.encrypted[room] = true
		b.mu.Unlock()
	}
}

// staleAfter is how old an event may be, relative to the start, and still
// be acted on (a restart with a stored sync token runs what was said while
// it was down, not what was said long before).
const staleAfter = 2 * time.Minute

// handleEvent runs a command line from a room event.
func (b *Bot) handleEvent(ctx context.Context, room id.RoomID, evt *event.Event) {
	if evt.Sender == b.self {
		return
	}
	b.mu.Lock()
	dup := b.seen[evt.ID]
	if len(b.seen) > 10000 {
		clear(b.seen)
	}
	b.seen[evt.ID] = true
	enc := b.encrypted[room]
	b.mu.Unlock()
	if dup || time.UnixMilli(evt.Timestamp).Before(b.started.Add(-staleAfter)) {
		return
	}
	if evt.Type == event.EventEncrypted || (enc && evt.Type != event.EventMessage) {
		b.mu.Lock()
		warned := b.warned[room]
		b.warned[room] = true
		b.mu.Unlock()
		if !warned {
			b.send(ctx, room, b.notice("I cannot read encrypted messages: I work only in unencrypted rooms.", "", nil))
		}
		return
	}
	if evt.Type != event.EventMessage {
		return
	}
	raw := evt.Content.Raw
	if mt, _ := raw["msgtype"].(string); mt != "m.text" {
		return
	}
	if rel, ok := raw["m.relates_to"].(map[string]any); ok && rel["rel_type"] == "m.replace" {
		return // an edit: commands are not re-run
	}
	body, _ := raw["body"].(string)
	text, ok := strings.CutPrefix(strings.TrimSpace(body), b.opts.Config.CommandPrefix)
	if !ok || (text != "" && text[0] != ' ') {
		return
	}
	req := commands.Request{
		Account:  string(evt.Sender),
		Nick:     string(evt.Sender),
		Place:    PlacePrefix + string(room),
		Text:     strings.TrimSpace(text),
		Received: time.Now(),
	}
	out := &output{b: b, room: room, caller: evt.Sender, replyTo: evt.ID}
	select {
	case b.workers <- struct{}{}:
	case <-ctx.Done():
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() { <-b.workers }()
		b.opts.Handler.Handle(ctx, req, out)
	}()
}

// sendNotifications delivers the notifications, retrying while the
// homeserver is down.
func (b *Bot) sendNotifications(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case text := <-b.notify:
			for ctx.Err() == nil {
				b.mu.Lock()
				room := b.notifyRoom
				b.mu.Unlock()
				if room != "" && b.send(ctx, room, b.notice(text, "", nil)) != "" {
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
}

// notice renders text (already prefixed by its kind) for the caller:
// capped at max_lines, the rest behind the HTTP link when there is one.
func (b *Bot) notice(text string, replyTo id.EventID, caller *id.UserID) *content {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if max := b.opts.Config.MaxLines; len(lines) > max {
		rest := len(lines) - (max - 1)
		tail := fmt.Sprintf("(%d more lines not shown)", rest)
		if b.opts.LongOutput != nil {
			if url, ok := b.opts.LongOutput(text); ok {
				tail = fmt.Sprintf("(%d more lines: %s)", rest, url)
			}
		}
		lines = append(lines[:max-1:max-1], tail)
	}
	c := &content{MsgType: "m.notice", Format: "org.matrix.custom.html"}
	if caller != nil {
		c.Mentions = &event.Mentions{UserIDs: []id.UserID{*caller}}
		c.Body = string(*caller) + ": "
		c.FormattedBody = fmt.Sprintf(`<a href="https://matrix.to/#/%s">%s</a>: `, html.EscapeString(string(*caller)), html.EscapeString(string(*caller)))
	}
	c.Body += strings.Join(lines, "\n")
	if len(lines) == 1 {
		c.FormattedBody += html.EscapeString(lines[0])
	} else {
		c.FormattedBody += html.EscapeString(lines[0]) + "<pre>" + html.EscapeString(strings.Join(lines[1:], "\n")) + "</pre>"
	}
	if replyTo != "" {
		c.RelatesTo = map[string]any{"m.in_reply_to": map[string]any{"event_id": replyTo}}
	}
	return c
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
}

// progress is one job's progress message: the lines so far and the event
// that shows them ("" until it was sent).
type progress struct {
	lines []string
	event id.EventID
}

// SendProgress implements commands.ProgressOutput. The first progress line
// of a job is sent as a notice (replying to the caller's event, without
// mentioning them); later ones edit it (m.replace) to hold every line so
// far, capped at max_lines like any reply.
func (o *output) SendProgress(jobID string, kind commands.Kind, text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.progress == nil {
		o.progress = map[string]*progress{}
	}
	p := o.progress[jobID]
	if p == nil {
		p = &progress{}
		o.progress[jobID] = p
	}
	p.lines = append(p.lines, strings.Split(strings.TrimRight(commands.Format(kind, text), "\n"), "\n")...)
	c := o.b.notice(strings.Join(p.lines, "\n"), o.replyTo, nil)
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
func (o *output) Send(kind commands.Kind, text string) {
	o.b.send(context.Background(), o.room, o.b.notice(commands.Format(kind, text), o.replyTo, &o.caller))
}

// SendResult implements commands.ResultOutput.
func (o *output) SendResult(kind commands.Kind, text string) { o.Send(kind, text) }

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
