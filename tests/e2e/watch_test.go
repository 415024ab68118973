package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// watchConfirmToken finds the token in a confirm: reply's last line.
var watchConfirmToken = regexp.MustCompile(`confirm ([a-z0-9]{8})`)

// watchBot starts a bot that watches the farm every 2s, with an HTTP
// server, in its own channel, and returns alice in that channel (joined
// before the bot, so she sees its first notifications) and the base URL.
func watchBot(t *testing.T, nick string, extra map[string]any) (*user, string) {
	t.Helper()
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	x := map[string]any{
		"watch": map[string]any{"interval": "2s", "stale_after": "8s", "repeat": "10m", "connections_percent": 80},
		"http":  map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", port), "public_url": base},
	}
	for k, v := range extra {
		if _, ok := x[k]; !ok {
			x[k] = map[string]any{}
		}
		for kk, vv := range v.(map[string]any) {
			x[k].(map[string]any)[kk] = vv
		}
	}
	channel := "#" + nick
	botChannel[nick] = channel
	ctx := context.Background()
	path, err := sb.WriteConfig(ctx, sandbox.BotConfig{Nick: nick, DB: "koji", Channel: channel, Extra: x})
	if err != nil {
		t.Fatal(err)
	}
	u := join(t, nick, "alice", "")
	b, err := sb.StartBot(binary, nick, path)
	if err != nil {
		t.Fatal(err)
	}
	bots[nick] = b
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", nick, tail(b.Output(), 40))
		}
		delete(bots, nick)
	})
	if err := waitJoined(ctx, nick); err != nil {
		t.Fatal(err)
	}
	return u, base
}

// keepCheckingIn makes every enabled host but the silent ones check in
// every second, as kojid does, until the test ends; the sandbox's own
// check-ins of the silent ones stop meanwhile.
func keepCheckingIn(t *testing.T, silent ...string) {
	t.Helper()
	t.Cleanup(sb.Hush(silent...))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			_, _ = sb.DBs["koji"].Exec(ctx, `UPDATE host SET update_time = now() WHERE name <> ALL($1)`, silent)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// notices are the bot's unaddressed lines in its channel containing want.
func notices(u *user, want string) []string {
	var out []string
	for _, m := range u.c.Messages() {
		if m.Command == "PRIVMSG" && m.Source == u.bot && m.Target() == u.channel && strings.Contains(m.Text, want) {
			out = append(out, m.Text)
		}
	}
	return out
}

// waitNotice waits for the bot to post a line containing all of want.
func waitNotice(t *testing.T, u *user, timeout time.Duration, want ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	m, err := u.c.Expect(ctx, func(m ircnet.Message) bool {
		if m.Command != "PRIVMSG" || m.Source != u.bot || m.Target() != u.channel {
			return false
		}
		for _, w := range want {
			if !strings.Contains(m.Text, w) {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("no notification with %q: %v", want, err)
	}
	return m.Text
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWatchSharedMountAndStale: a shared mount filled past the threshold
// gives exactly one notification with the draft's link, no repeat, and one
// RESOLVED once space is freed; a builder that stops checking in gives one
// stale notification.
func TestWatchSharedMountAndStale(t *testing.T) {
	keepCheckingIn(t, "ppc1.fedora.redhat.com")
	u, base := watchBot(t, "kojibot-watch", nil)

	stale := waitNotice(t, u, 90*time.Second, "ALERT", "stale", "ppc1.fedora.redhat.com")
	t.Logf("stale: %s", stale)

	fill := fmt.Sprintf("dd if=/dev/zero of=%s/fill bs=1M count=15 2>/dev/null; sync", sandbox.SharedMount)
	if out, err := sb.Farm.Exec(sandbox.HubHost, fill); err != nil {
		t.Fatalf("filling %s: %v %s", sandbox.SharedMount, err, out)
	}
	freed := false
	free := func() {
		if !freed {
			_, _ = sb.Farm.Exec(sandbox.HubHost, "rm -f "+sandbox.SharedMount+"/fill")
			freed = true
		}
	}
	t.Cleanup(free)
	alert := waitNotice(t, u, 90*time.Second, "ALERT shared mount "+sandbox.SharedMount)
	link := base + "/drafts/"
	if !strings.Contains(alert, link) {
		t.Fatalf("alert %q lacks the draft link %s…", alert, link)
	}
	token := strings.Fields(alert[strings.Index(alert, link)+len(link):])[0]
	code, body := httpGet(t, link+token)
	if code != 200 || !strings.Contains(body, "Unplanned Outage") || !strings.Contains(body, sandbox.SharedMount) {
		t.Errorf("draft page %d:\n%s", code, body)
	}
	// The link names the draft's random token; its short id serves nothing.
	m := regexp.MustCompile(`outage draft (o[0-9]+): `).FindStringSubmatch(alert)
	if m == nil || !webToken.MatchString(token) {
		t.Fatalf("alert %q: want \"outage draft o<n>: %s<token>\"", alert, link)
	}
	if code, body := httpGet(t, link+m[1]); code != 404 {
		t.Errorf("draft page by short id %s: %d %q, want 404", m[1], code, body)
	}
	// Three more rounds: no repeat before watch.repeat.
	time.Sleep(7 * time.Second)
	if n := len(notices(u, "shared mount "+sandbox.SharedMount)); n != 1 {
		t.Errorf("%d notifications for the full mount, want exactly 1: %q", n, notices(u, sandbox.SharedMount))
	}
	free()
	resolved := waitNotice(t, u, 90*time.Second, "RESOLVED", sandbox.SharedMount)
	t.Logf("resolved: %s", resolved)
	time.Sleep(5 * time.Second)
	if n := len(notices(u, "RESOLVED shared")); n != 1 {
		t.Errorf("%d RESOLVED lines, want 1", n)
	}
	if n := len(notices(u, "stale")); n != 1 {
		t.Errorf("%d stale notifications, want exactly 1: %q", n, notices(u, "stale"))
	}
}

// TestConnections: real idle backends of the koji role, of different ages:
// connections lists the old ones, connections kill ends exactly those.
func TestConnections(t *testing.T) {
	ctx := context.Background()
	open := func(n int) []*pgx.Conn {
		var cs []*pgx.Conn
		for i := 0; i < n; i++ {
			c, err := pgx.Connect(ctx, sb.DBs["koji"].Koji)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close(context.Background()) })
			cs = append(cs, c)
		}
		return cs
	}
	old := open(3)
	time.Sleep(6 * time.Second)
	young := open(2)
	// Another role's old backend must survive.
	other, err := pgx.Connect(ctx, sb.DBs["koji"].Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)

	alice := join(t, mainBot, "alice", "")
	lines := alice.askN("connections --older 4s", 4)
	if !strings.HasPrefix(lines[0], "3 koji backends whose query started more than 4s ago") {
		t.Fatalf("connections: %q", lines)
	}
	plan := alice.askN("connections kill --older 4s", 2)
	if !strings.HasPrefix(plan[0], "confirm: terminate the 3 backends of role koji") {
		t.Fatalf("kill: %q", plan)
	}
	token := watchConfirmToken.FindStringSubmatch(plan[1])
	if token == nil {
		t.Fatalf("no token in %q", plan[1])
	}
	if got := alice.ask("confirm " + token[1]); !strings.Contains(got, "3 found, 3 terminated, 0 left") {
		t.Errorf("confirm: %q", got)
	}
	for i, c := range old {
		if _, err := c.Exec(ctx, "SELECT 1"); err == nil {
			t.Errorf("old backend %d survived", i)
		}
	}
	for i, c := range young {
		if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
			t.Errorf("young backend %d was killed: %v", i, err)
		}
	}
	if _, err := other.Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("another role's backend was killed: %v", err)
	}
}

// TestConnectionsAlertHealthAndMetrics: backends near max_connections give
// a notification; /healthz follows PostgreSQL; /metrics parses.
func TestConnectionsAlertHealthAndMetrics(t *testing.T) {
	keepCheckingIn(t, "")
	u, base := watchBot(t, "kojibot-conn", map[string]any{"watch": map[string]any{"connections_percent": 10}})
	ctx := context.Background()
	for i := 0; i < 12; i++ {
		c, err := pgx.Connect(ctx, sb.DBs["koji"].Koji)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
	}
	waitNotice(t, u, 90*time.Second, "ALERT connections")

	if code, body := httpGet(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz %d %s", code, body)
	}
	sb.Koji.PG.Stop()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = sb.Koji.PG.Start(context.Background())
		}
	})
	// /healthz reuses its ping for a second: wait for the next one.
	var code int
	var body string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if code, body = httpGet(t, base+"/healthz"); code == 503 || time.Now().After(deadline) {
			break
		}
	}
	// It names the component only: not the error, which names
	// PostgreSQL's address.
	if code != 503 || body != "koji-db: down\n" {
		t.Errorf("/healthz with PostgreSQL down: %d %q, want 503 \"koji-db: down\"", code, body)
	}
	if out := bots["kojibot-conn"].Output(); !strings.Contains(out, "health check") {
		t.Errorf("the bot's log lacks the failed health check:\n%s", tail(out, 20))
	}
	if err := sb.Koji.PG.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, _ = httpGet(t, base+"/healthz"); code == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if code != 200 {
		t.Errorf("/healthz after PostgreSQL came back: %d", code)
	}

	u.ask("host ppc1")
	// The command is counted once it has returned, which may be just
	// after its reply reached the caller.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, body = httpGet(t, base+"/metrics")
		if code != 200 {
			t.Fatalf("/metrics %d", code)
		}
		if strings.Contains(body, "kojibot_commands_total{") || time.Now().After(deadline) {
			break
		}
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse as Prometheus text: %v", err)
	}
	for _, name := range []string{"kojibot_commands_total", "kojibot_command_duration_seconds", "kojibot_irc_connected", "kojibot_watch_checks_total", "kojibot_watch_firing"} {
		if families[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}
