// Package irc is kojibot's IRC transport: it connects with SASL, joins its
// channels and reconnects on its own, learns who is speaking from their
// services account, routes command lines to a Handler on a bounded worker
// pool, and sends the replies through one paced, UTF-8-safe outbound queue
// per connection, so that it is never disconnected for flooding.
package irc

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lrstanley/girc"

	"github.com/fedora-infra/kojibot/acl"
	"github.com/fedora-infra/kojibot/bot"
	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands"
	"github.com/fedora-infra/kojibot/config"
)

// Handler runs one command: bot.Handler, the interface to the commands
// that both transports share.
type Handler = bot.Handler

// MaxSASLFailures is how many SASL failures in a row make Run give up.
const MaxSASLFailures = 3

// maxBulkLines caps a private reply or the private copy of a summarised
// one; the cut is announced in the last line, never silent.
const maxBulkLines = 200

// ErrSASL is returned by Run when SASL login failed MaxSASLFailures times
// in a row, or the server would not log the bot in at all.
var ErrSASL = errors.New("bot: SASL login failed")

// Option changes how New builds a Bot.
type Option func(*Bot)

// WithLongOutput installs where a long channel reply is published: f gets
// the whole text and returns a URL to post instead of the private NOTICE
// copy (ok false falls back to the NOTICE). f may be called from several
// goroutines at once.
func WithLongOutput(f func(text string) (url string, ok bool)) Option {
	return func(b *Bot) { b.longOutput = f }
}

// WithCaseMapping installs f, told the network's CASEMAPPING when the
// server announces it (for the ACL's account names).
func WithCaseMapping(f func(acl.CaseMapping)) Option {
	return func(b *Bot) { b.onCaseMapping = f }
}

// withReconnectMin sets the first reconnect delay (tests).
func withReconnectMin(d time.Duration) Option {
	return func(b *Bot) { b.reconnectMin = d }
}

// Bot is one connection to an IRC network. Create it with New, then Run it.
type Bot struct {
	cfg        config.IRC
	h          Handler
	log        *slog.Logger
	longOutput func(text string) (string, bool)
	// onCaseMapping is told the network's CASEMAPPING.
	onCaseMapping func(acl.CaseMapping)
	// reconnectMin is the first reconnect delay.
	reconnectMin time.Duration

	out   *outbox
	pace  *pacer
	users *bot.UserLimits
	jobs  chan job

	running   atomic.Bool
	connected atomic.Bool
	// joined is set while the bot is in every channel of joinList.
	joined atomic.Bool
	mu     sync.Mutex
	sess   *session // the registered connection, or nil
}

// New checks cfg, a validated irc: section (config.Default holds the
// defaults: New fills in nothing), and returns a Bot that will send
// commands to h. A nil log discards.
func New(cfg config.IRC, h Handler, log *slog.Logger, opts ...Option) (*Bot, error) {
	if h == nil {
		return nil, errors.New("bot: nil Handler")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Server == "" {
		return nil, errors.New("bot: irc.server is empty")
	}
	if !girc.IsValidNick(cfg.Nick) {
		return nil, fmt.Errorf("bot: irc.nick %q is not a valid nick", cfg.Nick)
	}
	for _, ch := range joinList(cfg) {
		if !girc.IsValidChannel(ch) {
			return nil, fmt.Errorf("bot: %q is not a valid channel", ch)
		}
	}
	if strings.ContainsAny(cfg.CommandPrefix, " \r\n") {
		return nil, fmt.Errorf("bot: irc.command_prefix %q contains white space", cfg.CommandPrefix)
	}
	b := &Bot{
		cfg:   cfg,
		h:     h,
		log:   log,
		out:   newOutbox(log),
		pace:  newPacer(cfg.SendRate, cfg.SendBurst),
		users: defaultUserLimits(),
		jobs:  make(chan job, cfg.Workers*8),

		reconnectMin: reconnectMin,
	}
	for _, o := range opts {
		o(b)
	}
	return b, nil
}

// defaultUserLimits is the inbound limit of commands.user_rate and
// commands.user_burst at their defaults, for a Bot built without
// WithUserLimits.
func defaultUserLimits() *bot.UserLimits {
	d := config.Default().Commands
	return bot.NewUserLimits(d.UserRate, d.UserBurst)
}

// WithUserLimits makes the bot share limits (commands.user_rate and
// commands.user_burst) with the other transports.
func WithUserLimits(limits *bot.UserLimits) Option {
	return func(b *Bot) {
		if limits != nil {
			b.users = limits
		}
	}
}

// joinList is every channel the bot sits in: the configured ones and the
// notification channel.
func joinList(c config.IRC) []string {
	out := append([]string(nil), c.Channels...)
	if c.NotifyChannel != "" {
		found := false
		for _, ch := range out {
			found = found || girc.ToRFC1459(ch) == girc.ToRFC1459(c.NotifyChannel)
		}
		if !found {
			out = append(out, c.NotifyChannel)
		}
	}
	return out
}

// Joined reports whether the bot is connected and in every configured
// channel (irc.channels and irc.notify_channel) now: what systemd's
// READY=1 waits for.
func (b *Bot) Joined() bool { return b.connected.Load() && b.joined.Load() }

// Connected reports whether the bot is registered (and logged in, when SASL
// is configured) on the network now.
func (b *Bot) Connected() bool { return b.connected.Load() }

// Notify queues m for channel ("" means irc.notify_channel), as its text
// lines: the people it mentions are named. It never blocks: the queue is
// bounded (the oldest notification is dropped, and logged, when full) and
// is kept across reconnects, so a notification made while disconnected is
// delivered once the bot is back.
func (b *Bot) Notify(channel string, m reply.Message) {
	if channel == "" {
		channel = b.cfg.NotifyChannel
	}
	if channel == "" {
		b.log.Warn("notification dropped: no channel and no irc.notify_channel", "text", m.String())
		return
	}
	b.out.pushTo(recipient{key: "notify:" + acl.CaseMappingRFC1459.Fold(channel)}, b.renderNotify(channel, m.String()), false)
}

// current is the registered connection, or nil.
func (b *Bot) current() *session {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sess
}

// self is our own hostmask for line budgets: what the server told us, or
// the longest it could plausibly be.
func (b *Bot) self() selfMask {
	if s := b.current(); s != nil {
		return s.mask()
	}
	return selfMask{Nick: b.cfg.Nick, User: "~" + ident(b.cfg.Nick), Host: strings.Repeat("h", maxHostLen)}
}

// reply queues the rendered reply to nick in place ("" for private), in
// the queue of its recipient. keep marks a reply that is never dropped.
func (b *Bot) reply(rcpt recipient, nick, place string, m reply.Message, keep bool) {
	main, bulk := b.renderer().reply(nick, place, m)
	b.out.pushTo(rcpt, main, keep)
	b.out.push(laneBulk, bulk)
}

// recipientOf is the outbound queue of a caller: their account when they
// have one, else their nick, in the class served last.
func (b *Bot) recipientOf(s *session, nick, account string) recipient {
	if account != "" {
		return recipient{key: "account:" + s.fold(account)}
	}
	return recipient{key: "nick:" + s.fold(nick), anonymous: true}
}

func (b *Bot) renderer() renderer {
	return renderer{
		maxLines:   b.cfg.MaxLines,
		lineBytes:  b.cfg.LineBytes,
		self:       b.self(),
		longOutput: b.longOutput,
	}
}

func (b *Bot) renderNotify(channel, text string) []string {
	return b.renderer().notify(channel, text)
}

// output is what a command writes its replies to.
type output struct {
	b           *Bot
	nick, place string
	rcpt        recipient
}

// Send implements commands.Output. A confirmation prompt is never dropped.
func (o output) Send(m reply.Message) {
	o.b.reply(o.rcpt, o.nick, o.place, m, m.Kind == commands.Confirm)
}

// SendResult implements commands.ResultOutput: a job's result is never
// dropped.
func (o output) SendResult(m reply.Message) {
	o.b.reply(o.rcpt, o.nick, o.place, m, true)
}
