package irc

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/bot"
	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands"
	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
)

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

	// The impostor's command never runs as alice.
	deadline := time.After(10 * time.Second)
	for {
		select {
		case req := <-rec.reqs:
			if req.Text == "capacity ppc3 2" && req.Account != "" {
				t.Fatalf("the impostor's command ran as account %q", req.Account)
			}
		case <-deadline:
			return
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
	time.Sleep(5 * time.Second)
	if got := len(rec.reqs); got != burst {
		t.Errorf("%d commands from five nicks without an account reached the handler, want %d (one shared burst)", got, burst)
	}
	// A logged-in caller has a bucket of their own.
	alice := dial(t, shared.Addr(), "alice_share", ircnet.ClientOptions{SASLUser: "alice", SASLPassword: alicePassword, Caps: []string{"message-tags"}})
	join(t, alice, channel)
	say(t, alice, channel, "!koji whoami")
	deadline := time.After(15 * time.Second)
	for {
		select {
		case req := <-rec.reqs:
			if req.Account == "alice" {
				return
			}
		case <-deadline:
			t.Fatal("alice's command was limited by the anonymous callers' bucket")
		}
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
