package irc

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/bot"
	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands"
	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
)

// Accounts registered on every test network.
const (
	botAccount    = "kojibot"
	botPassword   = "bot-secret-pass"
	alicePassword = "alice-secret-pass"
)

// shared is the network most integration tests use; tests that change the
// network (no account-tag, restart) start their own.
var shared *ircnet.Network

func TestMain(m *testing.M) {
	if flag.Parse(); testing.Short() {
		fmt.Println("skipped with -short: these tests start real servers")
		os.Exit(0)
	}
	// The tests wait on pacing and on the server, not on the CPU.
	harness.ServerBound(16)
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	n, err := startNetwork(ctx, ircnet.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bot tests: IRC network:", err)
		return 1
	}
	defer n.Stop()
	shared = n
	return m.Run()
}

// startNetwork starts InspIRCd + Anope and registers the bot's and alice's
// accounts.
func startNetwork(ctx context.Context, opts ircnet.Options) (*ircnet.Network, error) {
	n, err := ircnet.Start(ctx, "", opts)
	if err != nil {
		return nil, err
	}
	for acct, pass := range map[string]string{botAccount: botPassword, "alice": alicePassword} {
		if err := n.RegisterAccount(ctx, acct, pass); err != nil {
			n.Stop()
			return nil, err
		}
	}
	return n, nil
}

func ownNetwork(t *testing.T, opts ircnet.Options) *ircnet.Network {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := startNetwork(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

// recorder is a fake Handler: it records every request and answers with
// reply, by default "ok <text>".
type recorder struct {
	reqs  chan commands.Request
	reply func(req commands.Request, out commands.Output)
}

func newRecorder() *recorder {
	return &recorder{reqs: make(chan commands.Request, 100)}
}

func (r *recorder) Handle(_ context.Context, req commands.Request, out commands.Output) {
	r.reqs <- req
	if r.reply != nil {
		r.reply(req, out)
		return
	}
	out.Send(reply.Text(commands.Info, "ok "+req.Text))
}

// next returns the next request the bot handed over.
func (r *recorder) next(t *testing.T) commands.Request {
	t.Helper()
	select {
	case req := <-r.reqs:
		return req
	case <-time.After(15 * time.Second):
		t.Fatal("no request reached the handler")
	}
	return commands.Request{}
}

// testLog sends the bot's log to the test's output.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// botConfig is a bot on the network's strict port, logging in as kojibot.
func botConfig(n *ircnet.Network, nick string, channels ...string) config.IRC {
	c := config.Default().IRC
	c.Server, c.Port, c.TLS, c.Nick = n.Host(), n.StrictPort(), false, nick
	c.SASL = config.SASL{User: botAccount, Password: botPassword}
	c.Channels, c.NotifyChannel = channels, ""
	return c
}

// runBot runs a bot until the test ends and checks that Run returned nil.
func runBot(t *testing.T, cfg config.IRC, h Handler, opts ...Option) *Bot {
	t.Helper()
	b, err := New(cfg, h, testLog(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	return b
}

func dial(t *testing.T, addr, nick string, opts ircnet.ClientOptions) *ircnet.Client {
	t.Helper()
	c, err := ircnet.Dial(context.Background(), addr, nick, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Quit() })
	return c
}

func join(t *testing.T, c *ircnet.Client, channel string) {
	t.Helper()
	if err := c.Join(context.Background(), channel); err != nil {
		t.Fatal(err)
	}
}

func say(t *testing.T, c *ircnet.Client, target, text string) {
	t.Helper()
	if err := c.Privmsg(target, text); err != nil {
		t.Fatal(err)
	}
}

// from matches a command from nick (to target, when not "").
func from(nick, command, target string) func(ircnet.Message) bool {
	return func(m ircnet.Message) bool {
		return m.Command == command && strings.EqualFold(m.Source, nick) &&
			(target == "" || strings.EqualFold(m.Target(), target))
	}
}

func expect(t *testing.T, c *ircnet.Client, match func(ircnet.Message) bool) ircnet.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := c.Expect(ctx, match)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitJoined waits until c sees the bot join channel.
func waitJoined(t *testing.T, c *ircnet.Client, botNick, channel string) {
	t.Helper()
	expect(t, c, func(m ircnet.Message) bool {
		return m.Command == "JOIN" && strings.EqualFold(m.Source, botNick) && strings.EqualFold(m.Params[0], channel)
	})
}

func TestSASLLoginAndJoin(t *testing.T) {
	t.Parallel()
	watcher := dial(t, shared.Addr(), "watcher1", ircnet.ClientOptions{})
	join(t, watcher, "#join1")
	join(t, watcher, "#join2")
	cfg := botConfig(shared, "kbjoin", "#join1")
	cfg.NotifyChannel = "#join2"
	b := runBot(t, cfg, newRecorder())
	waitJoined(t, watcher, "kbjoin", "#join1")
	waitJoined(t, watcher, "kbjoin", "#join2")
	if !b.Connected() {
		t.Error("Connected() = false after joining")
	}
	// Joined (systemd's READY) once the bot has seen its own JOINs of both.
	deadline := time.Now().Add(10 * time.Second)
	for !b.Joined() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !b.Joined() {
		t.Error("Joined() = false after joining #join1 and #join2")
	}
	if err := watcher.Raw("WHOIS kbjoin"); err != nil {
		t.Fatal(err)
	}
	m := expect(t, watcher, func(m ircnet.Message) bool { return m.Command == "330" || m.Command == "318" })
	if m.Command != "330" || m.Params[2] != botAccount {
		t.Errorf("bot not logged in to its account: %s", m.Raw)
	}
	b.Notify("", reply.Text(reply.Info, "watcher: test notification"))
	m = expect(t, watcher, from("kbjoin", "PRIVMSG", "#join2"))
	if m.Text != "watcher: test notification" {
		t.Errorf("notification %q", m.Text)
	}
}

func TestSASLFailureStops(t *testing.T) {
	t.Parallel()
	cfg := botConfig(shared, "kbbadpw")
	cfg.SASL.Password = "wrong-password"
	cfg.ReconnectMax = 200 * time.Millisecond
	b, err := New(cfg, newRecorder(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = b.Run(ctx)
	if !errors.Is(err, ErrSASL) {
		t.Fatalf("Run = %v, want ErrSASL", err)
	}
	if !strings.Contains(err.Error(), "3 times") {
		t.Errorf("error does not say how many attempts: %v", err)
	}
	if b.Connected() {
		t.Error("Connected() = true after SASL failures")
	}
}

// identityCase sends one command and checks the account the handler saw.
func checkAccount(t *testing.T, rec *recorder, c *ircnet.Client, botNick, place, want string) {
	t.Helper()
	target, text := place, "!koji whoami"
	if place == "" {
		target, text = botNick, "whoami"
	}
	say(t, c, target, text)
	req := rec.next(t)
	if req.Account != want || req.Nick != c.Nick() || req.Place != place || req.Text != "whoami" {
		t.Errorf("%s in %q: request %+v, want account %q", c.Nick(), place, req, want)
	}
	if req.Received.IsZero() || time.Since(req.Received) > time.Minute {
		t.Errorf("Received = %v", req.Received)
	}
	// The reply goes back where the command came from.
	replyTo := place
	if place == "" {
		replyTo = c.Nick()
	}
	wantText := "ok whoami"
	if place != "" {
		wantText = c.Nick() + ": ok whoami"
	}
	match := from(botNick, "PRIVMSG", replyTo)
	expect(t, c, func(m ircnet.Message) bool { return match(m) && m.Text == wantText })
}

// testIdentity runs the identity scenarios against a bot on n.
func testIdentity(t *testing.T, n *ircnet.Network, botNick, channel string) {
	ctx := context.Background()
	logged := dial(t, n.Addr(), botNick+"_al", ircnet.ClientOptions{SASLUser: "alice", SASLPassword: alicePassword})
	impostor := dial(t, n.Addr(), "alice", ircnet.ClientOptions{})
	join(t, logged, channel)
	join(t, impostor, channel)
	rec := newRecorder()
	// Identity is under test, not pacing: the port without flood limits,
	// and no wait between lines.
	cfg := botConfig(n, botNick, channel)
	cfg.Port, cfg.SendRate, cfg.SendBurst = n.Port(), 200, 200
	runBot(t, cfg, rec)
	waitJoined(t, logged, botNick, channel)

	t.Run("logged in", func(t *testing.T) {
		checkAccount(t, rec, logged, botNick, channel, "alice")
		checkAccount(t, rec, logged, botNick, "", "alice")
	})
	t.Run("nick alice without login", func(t *testing.T) {
		checkAccount(t, rec, impostor, botNick, channel, "")
		checkAccount(t, rec, impostor, botNick, "", "")
	})
	t.Run("after IDENTIFY", func(t *testing.T) {
		if err := impostor.Identify(ctx, "alice", alicePassword); err != nil {
			t.Fatal(err)
		}
		checkAccount(t, rec, impostor, botNick, channel, "alice")
	})
	t.Run("after LOGOUT", func(t *testing.T) {
		if err := impostor.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		checkAccount(t, rec, impostor, botNick, channel, "")
		checkAccount(t, rec, impostor, botNick, "", "")
	})
}

func TestIdentityAccountTag(t *testing.T) {
	t.Parallel()
	testIdentity(t, shared, "kbtag", "#ident-tag")
}

func TestIdentityWhois(t *testing.T) {
	t.Parallel()
	n := ownNetwork(t, ircnet.Options{NoAccountTag: true})
	testIdentity(t, n, "kbwhois", "#ident-whois")
}

func TestLongReplySummarised(t *testing.T) {
	t.Parallel()
	const channel = "#long"
	c := dial(t, shared.Addr(), "longcaller", ircnet.ClientOptions{})
	join(t, c, channel)
	var text strings.Builder
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&text, "build %d: %s ✓\n", i, strings.Repeat("日本", i%7))
	}
	rec := newRecorder()
	rec.reply = func(_ commands.Request, out commands.Output) { out.Send(reply.Text(commands.Info, text.String())) }
	// The summary is under test here, not the pacing: the port without
	// flood limits, and no wait between lines.
	cfg := botConfig(shared, "kblong", channel)
	cfg.Port, cfg.SendRate, cfg.SendBurst = shared.Port(), 200, 200
	runBot(t, cfg, rec)
	waitJoined(t, c, "kblong", channel)

	say(t, c, channel, "!koji long")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	inChannel, err := c.Collect(ctx, 4, from("kblong", "PRIVMSG", channel))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(text.String(), "\n")[:3]
	for i, m := range inChannel[:3] {
		if m.Text != "longcaller: "+want[i] {
			t.Errorf("channel line %d = %q, want %q", i, m.Text, "longcaller: "+want[i])
		}
	}
	if wantSummary := "longcaller: … 37 more lines sent to you by private notice"; inChannel[3].Text != wantSummary {
		t.Errorf("summary %q, want %q", inChannel[3].Text, wantSummary)
	}
	notices, err := c.Collect(ctx, 40, from("kblong", "NOTICE", "longcaller"))
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for _, m := range notices {
		got.WriteString(m.Text + "\n")
	}
	if got.String() != text.String() {
		t.Errorf("private copy differs:\n%s\nwant\n%s", got.String(), text.String())
	}
	extra, _ := c.Collect(withTimeout(t, 2*time.Second), 1, from("kblong", "PRIVMSG", channel))
	if len(extra) > 0 {
		t.Errorf("more than 4 lines in the channel: %q", extra[0].Raw)
	}
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestLongLineSplitOnTheWire(t *testing.T) {
	t.Parallel()
	c := dial(t, shared.Addr(), "linecaller", ircnet.ClientOptions{})
	text := strings.Repeat("é", 200) + " " + strings.Repeat("🚀", 150) + " end"
	rec := newRecorder()
	rec.reply = func(_ commands.Request, out commands.Output) { out.Send(reply.Text(commands.Info, text)) }
	cfg := botConfig(shared, "kbline")
	cfg.LineBytes = 1000 // let the 512-byte IRC limit decide
	b := runBot(t, cfg, rec)
	if !harness.WaitFor(context.Background(), 15*time.Second, b.Connected) {
		t.Fatal("bot did not connect")
	}
	say(t, c, "kbline", "split")
	var got strings.Builder
	for got.String() != text {
		m := expect(t, c, from("kbline", "PRIVMSG", "linecaller"))
		if n := len(m.Raw) + 2; n > 512 {
			t.Errorf("line of %d bytes on the wire: %q", n, m.Raw)
		}
		got.WriteString(m.Text)
		if !strings.HasPrefix(text, got.String()) {
			t.Fatalf("received text diverges: %q", got.String())
		}
	}
}

func TestBurstAnsweredWithoutFloodDisconnect(t *testing.T) {
	t.Parallel()
	const channel = "#burst"
	c := dial(t, shared.Addr(), "burster", ircnet.ClientOptions{SASLUser: "alice", SASLPassword: alicePassword})
	join(t, c, channel)
	cfg := botConfig(shared, "kbburst", channel)
	// This test is about outbound pacing, not the inbound limit.
	limits := WithUserLimits(bot.NewUserLimits(config.Default().Commands.UserRate, 100))
	// Long replies: 30 of them unpaced overflow InspIRCd's receive queue
	// ("RecvQ exceeded") on the strict port.
	pad := strings.Repeat(".", 280)
	rec := newRecorder()
	rec.reply = func(req commands.Request, out commands.Output) {
		out.Send(reply.Text(commands.Info, "ok "+req.Text+" "+pad))
	}
	b := runBot(t, cfg, rec, limits)
	waitJoined(t, c, "kbburst", channel)
	before := b.current()

	const n = 30
	begin := time.Now()
	for i := 0; i < n; i++ {
		say(t, c, channel, fmt.Sprintf("!koji ping %d", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	replies, err := c.Collect(ctx, n, from("kbburst", "PRIVMSG", channel))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d replies in %v", n, time.Since(begin).Round(time.Millisecond))
	seen := map[string]bool{}
	for _, m := range replies {
		seen[m.Text] = true
	}
	for i := 0; i < n; i++ {
		if want := fmt.Sprintf("burster: ok ping %d %s", i, pad); !seen[want] {
			t.Errorf("no reply %q", want)
		}
	}
	for _, m := range c.Messages() {
		if m.At.After(begin) && strings.EqualFold(m.Source, "kbburst") && (m.Command == "QUIT" || m.Command == "PART" || m.Command == "JOIN") {
			t.Errorf("bot left: %s", m.Raw)
		}
	}
	if !b.Connected() || b.current() != before {
		t.Error("the bot's connection did not survive the burst")
	}
}

func TestInboundRateLimit(t *testing.T) {
	t.Parallel()
	c := dial(t, shared.Addr(), "spammer", ircnet.ClientOptions{SASLUser: "alice", SASLPassword: alicePassword})
	rec := newRecorder()
	cfg := botConfig(shared, "kblimit")
	b := runBot(t, cfg, rec, WithUserLimits(bot.NewUserLimits(0.01, 2)))
	if !harness.WaitFor(context.Background(), 15*time.Second, b.Connected) {
		t.Fatal("bot did not connect")
	}
	for i := 0; i < 6; i++ {
		say(t, c, "kblimit", fmt.Sprint("cmd ", i))
	}
	replies, err := c.Collect(withTimeout(t, 20*time.Second), 3, from("kblimit", "PRIVMSG", "spammer"))
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range replies {
		texts = append(texts, m.Text)
	}
	joined := strings.Join(texts, "|")
	if !strings.Contains(joined, "ok cmd 0") || !strings.Contains(joined, "ok cmd 1") || !strings.Contains(joined, "slow down") {
		t.Errorf("replies %q: want two answers and one slow-down", texts)
	}
	if extra, _ := c.Collect(withTimeout(t, 3*time.Second), 1, from("kblimit", "PRIVMSG", "spammer")); len(extra) > 0 {
		t.Errorf("more than one slow-down or a limited command answered: %q", extra[0].Text)
	}
	if len(rec.reqs) != 2 {
		t.Errorf("%d commands reached the handler, want 2", len(rec.reqs))
	}
}

func TestHandlerPanicRecovered(t *testing.T) {
	t.Parallel()
	c := dial(t, shared.Addr(), "panicker", ircnet.ClientOptions{})
	rec := newRecorder()
	rec.reply = func(req commands.Request, out commands.Output) {
		if req.Text == "boom" {
			panic("boom")
		}
		out.Send(reply.Text(commands.Info, "fine"))
	}
	b := runBot(t, botConfig(shared, "kbpanic"), rec)
	if !harness.WaitFor(context.Background(), 15*time.Second, b.Connected) {
		t.Fatal("bot did not connect")
	}
	say(t, c, "kbpanic", "boom")
	if m := expect(t, c, from("kbpanic", "PRIVMSG", "panicker")); !strings.HasPrefix(m.Text, "error: internal error") {
		t.Errorf("reply to a panicking command: %q", m.Text)
	}
	say(t, c, "kbpanic", "again")
	if m := expect(t, c, from("kbpanic", "PRIVMSG", "panicker")); m.Text != "fine" {
		t.Errorf("after a panic: %q", m.Text)
	}
}

func TestReconnectAfterRestart(t *testing.T) {
	t.Parallel()
	n := ownNetwork(t, ircnet.Options{})
	const channel = "#restart"
	c := dial(t, n.Addr(), "restarter", ircnet.ClientOptions{})
	join(t, c, channel)
	b := runBot(t, botConfig(n, "kbrestart", channel), newRecorder(), withReconnectMin(4*time.Second))
	waitJoined(t, c, "kbrestart", channel)
	say(t, c, channel, "!koji before")
	expect(t, c, from("kbrestart", "PRIVMSG", channel))

	ctx := context.Background()
	if err := n.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if !harness.WaitFor(ctx, 10*time.Second, func() bool { return !b.Connected() }) {
		t.Fatal("the bot did not notice the restart")
	}
	b.Notify(channel, reply.Text(reply.Info, "queued while disconnected"))

	c2 := dial(t, n.Addr(), "restarter2", ircnet.ClientOptions{})
	join(t, c2, channel)
	waitJoined(t, c2, "kbrestart", channel)
	if !b.Connected() {
		t.Error("Connected() = false after rejoining")
	}
	if m := expect(t, c2, from("kbrestart", "PRIVMSG", channel)); m.Text != "queued while disconnected" {
		t.Errorf("first line after reconnecting %q, want the queued notification", m.Text)
	}
	say(t, c2, channel, "!koji after")
	if m := expect(t, c2, from("kbrestart", "PRIVMSG", channel)); m.Text != "restarter2: ok after" {
		t.Errorf("reply after reconnecting %q", m.Text)
	}
}

// TestNewRejects checks configuration errors are reported, not run.
func TestNewRejects(t *testing.T) {
	good := config.Default().IRC
	good.Server, good.Channels, good.NotifyChannel = "irc.example.org", []string{"#ops"}, ""
	tests := map[string]func(*config.IRC){
		"no server":   func(c *config.IRC) { c.Server = "" },
		"bad nick":    func(c *config.IRC) { c.Nick = "9 lives" },
		"bad channel": func(c *config.IRC) { c.Channels = []string{"ops"} },
		"bad prefix":  func(c *config.IRC) { c.CommandPrefix = "! koji" },
	}
	for name, mod := range tests {
		cfg := good
		mod(&cfg)
		if _, err := New(cfg, newRecorder(), nil); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	if _, err := New(good, nil, nil); err == nil {
		t.Error("New accepted a nil Handler")
	}
	if _, err := New(good, newRecorder(), nil); err != nil {
		t.Fatal(err)
	}
}

// TestNoSASLOfferedIsAnError runs the bot against a bare server that does
// not offer SASL and welcomes it anyway: the bot must hang up rather than
// run unauthenticated, and give up after MaxSASLFailures attempts.
func TestNoSASLOfferedIsAnError(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go fakeServer(c)
		}
	}()
	cfg := config.Default().IRC
	cfg.Server, cfg.Port, cfg.TLS, cfg.Nick = "127.0.0.1", l.Addr().(*net.TCPAddr).Port, false, "kbnosasl"
	cfg.SASL = config.SASL{User: botAccount, Password: botPassword}
	cfg.Channels, cfg.NotifyChannel = nil, ""
	cfg.ReconnectMax = 100 * time.Millisecond
	b, err := New(cfg, newRecorder(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = b.Run(ctx)
	if !errors.Is(err, ErrSASL) || !strings.Contains(err.Error(), "without a SASL login") {
		t.Fatalf("Run = %v, want ErrSASL about the missing login", err)
	}
	if got := conns.Load(); got != MaxSASLFailures {
		t.Errorf("%d connections, want %d", got, MaxSASLFailures)
	}
}

// fakeServer is just enough of an IRC server to register a client without
// SASL: no capabilities offered, 001 after USER.
func fakeServer(c net.Conn) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		m := ircnet.ParseMessage(sc.Text())
		var reply string
		switch {
		case m.Command == "CAP" && m.Target() == "LS":
			reply = ":fake CAP * LS :"
		case m.Command == "CAP" && m.Target() == "REQ":
			reply = ":fake CAP * NAK :" + m.Text
		case m.Command == "USER":
			reply = ":fake 001 kbnosasl :Welcome"
		case m.Command == "PING":
			reply = ":fake PONG fake :" + m.Text
		case m.Command == "QUIT":
			return
		}
		if reply != "" {
			if _, err := fmt.Fprintf(c, "%s\r\n", reply); err != nil {
				return
			}
		}
	}
}

// TestWhoisAtArrivalNickChangeVoids: without account-tag, the WHOIS goes
// out when the line arrives. An impostor who sends a command under a nick
// and hands that nick to a logged-in user before a worker is free does not
// borrow that user's account: the command is voided, or runs as nobody.
func TestWhoisAtArrivalNickChangeVoids(t *testing.T) {
	t.Parallel()
	n := ownNetwork(t, ircnet.Options{NoAccountTag: true})
	const botNick, channel = "kbvoid", "#void"
	alice := dial(t, n.Addr(), "alice_away", ircnet.ClientOptions{SASLUser: "alice", SASLPassword: alicePassword})
	imp := dial(t, n.Addr(), "opsnick", ircnet.ClientOptions{})
	join(t, alice, channel)
	join(t, imp, channel)

	// One worker, held busy by the first command until released.
	release := make(chan struct{})
	var once sync.Once
	rec := newRecorder()
	rec.reply = func(req commands.Request, out commands.Output) {
		if req.Text == "hold" {
			<-release
		}
		out.Send(reply.Text(commands.Info, "ok "+req.Text))
	}
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	cfg := botConfig(n, botNick, channel)
	cfg.Workers = 1
	// Not pacing: the port without flood limits, no wait between lines.
	cfg.Port, cfg.SendRate, cfg.SendBurst = n.Port(), 200, 200
	runBot(t, cfg, rec)
	waitJoined(t, alice, botNick, channel)

	say(t, alice, channel, "!koji hold")
	if req := rec.next(t); req.Text != "hold" {
		t.Fatalf("first request %+v", req)
	}
	// The worker is busy: the impostor's command waits in the queue while
	// its nick goes to alice.
	say(t, imp, channel, "!koji capacity ppc3 2")
	time.Sleep(500 * time.Millisecond)
	if err := imp.Raw("NICK gone_imp"); err != nil {
		t.Fatal(err)
	}
	expect(t, alice, func(m ircnet.Message) bool { return m.Command == "NICK" && strings.EqualFold(m.Source, "opsnick") })
	if err := alice.Raw("NICK opsnick"); err != nil {
		t.Fatal(err)
	}
	expect(t, imp, func(m ircnet.Message) bool { return m.Command == "NICK" && strings.EqualFold(m.Source, "alice_away") })
	once.Do(func() { close(release) })

	// The impostor's command never runs as alice: it is voided, which the
	// bot says in the channel, or it runs as nobody.
	voided := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if _, err := alice.Expect(ctx, func(m ircnet.Message) bool {
			return m.Command == "PRIVMSG" && strings.EqualFold(m.Source, botNick) && strings.Contains(m.Text, "command ignored")
		}); err == nil {
			close(voided)
		}
	}()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case req := <-rec.reqs:
			if req.Text == "capacity ppc3 2" {
				if req.Account != "" {
					t.Fatalf("the impostor's command ran as account %q", req.Account)
				}
				return
			}
		case <-voided:
			return
		case <-deadline:
			t.Fatal("the impostor's command was neither voided nor run")
		}
	}
}

// TestAnonymousCallersShareOneBucket: callers without an account share one
// inbound bucket, whatever nick they use: five nicks get one burst, not
// five.
func TestAnonymousCallersShareOneBucket(t *testing.T) {
	t.Parallel()
	const botNick, channel = "kbshare", "#share"
	rec := newRecorder()
	cfg := botConfig(shared, botNick, channel)
	const burst = 3
	limits := WithUserLimits(bot.NewUserLimits(0.01, burst))
	var watcher *ircnet.Client
	var flood []*ircnet.Client
	for i := range 5 {
		c := dial(t, shared.Addr(), fmt.Sprint("anon", i), ircnet.ClientOptions{Caps: []string{"message-tags"}})
		join(t, c, channel)
		flood = append(flood, c)
	}
	watcher = flood[0]
	runBot(t, cfg, rec, limits)
	waitJoined(t, watcher, botNick, channel)
	for round := range 2 {
		for _, c := range flood {
			say(t, c, channel, fmt.Sprint("!koji hosts ", round))
		}
	}
	// A logged-in caller has a bucket of their own: alice's command comes
	// through, and when it has, the bot has read every line of the flood,
	// which went to the server before alice connected.
	alice := dial(t, shared.Addr(), "alice_share", ircnet.ClientOptions{SASLUser: "alice", SASLPassword: alicePassword, Caps: []string{"message-tags"}})
	join(t, alice, channel)
	say(t, alice, channel, "!koji whoami")
	anon, sawAlice := 0, false
	deadline := time.After(15 * time.Second)
	for !sawAlice || anon < burst {
		select {
		case req := <-rec.reqs:
			if req.Account == "alice" {
				sawAlice = true
			} else {
				anon++
			}
		case <-deadline:
			if !sawAlice {
				t.Fatal("alice's command was limited by the anonymous callers' bucket")
			}
			t.Fatalf("%d commands from five nicks without an account reached the handler, want %d (one shared burst)", anon, burst)
		}
	}
	// A command past the shared burst would already be with the workers;
	// give them a moment to hand it over.
	time.Sleep(500 * time.Millisecond)
	if anon += len(rec.reqs); anon != burst {
		t.Errorf("%d commands from five nicks without an account reached the handler, want %d (one shared burst)", anon, burst)
	}
}

// TestOperatorNotStarvedByAnonymousFlood: five nicks without an account
// flood the channel; with the default send_rate, a logged-in operator's
// reply still leaves within 2 s, because callers are served in turn and
// callers without an account last.
func TestOperatorNotStarvedByAnonymousFlood(t *testing.T) {
	t.Parallel()
	const botNick, channel = "kbfair", "#fair"
	rec := newRecorder()
	cfg := botConfig(shared, botNick, channel)
	// Let the whole flood in, so that its replies fill the outbound queue.
	limits := WithUserLimits(bot.NewUserLimits(100, 100))
	var flood []*ircnet.Client
	for i := range 5 {
		c := dial(t, shared.Addr(), fmt.Sprint("flood", i), ircnet.ClientOptions{Caps: []string{"message-tags"}})
		join(t, c, channel)
		flood = append(flood, c)
	}
	op := dial(t, shared.Addr(), "operator", ircnet.ClientOptions{SASLUser: "alice", SASLPassword: alicePassword, Caps: []string{"message-tags"}})
	join(t, op, channel)
	b := runBot(t, cfg, rec, limits)
	waitJoined(t, op, botNick, channel)
	if !harness.WaitFor(context.Background(), 15*time.Second, b.Connected) {
		t.Fatal("bot did not connect")
	}
	for round := range 6 {
		for _, c := range flood {
			say(t, c, channel, fmt.Sprintf("!koji hosts %d", round))
		}
	}
	// Wait until the flood's replies are being paced out.
	expect(t, op, func(m ircnet.Message) bool {
		return m.Command == "PRIVMSG" && strings.EqualFold(m.Source, botNick) && strings.HasPrefix(m.Text, "flood")
	})
	start := time.Now()
	say(t, op, channel, "!koji whoami")
	expect(t, op, func(m ircnet.Message) bool {
		return m.Command == "PRIVMSG" && strings.EqualFold(m.Source, botNick) && m.Text == "operator: ok whoami"
	})
	took := time.Since(start)
	t.Logf("operator's reply behind the flood: %s", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("the operator's reply took %s behind the flood, want under 2 s", took.Round(time.Millisecond))
	}
}
