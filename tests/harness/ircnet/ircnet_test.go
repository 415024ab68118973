package ircnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
)

func TestParseMessage(t *testing.T) {
	tests := []struct {
		line string
		want Message
	}{
		{
			line: `@account=alice;msgid=a\sb :alice!u@h PRIVMSG #c :hello world`,
			want: Message{Tags: map[string]string{"account": "alice", "msgid": "a b"}, Prefix: "alice!u@h", Source: "alice",
				Command: "PRIVMSG", Params: []string{"#c", "hello world"}, Text: "hello world"},
		},
		{
			line: `:irc.test 001 bob :Welcome`,
			want: Message{Prefix: "irc.test", Source: "irc.test", Command: "001", Params: []string{"bob", "Welcome"}, Text: "Welcome"},
		},
		{
			line: `PING :x y`,
			want: Message{Command: "PING", Params: []string{"x y"}, Text: "x y"},
		},
		{
			line: `:n!u@h mode #c +o n`,
			want: Message{Prefix: "n!u@h", Source: "n", Command: "MODE", Params: []string{"#c", "+o", "n"}, Text: "n"},
		},
		{
			line: `:n!u@h PRIVMSG #c ::-)`,
			want: Message{Prefix: "n!u@h", Source: "n", Command: "PRIVMSG", Params: []string{"#c", ":-)"}, Text: ":-)"},
		},
	}
	for _, tt := range tests {
		got := ParseMessage(tt.line)
		tt.want.Raw = tt.line
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseMessage(%q)\n got %+v\nwant %+v", tt.line, got, tt.want)
		}
	}
}

func startNet(t *testing.T, opts Options) *Network {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	begin := time.Now()
	n, err := Start(ctx, t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("network up in %v at %s (strict %s)", time.Since(begin).Round(time.Millisecond), n.Addr(), n.StrictAddr())
	t.Cleanup(n.Stop)
	return n
}

func dial(t *testing.T, addr, nick string, opts ClientOptions) *Client {
	t.Helper()
	c, err := Dial(context.Background(), addr, nick, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Quit() })
	return c
}

func privmsgFrom(nick, target string) func(Message) bool {
	return func(m Message) bool {
		return m.Command == "PRIVMSG" && strings.EqualFold(m.Source, nick) && strings.EqualFold(m.Target(), target)
	}
}

// TestNetworkAccounts checks what the bot's identity code relies on:
// accounts, SASL, account-tag, WHOIS 330, LOGOUT, and accounts surviving a
// restart.
func TestNetworkAccounts(t *testing.T) {
	t.Parallel() // each on a network of its own
	n := startNet(t, Options{})
	ctx := context.Background()
	if err := n.RegisterAccount(ctx, "alice", "alice-secret-1"); err != nil {
		t.Fatal(err)
	}
	if err := n.RegisterAccount(ctx, "alice", "other-secret"); err == nil {
		t.Fatal("registering alice twice: want an error")
	}
	if _, err := Dial(ctx, n.Addr(), "mallory", ClientOptions{SASLUser: "alice", SASLPassword: "wrong-password"}); err == nil {
		t.Fatal("SASL with a wrong password: want an error")
	}

	obs := dial(t, n.Addr(), "observer", ClientOptions{Caps: []string{"account-tag", "message-tags"}})
	al := dial(t, n.Addr(), "alice_", ClientOptions{SASLUser: "alice", SASLPassword: "alice-secret-1"})
	anon := dial(t, n.Addr(), "alice", ClientOptions{})

	if err := al.Privmsg("observer", "one"); err != nil {
		t.Fatal(err)
	}
	m, err := obs.Expect(ctx, privmsgFrom("alice_", "observer"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Tags["account"] != "alice" {
		t.Errorf("SASL client: account tag = %q, want alice (%s)", m.Tags["account"], m.Raw)
	}
	if err := anon.Privmsg("observer", "two"); err != nil {
		t.Fatal(err)
	}
	m, err = obs.Expect(ctx, privmsgFrom("alice", "observer"))
	if err != nil {
		t.Fatal(err)
	}
	if acct, ok := m.Tags["account"]; ok {
		t.Errorf("nick alice without login: account tag %q present", acct)
	}

	whois := func(nick string) string {
		t.Helper()
		if err := obs.Raw("WHOIS " + nick); err != nil {
			t.Fatal(err)
		}
		acct := ""
		for {
			m, err := obs.Expect(ctx, func(m Message) bool {
				return (m.Command == "330" || m.Command == "318") && len(m.Params) > 1 && strings.EqualFold(m.Params[1], nick)
			})
			if err != nil {
				t.Fatal(err)
			}
			if m.Command == "318" {
				return acct
			}
			acct = m.Params[2]
		}
	}
	if got := whois("alice_"); got != "alice" {
		t.Errorf("WHOIS alice_ account = %q, want alice", got)
	}
	if got := whois("alice"); got != "" {
		t.Errorf("WHOIS alice (not logged in) account = %q, want none", got)
	}

	if err := anon.Identify(ctx, "alice", "alice-secret-1"); err != nil {
		t.Fatal(err)
	}
	if got := whois("alice"); got != "alice" {
		t.Errorf("after IDENTIFY: WHOIS alice account = %q, want alice", got)
	}
	if err := anon.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if got := whois("alice"); got != "" {
		t.Errorf("after LOGOUT: WHOIS alice account = %q, want none", got)
	}

	begin := time.Now()
	if err := n.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart took %v", time.Since(begin).Round(time.Millisecond))
	if _, err := obs.Expect(ctx, func(m Message) bool { return m.Command == "ERROR" }); err != nil {
		t.Errorf("clients were not disconnected by Restart: %v", err)
	}
	again, err := Dial(ctx, n.Addr(), "alice_", ClientOptions{SASLUser: "alice", SASLPassword: "alice-secret-1"})
	if err != nil {
		t.Fatalf("account lost across restart: %v", err)
	}
	again.Quit()
	// Services must stay linked after their first database saves following
	// the restart (Anope once quit on a failed daily backup there): wait
	// for two saves, then register.
	db := filepath.Join(n.dir, "anope/data/anope.db")
	saves := map[time.Time]bool{}
	saved := harness.WaitFor(ctx, 30*time.Second, func() bool {
		if fi, err := os.Stat(db); err == nil && fi.ModTime().After(begin) {
			saves[fi.ModTime()] = true
		}
		return len(saves) >= 2
	})
	if !saved {
		t.Fatalf("services saved their database %d times in 30 s after the restart\n%s", len(saves), n.tail("services.out"))
	}
	if err := n.RegisterAccount(ctx, "carol", "carol-secret-1"); err != nil {
		t.Fatalf("services gone a few seconds after the restart: %v\n%s", err, n.tail("services.out"))
	}
}

func TestNoAccountTag(t *testing.T) {
	t.Parallel() // each on a network of its own
	n := startNet(t, Options{NoAccountTag: true})
	c := dial(t, n.Addr(), "probe", ClientOptions{})
	if err := c.Raw("CAP LS 302"); err != nil {
		t.Fatal(err)
	}
	m, err := c.Expect(context.Background(), func(m Message) bool { return m.Command == "CAP" })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.Text, "account-tag") || !strings.Contains(m.Text, "sasl") {
		t.Errorf("CAP LS = %q, want sasl without account-tag", m.Text)
	}
}

// TestStrictPortFloodLimits checks that the strict port keeps InspIRCd's
// default limits (fake lag after 10 commands, 1 a second) while the other
// port lets a burst through at once.
func TestStrictPortFloodLimits(t *testing.T) {
	t.Parallel() // each on a network of its own
	n := startNet(t, Options{})
	const burst = 16
	elapsed := func(addr, nick string) time.Duration {
		c := dial(t, addr, nick, ClientOptions{})
		begin := time.Now()
		for i := 0; i < burst; i++ {
			if err := c.Privmsg(nick, fmt.Sprint("m", i)); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.Collect(ctx, burst, privmsgFrom(nick, nick)); err != nil {
			t.Fatal(err)
		}
		for _, m := range c.Messages() {
			if m.Command == "ERROR" {
				t.Fatalf("%s: disconnected: %s", addr, m.Raw)
			}
		}
		return time.Since(begin)
	}
	lifted := elapsed(n.Addr(), "fast")
	strict := elapsed(n.StrictAddr(), "slow")
	t.Logf("%d messages: lifted port %v, strict port %v", burst, lifted, strict)
	if lifted > 2*time.Second {
		t.Errorf("lifted port throttled a burst of %d: %v", burst, lifted)
	}
	if strict < 4*time.Second {
		t.Errorf("strict port let a burst of %d through in %v: flood limits not in force", burst, strict)
	}
}
