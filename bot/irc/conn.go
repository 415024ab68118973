package irc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lrstanley/girc"

	"github.com/fedora-infra/kojibot/acl"
	"github.com/fedora-infra/kojibot/bot"
	"github.com/fedora-infra/kojibot/bot/reply"
)

// Keep-alive: girc PINGs the server every pingDelay and gives up when no
// PONG came pingTimeout after that.
const (
	pingDelay   = 60 * time.Second
	pingTimeout = 60 * time.Second
)

// Reconnect backoff: from reconnectMin doubling to irc.reconnect_max, with
// jitter; reset once a connection has stayed up for stableAfter.
const (
	reconnectMin = time.Second
	stableAfter  = 30 * time.Second
)

// quitGrace is how long a QUIT may take at shutdown before the socket is
// closed.
const quitGrace = 3 * time.Second

// Run connects, and reconnects with capped exponential backoff and jitter,
// until ctx ends (then it returns nil after a QUIT) or SASL login failed
// MaxSASLFailures times in a row (then it returns an error wrapping
// ErrSASL). Run may be called once.
func (b *Bot) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("bot: Run called twice")
	}
	// The workers stop when Run returns, for whatever reason, and Run
	// waits for the commands in flight.
	var workers sync.WaitGroup
	defer workers.Wait()
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	for range b.cfg.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			b.work(workCtx)
		}()
	}

	bo := backoff{min: b.reconnectMin, max: max(b.cfg.ReconnectMax, b.reconnectMin)}
	saslFailures := 0
	for {
		begin := time.Now()
		res := b.connectOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case res.saslErr != nil:
			saslFailures++
			b.log.Error("SASL login failed", "attempt", saslFailures, "of", MaxSASLFailures, "err", res.saslErr)
			if saslFailures >= MaxSASLFailures {
				return fmt.Errorf("%w %d times in a row, giving up: %w", ErrSASL, saslFailures, res.saslErr)
			}
		case res.registered:
			saslFailures = 0
		}
		if res.registered && time.Since(begin) >= stableAfter {
			bo.reset()
		}
		wait := bo.next()
		b.log.Warn("disconnected from IRC", "err", res.err, "registered", res.registered, "retry_in", wait.Round(time.Millisecond))
		if err := sleepCtx(ctx, wait); err != nil {
			return nil
		}
	}
}

// backoff is a capped exponential backoff with jitter: each wait is drawn
// from [d/2, d] where d doubles from min up to max.
type backoff struct {
	min, max time.Duration
	n        int
}

func (bo *backoff) next() time.Duration {
	d := bo.min
	for i := 0; i < bo.n && d < bo.max; i++ {
		d *= 2
	}
	d = min(d, bo.max)
	bo.n++
	return d/2 + rand.N(d/2+1)
}

func (bo *backoff) reset() { bo.n = 0 }

// result is how one connection ended.
type result struct {
	registered bool
	saslErr    error
	err        error
}

// connectOnce runs one connection with a fresh girc client (girc panics on
// a second Connect and keeps per-connection state) until it ends or ctx
// does.
func (b *Bot) connectOnce(ctx context.Context) result {
	s := newSession(b)
	gcfg := b.gircConfig()
	// Before registration a taken nick gets a "_"; after it, a refused
	// NICK (the regain, below) keeps the nick the bot has.
	gcfg.HandleNickCollide = func(old string) string {
		if s.registered.Load() {
			return ""
		}
		return old + "_"
	}
	client := girc.New(gcfg)
	s.client = client
	s.register()

	done := make(chan error, 1)
	go func() { done <- client.Connect() }()

	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// girc sets its stop function in Connect without a lock: wait until
		// Connect got that far (INITIALIZED) before asking it to stop.
		select {
		case <-s.initialized:
			client.Quit("kojibot shutting down")
			select {
			case err = <-done:
			case <-time.After(quitGrace):
				client.Close()
				err = <-done
			}
		case err = <-done:
		}
	}
	s.end()
	return result{registered: s.registered.Load(), saslErr: s.saslError(), err: err}
}

// gircConfig is the girc configuration: our own flood control
// (AllowFlood), panics recovered, TLS with the server name checked.
func (b *Bot) gircConfig() girc.Config {
	c := girc.Config{
		Server:      b.cfg.Server,
		Port:        b.cfg.Port,
		Nick:        b.cfg.Nick,
		User:        ident(b.cfg.Nick),
		Name:        "kojibot",
		SSL:         b.cfg.TLS,
		AllowFlood:  true,
		PingDelay:   pingDelay,
		PingTimeout: pingTimeout,
		RecoverFunc: b.recoverHandler,
		Version:     "kojibot",
	}
	if b.cfg.TLS {
		c.TLSConfig = &tls.Config{
			ServerName:         b.cfg.Server,
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: b.cfg.TLSSkipVerify, //nolint:gosec // an explicit, documented setting
		}
	}
	if b.cfg.SASL.User != "" {
		c.SASL = &girc.SASLPlain{User: b.cfg.SASL.User, Pass: b.cfg.SASL.Password.Reveal()}
	}
	return c
}

// ident is the user name sent at registration: the nick's valid
// characters, at most 10.
func ident(nick string) string {
	var b strings.Builder
	for _, r := range nick {
		if b.Len() == 10 {
			break
		}
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 || !girc.IsValidUser(b.String()) {
		return "kojibot"
	}
	return b.String()
}

// recoverHandler logs a panic in a girc event handler with its stack.
func (b *Bot) recoverHandler(_ *girc.Client, e *girc.HandlerError) {
	b.log.Error("panic in IRC event handler", "panic", fmt.Sprint(e.Panic), "event", e.Event.Command,
		"stack", string(e.Stack))
}

// session is the state of one connection.
type session struct {
	b      *Bot
	client *girc.Client

	initialized chan struct{}
	initOnce    sync.Once
	registered  atomic.Bool
	loggedIn    atomic.Bool
	closed      chan struct{}
	stopWriter  context.CancelFunc

	// casemap is the network's CASEMAPPING (an acl.CaseMapping), from
	// ISUPPORT; rfc1459 until the server names one.
	casemap atomic.Value

	mu       sync.Mutex
	saslErr  error
	self     selfMask
	inside   map[string]bool         // channels joined, casefolded
	pending  map[string][]*whoisWait // by casefolded nick
	writerWG sync.WaitGroup
}

// fold returns a nick or account name in the network's canonical case.
func (s *session) fold(name string) string {
	m, _ := s.casemap.Load().(acl.CaseMapping)
	return m.Fold(name)
}

// onISupport (005) learns the network's CASEMAPPING and passes it on.
func (s *session) onISupport(_ *girc.Client, e girc.Event) {
	for _, p := range e.Params {
		if v, ok := strings.CutPrefix(p, "CASEMAPPING="); ok {
			m := acl.ParseCaseMapping(v)
			s.casemap.Store(m)
			s.b.log.Info("network case mapping", "casemapping", v, "used", string(m))
			if s.b.onCaseMapping != nil {
				s.b.onCaseMapping(m)
			}
		}
	}
}

func newSession(b *Bot) *session {
	s := &session{
		b:           b,
		initialized: make(chan struct{}),
		closed:      make(chan struct{}),
		pending:     map[string][]*whoisWait{},
		inside:      map[string]bool{},
		self: selfMask{Nick: b.cfg.Nick, User: "~" + ident(b.cfg.Nick),
			Host: strings.Repeat("h", maxHostLen)},
	}
	s.casemap.Store(acl.CaseMappingRFC1459)
	return s
}

// register installs the event handlers. Every one runs in girc's event loop
// and returns at once: slow work goes to the worker pool.
func (s *session) register() {
	c := s.client
	// No automatic CTCP replies: they would bypass our pacing. (girc still
	// answers unknown CTCP queries with ERRMSG itself.)
	for _, q := range []string{girc.CTCP_PING, girc.CTCP_PONG, girc.CTCP_VERSION, girc.CTCP_SOURCE, girc.CTCP_TIME, girc.CTCP_FINGER, girc.CTCP_CLIENTINFO, girc.CTCP_USERINFO} {
		c.CTCP.Set(q, func(*girc.Client, girc.CTCPEvent) {})
	}
	c.Handlers.Add(girc.INITIALIZED, func(*girc.Client, girc.Event) {
		s.initOnce.Do(func() { close(s.initialized) })
	})
	c.Handlers.Add(girc.RPL_LOGGEDIN, func(_ *girc.Client, e girc.Event) {
		s.loggedIn.Store(true)
		if len(e.Params) > 2 {
			s.b.log.Info("logged in to services", "account", e.Params[2])
		}
	})
	for _, cmd := range []string{"902", girc.ERR_SASLFAIL, girc.ERR_SASLTOOLONG, girc.ERR_SASLABORTED} {
		c.Handlers.Add(cmd, func(_ *girc.Client, e girc.Event) {
			s.setSASLError(fmt.Errorf("%s %s", e.Command, e.Last()))
		})
	}
	c.Handlers.Add(girc.RPL_WELCOME, s.onWelcome)
	c.Handlers.Add(girc.JOIN, s.onJoin)
	c.Handlers.Add(girc.KICK, s.onKick)
	c.Handlers.Add(girc.PRIVMSG, s.onPrivmsg)
	c.Handlers.Add(girc.RPL_ISUPPORT, s.onISupport)
	c.Handlers.Add(girc.NICK, s.onNickGone)
	c.Handlers.Add(girc.QUIT, s.onNickGone)
	c.Handlers.Add(girc.RPL_WHOISACCOUNT, s.onWhoisAccount)
	c.Handlers.Add(girc.RPL_ENDOFWHOIS, s.onWhoisEnd)
	c.Handlers.Add(girc.ERR_NOSUCHNICK, s.onWhoisEnd)
	c.Handlers.Add(girc.ERROR, func(_ *girc.Client, e girc.Event) {
		s.b.log.Warn("server closed the connection", "error", e.Last())
	})
}

func (s *session) setSASLError(err error) {
	s.mu.Lock()
	if s.saslErr == nil {
		s.saslErr = err
	}
	s.mu.Unlock()
}

func (s *session) saslError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saslErr
}

func (s *session) mask() selfMask {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.self
}

// onWelcome (001): registration is complete. Without the SASL login we
// asked for, hang up; else start the writer and join the channels.
func (s *session) onWelcome(c *girc.Client, e girc.Event) {
	b := s.b
	if b.cfg.SASL.User != "" && !s.loggedIn.Load() {
		s.setSASLError(errors.New("registered without a SASL login (is SASL offered?)"))
		c.Close()
		return
	}
	if len(e.Params) > 0 {
		s.mu.Lock()
		s.self.Nick = e.Params[0]
		s.mu.Unlock()
	}
	s.registered.Store(true)
	// The JOINs are queued before the writer starts, so that they go ahead
	// of whatever waited for the connection (the control lane is served
	// first): a notification queued while disconnected must not reach the
	// server before the bot is in its channel.
	for _, ch := range joinList(b.cfg) {
		b.out.push(laneControl, []string{"JOIN " + ch})
	}
	b.mu.Lock()
	b.sess = s
	b.mu.Unlock()
	b.connected.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.stopWriter = cancel
	s.mu.Unlock()
	s.writerWG.Add(1)
	go func() {
		defer s.writerWG.Done()
		writeLoop(ctx, b.out, b.pace, func(line string) {
			if err := c.Cmd.SendRawNoSplit(line); err != nil {
				b.log.Error("unsendable line", "line", line, "err", err)
			}
		})
	}()
	b.log.Info("connected to IRC", "server", b.cfg.Server, "nick", e.Params[0], "account_tag", c.HasCapability("account-tag"))
	if len(e.Params) > 0 && b.cfg.SASL.User != "" && s.fold(e.Params[0]) != s.fold(b.cfg.Nick) {
		s.writerWG.Add(1)
		go func() {
			defer s.writerWG.Done()
			s.regain(ctx, c)
		}()
	}
}

// regainEvery is how often a bot without its nick asks for it again;
// every regainRecoverEvery-th time through NickServ RECOVER first.
var (
	regainEvery        = time.Second
	regainRecoverEvery = 15
)

// regain takes the configured nick back when another connection holds
// it: most often the ghost of this bot's earlier connection (a process
// killed, a machine gone), which the server keeps until its ping timeout.
// Logged in with SASL, the bot asks NickServ to RECOVER the nick (Anope;
// Atheme's REGAIN), which disconnects or renames the holder, then takes
// it with NICK; it tries again until it has the nick or ctx ends.
func (s *session) regain(ctx context.Context, c *girc.Client) {
	b := s.b
	b.log.Warn("the nick is taken, most likely by a ghost of an earlier connection: taking it back through NickServ",
		"nick", b.cfg.Nick, "have", c.GetNick())
	t := time.NewTicker(regainEvery)
	defer t.Stop()
	for i := 0; ; i++ {
		if s.fold(c.GetNick()) == s.fold(b.cfg.Nick) {
			b.log.Info("took the nick back", "nick", b.cfg.Nick)
			return
		}
		if i%regainRecoverEvery == 0 {
			b.out.push(laneControl, []string{"PRIVMSG NickServ :RECOVER " + b.cfg.Nick})
		} else {
			b.out.push(laneControl, []string{"NICK " + b.cfg.Nick})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// onJoin learns our real user@host from our own JOIN, for line budgets,
// and which channels we are in (Bot.Joined).
func (s *session) onJoin(c *girc.Client, e girc.Event) {
	if e.Source == nil || s.fold(e.Source.Name) != s.fold(c.GetNick()) {
		return
	}
	s.mu.Lock()
	s.self = selfMask{Nick: e.Source.Name, User: e.Source.Ident, Host: e.Source.Host}
	if len(e.Params) > 0 {
		s.inside[s.fold(e.Params[0])] = true
	}
	s.mu.Unlock()
	if len(e.Params) > 0 {
		s.b.log.Info("joined", "channel", e.Params[0])
	}
	s.updateJoined()
}

// updateJoined sets Bot.joined from whether this session is in every
// channel of joinList.
func (s *session) updateJoined() {
	s.mu.Lock()
	all := true
	for _, ch := range joinList(s.b.cfg) {
		all = all && s.inside[s.fold(ch)]
	}
	s.mu.Unlock()
	s.b.mu.Lock()
	if s.b.sess == s {
		s.b.joined.Store(all)
	}
	s.b.mu.Unlock()
}

// onKick rejoins a channel the bot was kicked from.
func (s *session) onKick(c *girc.Client, e girc.Event) {
	if len(e.Params) < 2 || s.fold(e.Params[1]) != s.fold(c.GetNick()) {
		return
	}
	s.b.log.Warn("kicked", "channel", e.Params[0], "reason", e.Last())
	s.mu.Lock()
	delete(s.inside, s.fold(e.Params[0]))
	s.mu.Unlock()
	s.updateJoined()
	s.b.out.push(laneControl, []string{"JOIN " + e.Params[0]})
}

// onPrivmsg routes a command line: it copies what the command needs out of
// the event and hands it to the worker pool, never blocking.
func (s *session) onPrivmsg(c *girc.Client, e girc.Event) {
	if e.Source == nil || e.Echo || len(e.Params) < 2 {
		return
	}
	b := s.b
	nick := e.Source.Name
	me := c.GetNick()
	if s.fold(nick) == s.fold(me) {
		return
	}
	target := e.Params[0]
	place := ""
	switch {
	case s.fold(target) == s.fold(me):
	case girc.IsValidChannel(target):
		place = target
	default:
		return // e.g. a STATUSMSG like @#chan
	}
	text, ok := bot.Route(b.cfg.CommandPrefix, place != "", e.Last())
	if !ok {
		return
	}
	j := job{sess: s, nick: nick, place: place, text: text, received: time.Now()}
	if c.HasCapability("account-tag") {
		j.tagged = true
		if acct, ok := e.Tags.Get("account"); ok && acct != "*" {
			j.account = acct
		}
	}
	// Inbound limit: one bucket per account; callers without one share a
	// single bucket whatever nick they use. Without account-tag the account
	// is known only after the WHOIS: the nick's bucket bounds the WHOIS
	// traffic here, and the worker charges the shared bucket when the
	// answer is "not logged in".
	key := bot.AnonymousBucket
	switch {
	case !j.tagged:
		key = "nick:" + s.fold(nick)
	case j.account != "":
		key = "account:" + s.fold(j.account)
	}
	rcpt := b.recipientOf(s, nick, j.account)
	if ok, warn := b.users.Allow(key); !ok {
		if warn {
			b.reply(rcpt, nick, place, reply.Text(reply.Info, "slow down, please: too many commands; try again in a few seconds"), false)
		}
		b.log.Info("command rate-limited", "nick", nick, "account", j.account, "place", place)
		return
	}
	if !j.tagged {
		j.whois = s.startWhois(nick)
	}
	select {
	case b.jobs <- j:
	default:
		if j.whois != nil {
			s.forget(s.fold(nick), j.whois)
		}
		b.log.Warn("worker queue full: command refused", "nick", nick, "place", place, "text", text)
		b.reply(rcpt, nick, place, reply.Text(reply.Error, "too busy, try again in a moment"), false)
	}
}

// end tears the session down once Connect has returned.
func (s *session) end() {
	close(s.closed)
	b := s.b
	b.mu.Lock()
	if b.sess == s {
		b.sess = nil
		b.connected.Store(false)
		b.joined.Store(false)
	}
	b.mu.Unlock()
	s.mu.Lock()
	stop := s.stopWriter
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.writerWG.Wait()
	b.out.clearControl()
}
