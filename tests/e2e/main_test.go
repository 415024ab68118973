// Package e2e holds kojibot's end-to-end conversations: the real kojibot
// binary against a real InspIRCd + Anope network, a real PostgreSQL with
// Koji schemas, a FASJSON stand-in and sshd builders, all started here.
// Nothing is skipped: a missing server fails the run.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
	"github.com/fedora-infra/kojibot/tests/harness/realkoji"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// The farm every test in this package talks to.
var (
	sb     *sandbox.Sandbox
	binary string
	bots   = map[string]*sandbox.Bot{}
)

// Accounts registered with services.
var users = map[string]string{"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}

// Each bot: its nick, channel, database and ACL source.
const (
	mainBot   = "kojibot"        // the farm's Koji hub, static ACL, #fedora-admin
	legacyBot = "kojibot-legacy" // legacy schema, #legacy
	fasBot    = "kojibot-fas"    // FASJSON ACL, #fas
	noFASBot  = "kojibot-nofas"  // FASJSON unreachable, #nofas
)

var botChannel = map[string]string{mainBot: sandbox.Channel, legacyBot: "#legacy", fasBot: "#fas", noFASBot: "#nofas"}

func TestMain(m *testing.M) {
	if flag.Parse(); testing.Short() {
		fmt.Println("skipped with -short: these tests start real servers")
		os.Exit(0)
	}
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		code = 1
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "kojibot-e2e-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	if binary, err = sandbox.BuildBinary(dir, true); err != nil {
		return 1, err
	}
	// Thirty more builders make `hosts` a long reply.
	var extra []realkoji.SeedHost
	for i := 1; i <= 30; i++ {
		extra = append(extra, realkoji.SeedHost{Name: fmt.Sprintf("bkernel%02d.fedoraproject.org", i), Arches: "x86_64", Capacity: 2, CheckIn: true})
	}
	sb, err = sandbox.Start(ctx, sandbox.Options{Dir: dir, Users: users, Members: []string{"alice", "carol"}, Farm: true,
		KojiHosts: extra,
		// The pacing is tested by TestBurst and in bot/irc; elsewhere it
		// would only make the replies slow.
		FastBots: true})
	if err != nil {
		return 1, err
	}
	defer sb.Close()
	if _, err := sb.CreateDB(ctx, "koji_legacy", pgsql.Legacy); err != nil {
		return 1, err
	}
	// The main bot serves a Matrix room of a real Dendrite too.
	matrixSection, err := startMatrix(ctx, dir)
	if err != nil {
		return 1, err
	}
	defer hs.Stop()
	// Nothing listens on port 1 of a test machine: FASJSON is unreachable.
	const closed = "http://127.0.0.1:1"
	for nick, bc := range map[string]sandbox.BotConfig{
		mainBot:   {DB: "koji", Extra: map[string]any{"matrix": matrixSection}},
		legacyBot: {DB: "koji_legacy"},
		fasBot:    {DB: "koji", ACLSource: "fasjson"},
		noFASBot:  {DB: "koji", ACLSource: "fasjson", Extra: map[string]any{"acl": map[string]any{"fasjson_url": closed}}},
	} {
		bc.Nick, bc.Channel = nick, botChannel[nick]
		path, err := sb.WriteConfig(ctx, bc)
		if err != nil {
			return 1, err
		}
		b, err := sb.StartBot(binary, nick, path)
		if err != nil {
			return 1, err
		}
		bots[nick] = b
	}
	for nick := range bots {
		if err := waitJoined(ctx, nick); err != nil {
			return 1, err
		}
	}
	if err := waitMatrixJoined(ctx); err != nil {
		return 1, err
	}
	code := m.Run()
	// The bots are built with the race detector: a race it reported in a
	// bot fails the run, even when every conversation went well.
	for nick, b := range bots {
		if out := b.Output(); strings.Contains(out, "WARNING: DATA RACE") {
			i := strings.Index(out, "WARNING: DATA RACE")
			fmt.Fprintf(os.Stderr, "---- %s: data race ----\n%s\n", nick, out[max(0, i-200):min(len(out), i+6000)])
			code = 1
		}
	}
	if code != 0 {
		for nick, b := range bots {
			fmt.Fprintf(os.Stderr, "---- %s output (tail) ----\n%s\n", nick, tail(b.Output(), 60))
		}
	}
	return code, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitJoined waits until nick is in its channel, seen by a watcher client.
func waitJoined(ctx context.Context, nick string) error {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if bots[nick].Exited() {
			return fmt.Errorf("%s exited:\n%s", nick, bots[nick].Output())
		}
		c, err := ircnet.Dial(ctx, sb.IRC.Addr(), "w"+fmt.Sprint(time.Now().UnixNano()%100000), ircnet.ClientOptions{})
		if err == nil {
			_ = c.Raw("NAMES " + botChannel[nick])
			m, err := c.Expect(ctx, func(m ircnet.Message) bool { return m.Command == "353" || m.Command == "366" })
			c.Quit()
			if err == nil && m.Command == "353" && hasNick(m.Text, nick) {
				return nil
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("%s did not join %s:\n%s", nick, botChannel[nick], bots[nick].Output())
}

func hasNick(names, nick string) bool {
	for _, n := range strings.Fields(names) {
		if strings.TrimLeft(n, "@+%&~") == nick {
			return true
		}
	}
	return false
}

// holdKojiRows locks the rows of Koji's database that lock (a SELECT …
// FOR UPDATE) names, so that the bot's write on them waits inside its
// transaction. release lets them go; the test's end does it too.
func holdKojiRows(ctx context.Context, t *testing.T, lock string, args ...any) (release func()) {
	t.Helper()
	conn, err := pgx.Connect(ctx, sb.DBs["koji"].Admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	if _, err := tx.Exec(ctx, lock, args...); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
