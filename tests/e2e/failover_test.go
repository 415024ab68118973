package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"

	"github.com/fedora-infra/kojibot/commands/state"
	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// failoverKillsEnv sets how many times TestFailover kills the leader:
// `make failover KILLS=20` sets it, and prints the figures; `make test`
// runs the test with the default, failoverKills.
const failoverKillsEnv = "KOJIBOT_FAILOVER_KILLS"

// failoverKills is how many leaders TestFailover kills by default.
const failoverKills = 2

// failoverWithin is how soon after the leader's SIGKILL the standby must
// answer in the channel.
const failoverWithin = 15 * time.Second

// replicas are two `kojibot run` sharing one PostgreSQL store, with one
// nick; each has a config of its own only for its HTTP port and its log.
type replicas struct {
	t       *testing.T
	nick    string
	dsn     string
	paths   [2]string
	http    [2]string
	running [2]*sandbox.Bot
}

// startReplicas writes the two configs and starts both processes.
func startReplicas(t *testing.T, nick, channel, db string) *replicas {
	t.Helper()
	return startReplicasWith(t, nick, channel, db, nil)
}

// startReplicasWith is startReplicas with more sections in both configs
// (a matrix: section, say).
func startReplicasWith(t *testing.T, nick, channel, db string, extra map[string]any) *replicas {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := &replicas{t: t, nick: nick, dsn: stateDB(t, db)}
	sections := map[string]any{"state": map[string]any{"dsn": r.dsn}}
	for k, v := range extra {
		sections[k] = v
	}
	path, err := sb.WriteConfig(ctx, sandbox.BotConfig{Nick: nick, DB: "koji", Channel: channel, Extra: sections})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range r.paths {
		var cfg map[string]any
		if err := yaml.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("replica%d", i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		r.http[i] = freeAddr(t)
		cfg["http"] = map[string]any{"listen": r.http[i]}
		cfg["log"].(map[string]any)["file"] = filepath.Join(dir, "kojibot.log")
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r.paths[i] = filepath.Join(dir, "kojibot.yaml")
		if err := os.WriteFile(r.paths[i], out, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	botChannel[nick] = channel
	t.Cleanup(func() {
		for _, b := range r.running {
			if b != nil {
				b.Stop()
				r.noRace(b)
			}
		}
		delete(bots, nick)
		delete(botChannel, nick)
	})
	r.start(0)
	bots[nick] = r.running[0]
	if err := waitJoined(ctx, nick); err != nil {
		t.Fatal(err)
	}
	r.start(1)
	r.waitStandby(1)
	return r
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// noRace fails the test when the race detector spoke in b (the bots are
// built with it).
func (r *replicas) noRace(b *sandbox.Bot) {
	if out := b.Output(); strings.Contains(out, "WARNING: DATA RACE") {
		i := strings.Index(out, "WARNING: DATA RACE")
		r.t.Errorf("data race in a replica:\n%s", out[i:min(len(out), i+6000)])
	}
}

func (r *replicas) start(i int) {
	b, err := sb.StartBot(binary, r.nick, r.paths[i])
	if err != nil {
		r.t.Fatal(err)
	}
	r.running[i] = b
}

// leader is the index of the replica that leads, from the store.
func (r *replicas) leader() int {
	r.t.Helper()
	for deadline := time.Now().Add(failoverWithin); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		st, err := state.Inspect(context.Background(), "", r.dsn)
		if err == nil && st.Leader != nil && st.Leader.Held {
			for i, b := range r.running {
				if b != nil && !b.Exited() && strings.HasSuffix(st.Leader.Holder, ":"+strconv.Itoa(b.PID())) {
					return i
				}
			}
		}
	}
	r.t.Fatalf("no replica leads:\n%s\n%s", tail(r.running[0].Output(), 30), tail(r.running[1].Output(), 30))
	return -1
}

// waitStandby waits until replica i answers /healthz as a standby of the
// other one, and the store lists it among the standbys.
func (r *replicas) waitStandby(i int) {
	r.t.Helper()
	var body string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + r.http[i] + "/healthz")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		other := r.running[1-i]
		if resp.StatusCode == 200 && strings.HasPrefix(body, "standby: leader ") && other != nil &&
			strings.Contains(body, ":"+strconv.Itoa(other.PID())+" (term ") {
			st, err := state.Inspect(context.Background(), "", r.dsn)
			if err == nil && slices.ContainsFunc(st.Standbys(), func(p state.Process) bool {
				return strings.HasSuffix(p.Holder, ":"+strconv.Itoa(r.running[i].PID()))
			}) {
				return
			}
		}
	}
	r.t.Fatalf("replica %d is not a standby (/healthz %q):\n%s", i, body, tail(r.running[i].Output(), 30))
}

// askUntilAnswered sends `help` with a new serial every interval until
// the bot answers one; it returns when that first answer came. Every
// command sent is remembered in sent.
func askUntilAnswered(t *testing.T, u *user, sent *[]string, interval, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		serial := fmt.Sprintf("zz%d", int64(len(*sent))+1000*nickSeq.Add(1))
		*sent = append(*sent, serial)
		if err := u.c.Privmsg(u.channel, "!koji help "+serial); err != nil {
			t.Fatalf("send: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), interval)
		m, err := u.c.Expect(ctx, func(m ircnet.Message) bool {
			return m.Command == "PRIVMSG" && m.Source == u.bot && strings.HasPrefix(m.Text, u.nick+": ")
		})
		cancel()
		if err == nil {
			return m.At
		}
	}
	t.Fatalf("no answer within %s", within)
	return time.Time{}
}

// repliesPerCommand counts the bot's replies to each serial sent: each
// must have at most one, and exactly one once the bot answered the last.
func repliesPerCommand(t *testing.T, u *user, sent []string) {
	t.Helper()
	count := map[string]int{}
	for _, m := range u.c.Messages() {
		if m.Command != "PRIVMSG" || m.Source != u.bot || !strings.HasPrefix(m.Text, u.nick+": ") {
			continue
		}
		for _, s := range sent {
			if strings.Contains(m.Text, s) {
				count[s]++
			}
		}
	}
	for _, s := range sent {
		if count[s] > 1 {
			t.Errorf("command help %s answered %d times", s, count[s])
		}
	}
	if last := sent[len(sent)-1]; count[last] != 1 {
		t.Errorf("the last command, help %s, answered %d times, want once:\n%s", last, count[last], u.c.Transcript())
	}
}

// TestFailover: two `kojibot run` share a PostgreSQL store; the standby
// answers /healthz "standby" with the leader, and after the leader's
// SIGKILL it answers a command in the channel within 15 s, under the same
// nick; each command is answered at most once. The killed one comes
// back as the standby. KOJIBOT_FAILOVER_KILLS (make failover) sets how
// many kills, and the failover times' median and p99 are printed.
func TestFailover(t *testing.T) {
	kills := failoverKills
	if v := os.Getenv(failoverKillsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a number of kills", failoverKillsEnv, v)
		}
		kills = n
	}
	r := startReplicas(t, "kojibot-ha", "#ha", "kojibot_ha")
	alice := join(t, "kojibot-ha", "alice", "")
	var sent []string
	askUntilAnswered(t, alice, &sent, 5*time.Second, 30*time.Second)
	var times []time.Duration
	for k := range kills {
		lead := r.leader()
		killed := r.running[lead]
		at := time.Now()
		if err := syscall.Kill(killed.PID(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		answered := askUntilAnswered(t, alice, &sent, 250*time.Millisecond, failoverWithin)
		d := answered.Sub(at)
		times = append(times, d)
		t.Logf("kill %d: the standby answered %s after the leader's SIGKILL", k+1, d.Round(time.Millisecond))
		if r.leader() != 1-lead {
			t.Fatalf("kill %d: the killed replica leads again", k+1)
		}
		for !killed.Exited() {
			time.Sleep(10 * time.Millisecond)
		}
		r.noRace(killed)
		r.start(lead)
		bots["kojibot-ha"] = r.running[1-lead]
		r.waitStandby(lead)
	}
	repliesPerCommand(t, alice, sent)
	slices.Sort(times)
	p := func(q float64) time.Duration { return times[min(len(times)-1, int(q*float64(len(times))))] }
	summary := fmt.Sprintf("failover over %d SIGKILLs of the leader: p50 %s, p99 %s, max %s",
		len(times), p(0.5).Round(time.Millisecond), p(0.99).Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
	t.Log(summary)
	if os.Getenv(failoverKillsEnv) != "" {
		fmt.Println(summary)
	}
}

// TestPartition: the leader's lock connection is terminated while its IRC
// connection stays up: it leaves IRC within 5 s (and exits non-zero), the
// standby takes over, and every command sent meanwhile is answered at
// most once, the last exactly once.
func TestPartition(t *testing.T) {
	r := startReplicas(t, "kojibot-part", "#part", "kojibot_part")
	alice := join(t, "kojibot-part", "alice", "")
	var sent []string
	askUntilAnswered(t, alice, &sent, 5*time.Second, 30*time.Second)
	lead := r.leader()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, sb.PG.AdminDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var backend int
	if err := admin.QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND objid::bigint = 4294967295 AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = 'kojibot_part')`).Scan(&backend); err != nil {
		t.Fatalf("the leader's lock connection: %v", err)
	}
	cut := time.Now()
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, backend); err != nil {
		t.Fatal(err)
	}
	quit, err := alice.c.Expect(ctx, func(m ircnet.Message) bool { return m.Command == "QUIT" && m.Source == "kojibot-part" })
	if err != nil {
		t.Fatal(err)
	}
	// Its own QUIT, not services taking the nick for the new leader.
	if !strings.Contains(quit.Text, "shutting down") {
		t.Errorf("the cut leader did not quit by itself: %s", quit.Raw)
	}
	d := quit.At.Sub(cut)
	t.Logf("the cut leader left IRC %s after its lock connection was cut", d.Round(time.Millisecond))
	if d > 5*time.Second {
		t.Errorf("the cut leader left IRC %s after its lock connection was cut, want within 5 s", d)
	}
	for deadline := time.Now().Add(30 * time.Second); !r.running[lead].Exited(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the cut leader did not exit")
		}
	}
	r.noRace(r.running[lead])
	if out := r.running[lead].Output(); !strings.Contains(out, "lost the leadership") {
		t.Errorf("the cut leader did not say why it stopped:\n%s", tail(out, 20))
	}
	bots["kojibot-part"] = r.running[1-lead]
	askUntilAnswered(t, alice, &sent, 250*time.Millisecond, failoverWithin)
	if r.leader() != 1-lead {
		t.Fatal("the standby does not lead")
	}
	repliesPerCommand(t, alice, sent)
}
