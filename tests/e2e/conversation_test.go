package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
)

// replyTimeout bounds the wait for one reply; the bot paces its output at
// about one line a second, so a few lines can take a few seconds.
const replyTimeout = 60 * time.Second

var nickSeq atomic.Int64

// user is a test client in a bot's channel.
type user struct {
	t       *testing.T
	c       *ircnet.Client
	nick    string
	bot     string
	channel string
}

// join connects a client logged in as account (or not logged in when
// account is ""), with the given nick (or a unique one), to bot's channel.
func join(t *testing.T, bot, account, nick string) *user {
	t.Helper()
	return joinWithPassword(t, bot, account, users[account], nick)
}

// joinWithPassword is join for an account whose password is given.
func joinWithPassword(t *testing.T, bot, account, password, nick string) *user {
	t.Helper()
	if nick == "" {
		nick = fmt.Sprintf("%s%d", orDefault(account, "anon"), nickSeq.Add(1))
	}
	opts := ircnet.ClientOptions{Caps: []string{"message-tags"}}
	if account != "" {
		opts.SASLUser, opts.SASLPassword = account, password
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := ircnet.Dial(ctx, sb.IRC.Addr(), nick, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", nick, err)
	}
	t.Cleanup(func() { c.Quit() })
	ch := botChannel[bot]
	if err := c.Join(ctx, ch); err != nil {
		t.Fatalf("join %s: %v", ch, err)
	}
	return &user{t: t, c: c, nick: nick, bot: bot, channel: ch}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ask sends "!koji text" in the channel and returns the bot's first reply
// line addressed to this user, without the address.
func (u *user) ask(text string) string {
	u.t.Helper()
	return u.askN(text, 1)[0]
}

// askN sends "!koji text" and waits for n reply lines addressed to the user.
func (u *user) askN(text string, n int) []string {
	u.t.Helper()
	if err := u.c.Privmsg(u.channel, "!koji "+text); err != nil {
		u.t.Fatalf("send: %v", err)
	}
	return u.replies(n)
}

// replies waits for n more lines from the bot addressed to this user.
func (u *user) replies(n int) []string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	ms, err := u.c.Collect(ctx, n, func(m ircnet.Message) bool {
		return m.Command == "PRIVMSG" && m.Source == u.bot && m.Target() == u.channel &&
			strings.HasPrefix(m.Text, u.nick+": ")
	})
	if err != nil {
		u.t.Fatalf("waiting for %d replies from %s: %v\nbot output:\n%s", n, u.bot, err, tail(bots[u.bot].Output(), 40))
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = strings.TrimPrefix(m.Text, u.nick+": ")
	}
	return out
}

// expectPrefix asks and checks the reply starts with prefix and holds every part.
func (u *user) expect(text, prefix string, parts ...string) string {
	u.t.Helper()
	got := u.ask(text)
	if !strings.HasPrefix(got, prefix) {
		u.t.Fatalf("%q: reply %q, want prefix %q", text, got, prefix)
	}
	for _, p := range parts {
		if !strings.Contains(got, p) {
			u.t.Errorf("%q: reply %q lacks %q", text, got, p)
		}
	}
	return got
}
