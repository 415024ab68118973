package irc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
)

// TestRegainNickFromGhost: a connection logged in to the bot's account
// holds the bot's nick (the ghost of a killed process, which the server
// keeps until its ping timeout); the bot registers under another nick,
// takes its own back through NickServ (Anope's RECOVER) and answers
// under it; the ghost is gone from the nick.
func TestRegainNickFromGhost(t *testing.T) {
	t.Parallel()
	const account, password = "kbghost", "kbghost-pw"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := shared.RegisterAccount(ctx, account, password); err != nil {
		t.Fatal(err)
	}
	ghost := dial(t, shared.Addr(), account, ircnet.ClientOptions{SASLUser: account, SASLPassword: password})
	watcher := dial(t, shared.Addr(), "kbghostw", ircnet.ClientOptions{})
	join(t, watcher, "#ghost")
	cfg := botConfig(shared, account, "#ghost")
	cfg.SASL = config.SASL{User: account, Password: password}
	runBot(t, cfg, newRecorder())
	// It joins under another nick first, then takes its own.
	m := expect(t, watcher, func(m ircnet.Message) bool {
		return m.Command == "NICK" && strings.EqualFold(m.Text, account) || m.Command == "NICK" && len(m.Params) > 0 && strings.EqualFold(m.Params[0], account)
	})
	if strings.EqualFold(m.Source, account) {
		t.Fatalf("the nick went to %s, not from the bot: %s", m.Source, m.Raw)
	}
	say(t, watcher, "#ghost", "!koji whoami")
	if got := expect(t, watcher, from(account, "PRIVMSG", "#ghost")); !strings.Contains(got.Text, "ok whoami") {
		t.Errorf("reply under the regained nick: %q", got.Text)
	}
	// The ghost lost the nick: disconnected, or renamed.
	for _, msg := range ghost.Messages() {
		if msg.Command == "PRIVMSG" && strings.EqualFold(msg.Source, account) {
			t.Errorf("the ghost still gets the nick's traffic: %s", msg.Raw)
		}
	}
}
