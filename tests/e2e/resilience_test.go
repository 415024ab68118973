package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// TestBurst sends commands as fast as a client can and checks every one is
// answered and the bot, connected on a class with InspIRCd's default flood
// limits, is not thrown off for flooding.
func TestBurst(t *testing.T) {
	const paced = "kojibot-paced"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	path, err := sb.WriteConfig(ctx, sandbox.BotConfig{Nick: paced, DB: "koji", Channel: "#paced", Paced: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := sb.StartBot(binary, paced, path)
	if err != nil {
		t.Fatal(err)
	}
	botChannel[paced], bots[paced] = "#paced", b
	t.Cleanup(func() {
		b.Stop()
		delete(bots, paced)
		delete(botChannel, paced)
	})
	if err := waitJoined(ctx, paced); err != nil {
		t.Fatal(err)
	}
	alice := join(t, paced, "alice", "")
	const n = 12
	for i := 0; i < n; i++ {
		if err := alice.c.Privmsg(alice.channel, "!koji host ppc1"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := alice.c.Collect(ctx, n, func(m ircnet.Message) bool {
		return m.Command == "PRIVMSG" && m.Source == paced && strings.HasPrefix(m.Text, alice.nick+": ")
	})
	if err != nil {
		t.Fatalf("burst: %v", err)
	}
	answered := 0
	for _, m := range got {
		if strings.Contains(m.Text, "ppc1.fedora.redhat.com: enabled") {
			answered++
		}
	}
	if answered != n {
		t.Errorf("%d of %d commands answered", answered, n)
	}
	for _, m := range alice.c.Messages() {
		if m.Source == paced && (m.Command == "QUIT" || m.Command == "PART") {
			t.Errorf("the bot left during the burst: %s", m.Raw)
		}
	}
	if out := b.Output(); strings.Contains(out, "Excess Flood") || strings.Contains(out, "flood") && strings.Contains(out, "ERROR") {
		t.Errorf("the bot was disconnected for flooding:\n%s", tail(out, 20))
	}
	// Still there and answering.
	alice.expect("host ppc2", "ppc2.fedora.redhat.com: enabled")
}

// TestPostgresRestart: while PostgreSQL is down commands answer error:,
// after it is back they work again, with the same bot process.
func TestPostgresRestart(t *testing.T) {
	alice := join(t, mainBot, "alice", "")
	alice.expect("host ppc1", "ppc1.fedora.redhat.com: enabled")
	sb.Koji.PG.Stop()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = sb.Koji.PG.Start(context.Background())
		}
	})
	alice.expect("host ppc1", "error: ", "unavailable")
	alice.expect("capacity ppc1 3", "error: ", "unavailable", "nothing was changed")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sb.Koji.PG.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	alice.expect("host ppc1", "ppc1.fedora.redhat.com: enabled")
	if bots[mainBot].Exited() {
		t.Fatal("the bot exited while PostgreSQL was down")
	}
}

// TestIRCRestart: the bot reconnects after the IRC server restarts, joins
// its channel again and answers.
func TestIRCRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := sb.IRC.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// Services lost their accounts' sessions, not the accounts.
	if err := waitJoined(ctx, mainBot); err != nil {
		t.Fatal(err)
	}
	alice := join(t, mainBot, "alice", "")
	alice.expect("host ppc1", "ppc1.fedora.redhat.com: enabled")
	for nick := range bots {
		if err := waitJoined(ctx, nick); err != nil {
			t.Error(err)
		}
	}
}
