// Command reply benchmarks kojibot's reply time through a real InspIRCd +
// Anope network against two references measured in the same run, through
// the same server:
//
//   - the floor: two plain IRC clients in one channel, the second echoing
//     every line of the first at once — the server's own round trip
//     (caller → server → peer → server → caller), with nothing behind it;
//   - kojibot: `!koji host ppc3` in its channel, from a caller logged in to
//     services (so the account-tag identity check and the ACL run), answered
//     from the Koji PostgreSQL database, with every audit record written;
//   - Limnoria (Debian's limnoria, `supybot`): `!echo` in its channel, a
//     command that does no I/O and answers without the caller's nick
//     (left out with -limnoria=false).
//
// Each try is timed from the line written to the caller's socket to the
// reply read from it. The three run in turn within each round, so that the
// machine's noise falls on all of them alike. kojibot is built without the
// race detector and sends with the same relaxed pacing as the e2e bench
// (irc.send_rate 200, send_burst 200), its default log level (info), and
// an inbound limit (irc.user_rate) above the pace of the tries; the
// rounds start at least -gap (10 ms) apart, so that the pacing never holds
// a reply back (the e2e bench's tries were 200 ms apart).
//
// It prints, for each, the median, p90, p99 and minimum in milliseconds,
// the bot's CPU per reply, the ratios to the floor and whether the goals
// hold: kojibot's median at most 0.8× Limnoria's echo and its p99 at most
// the floor's p99 + 2 ms. With -perf FILE it also records the kojibot
// process with `perf record -g` during a second, kojibot-only pass.
//
// With -koji hub the bot has no database: it answers through the upstream
// Koji hub (tests/harness/realkoji, logged in by certificate), and a fourth
// subject is timed in the same rounds: the same hub call the bot makes
// (listHosts) made raw from this process, in a kept session over a kept
// connection — the hub's own cost, the floor of the hub path. The goal is
// then kojibot's median at most that raw call's median + 1 ms.
//
// It needs root (the harness runs InspIRCd, Anope and PostgreSQL as their
// own users). Run: go run ./tests/bench/reply -tries 1000 [-koji hub]
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// The caller's services account (the sandbox's FAS group member).
var users = map[string]string{"alice": "alice-pw"}

const (
	botNick      = "kojibot-bench"
	botChannel   = "#bench"
	floorChannel = "#floor"
	limChannel   = "#limnoria"
	limNick      = "limbench"
	callerNick   = "benchuser"
)

func main() {
	tries := flag.Int("tries", 1000, "timed tries of each")
	warmup := flag.Int("warmup", 50, "untimed tries of each first")
	withLimnoria := flag.Bool("limnoria", true, "measure Limnoria's echo too (needs supybot)")
	binFlag := flag.String("bin", "", "a kojibot binary to run instead of building one (go build without -race)")
	gap := flag.Duration("gap", 10*time.Millisecond, "least time between the starts of two rounds, so that the bot's pacing (200 lines a second) never holds a reply")
	keep := flag.Bool("keep", false, "keep the temporary directory (the bots' logs) and print its path")
	perfOut := flag.String("perf", "", "after the timed run, `perf record -g` kojibot over -tries more tries into this file")
	koji := flag.String("koji", "db", "how the bot reaches Koji: db (PostgreSQL) or hub (the upstream hub's API, no database)")
	flag.Parse()
	if *koji != "db" && *koji != "hub" {
		fmt.Fprintln(os.Stderr, "bench reply: -koji must be db or hub")
		os.Exit(2)
	}
	viaHub = *koji == "hub"
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, *keep, *binFlag, *gap, *tries, *warmup, *withLimnoria, *perfOut); err != nil {
		fmt.Fprintln(os.Stderr, "bench reply:", err)
		os.Exit(1)
	}
}

// viaHub: the bot answers through the Koji hub (-koji hub).
var viaHub bool

// subject is one thing being timed: how to ask, and how to tell its reply;
// or, for a call made from this process, call.
type subject struct {
	name  string
	c     *rawClient
	ask   func(i int) string
	reply func(l line, i int) bool
	call  func(ctx context.Context) error
	took  []time.Duration
	// logs are the files that say why it did not answer.
	logFiles []string
}

// logs is the tail of s's log files.
func (s *subject) logs() string {
	var b strings.Builder
	for _, f := range s.logFiles {
		data, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "\n---- %s ----\n%s", f, data[max(0, len(data)-4000):])
	}
	return b.String()
}

func run(ctx context.Context, keep bool, bin string, gap time.Duration, tries, warmup int, withLimnoria bool, perfOut string) error {
	dir, err := os.MkdirTemp("", "kojibot-bench-reply-")
	if err != nil {
		return err
	}
	if keep {
		defer fmt.Println("kept", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if bin == "" {
		if bin, err = sandbox.BuildBinary(dir, false); err != nil {
			return err
		}
	}
	sctx, scancel := context.WithTimeout(ctx, 5*time.Minute)
	defer scancel()
	sb, err := sandbox.Start(sctx, sandbox.Options{Dir: filepath.Join(dir, "sb"), Users: users, Members: []string{"alice"}})
	if err != nil {
		return err
	}
	defer sb.Close()
	if _, err := sb.CreateDB(sctx, "koji", pgsql.Versioned); err != nil {
		return err
	}
	extra := map[string]any{
		"irc":      map[string]any{"send_rate": 200, "send_burst": 200},
		"commands": map[string]any{"user_rate": 1000, "user_burst": 1000},
		"log":      map[string]any{"level": "info", "file": filepath.Join(dir, "kojibot.log")},
	}
	var raw *subject
	if viaHub {
		hub, hubKoji, rawCall, err := startHub(sctx)
		if err != nil {
			return err
		}
		defer hub.Close()
		extra["koji"] = hubKoji
		raw = &subject{name: "raw XML-RPC listHosts", call: rawCall}
	}
	path, err := sb.WriteConfig(sctx, sandbox.BotConfig{Nick: botNick, DB: "koji", Channel: botChannel, Lenient: true, Extra: extra})
	if err != nil {
		return err
	}
	bot, err := sb.StartBot(bin, botNick, path)
	if err != nil {
		return err
	}
	addr := sb.IRC.Addr()

	caller, err := dialRaw(ctx, addr, callerNick, "alice", users["alice"])
	if err != nil {
		return err
	}
	defer caller.close()
	peer, err := dialRaw(ctx, addr, "benchpeer", "", "")
	if err != nil {
		return err
	}
	defer peer.close()
	for _, ch := range []string{floorChannel, botChannel, limChannel} {
		if err := caller.join(ctx, ch); err != nil {
			return err
		}
	}
	if err := peer.join(ctx, floorChannel); err != nil {
		return err
	}
	go peer.echo(floorChannel)
	if err := caller.waitMember(ctx, botChannel, botNick, 3*time.Minute, bot.Exited); err != nil {
		return fmt.Errorf("%w\n%s", err, bot.Output())
	}

	kojiName := "kojibot host ppc3"
	if viaHub {
		kojiName = "kojibot host ppc3 (hub)"
	}
	subjects := []*subject{
		{name: "floor (client echo)", c: caller,
			ask:   func(i int) string { return "PRIVMSG " + floorChannel + " :ping " + strconv.Itoa(i) },
			reply: func(l line, i int) bool { return l.is("PRIVMSG", "benchpeer", floorChannel, "ping "+strconv.Itoa(i)) }},
		{name: kojiName, c: caller, logFiles: []string{bot.Log, filepath.Join(dir, "kojibot.log")},
			ask: func(int) string { return "PRIVMSG " + botChannel + " :!koji host ppc3" },
			reply: func(l line, _ int) bool {
				return l.is("PRIVMSG", botNick, botChannel, callerNick+": ppc3.fedora.redhat.com: ")
			}},
	}
	if withLimnoria {
		stop, err := startLimnoria(ctx, filepath.Join(dir, "limnoria"), sb.IRC.Port())
		if err != nil {
			return err
		}
		defer stop()
		if err := caller.waitMember(ctx, limChannel, limNick, 2*time.Minute, func() bool { return false }); err != nil {
			return err
		}
		subjects = append(subjects, &subject{name: "Limnoria echo", c: caller,
			logFiles: []string{filepath.Join(dir, "limnoria", "stdout.log"), filepath.Join(dir, "limnoria", "logs", "messages.log")},
			ask:      func(i int) string { return "PRIVMSG " + limChannel + " :!echo e" + strconv.Itoa(i) },
			reply: func(l line, i int) bool {
				return l.is("PRIVMSG", limNick, limChannel, "e"+strconv.Itoa(i)) && l.text == "e"+strconv.Itoa(i)
			}})
	}

	if raw != nil {
		subjects = append(subjects, raw)
	}

	// Warm-up, then the timed rounds, the subjects in turn.
	for i := 0; i < warmup; i++ {
		time.Sleep(gap)
		for _, s := range subjects {
			if _, err := s.try(ctx, -1-i); err != nil {
				return fmt.Errorf("%w%s", err, s.logs())
			}
		}
	}
	cpu0 := cpuTime(bot.PID())
	for i := 0; i < tries; i++ {
		next := time.Now().Add(gap)
		for _, s := range subjects {
			d, err := s.try(ctx, i)
			if err != nil {
				return fmt.Errorf("%w%s", err, s.logs())
			}
			s.took = append(s.took, d)
		}
		time.Sleep(time.Until(next))
	}
	botCPU := (cpuTime(bot.PID()) - cpu0) / time.Duration(tries)
	report(subjects, tries, botCPU, rssKiB(bot.PID()))
	if perfOut != "" {
		return profile(ctx, subjects[1], bot.PID(), tries, gap, perfOut)
	}
	if bot.Exited() {
		return fmt.Errorf("kojibot exited:\n%s", bot.Output())
	}
	return nil
}

// try sends one request and waits for its reply, returning the time
// between the two.
func (s *subject) try(ctx context.Context, i int) (time.Duration, error) {
	start := time.Now()
	if s.call != nil {
		if err := s.call(ctx); err != nil {
			return 0, fmt.Errorf("%s: %w", s.name, err)
		}
		return time.Since(start), nil
	}
	if err := s.c.send(s.ask(i)); err != nil {
		return 0, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := s.c.read(deadline)
		if err != nil {
			return 0, fmt.Errorf("%s: waiting for the reply to %q: %w", s.name, s.ask(i), err)
		}
		if s.reply(l, i) {
			return l.at.Sub(start), nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
}

// stats are the order statistics of a sample, in milliseconds.
type stats struct{ p50, p90, p99, min float64 }

func summarize(ds []time.Duration) stats {
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return ms(s[min(max(i, 0), len(s)-1)])
	}
	return stats{p50: at(0.5), p90: at(0.9), p99: at(0.99), min: ms(s[0])}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func report(subjects []*subject, tries int, botCPU time.Duration, rss int) {
	floor := summarize(subjects[0].took)
	fmt.Printf("reply time through InspIRCd, %d tries each, in turn (%d CPUs)\n", tries, numCPU())
	fmt.Printf("| %-22s | %8s | %8s | %8s | %8s | %13s | %13s |\n", "", "median", "p90", "p99", "min", "median/floor", "p99/floor p99")
	fmt.Printf("|%s|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 24), strings.Repeat("-", 10), strings.Repeat("-", 10),
		strings.Repeat("-", 10), strings.Repeat("-", 10), strings.Repeat("-", 15), strings.Repeat("-", 15))
	for _, s := range subjects {
		st := summarize(s.took)
		fmt.Printf("| %-22s | %5.3f ms | %5.3f ms | %5.3f ms | %5.3f ms | %12.2f× | %12.2f× |\n",
			s.name, st.p50, st.p90, st.p99, st.min, st.p50/floor.p50, st.p99/floor.p99)
	}
	k := summarize(subjects[1].took)
	fmt.Printf("kojibot: CPU %.0f µs a reply, RSS %d KiB after the run\n", float64(botCPU.Nanoseconds())/1e3, rss)
	var lim, raw *stats
	for _, s := range subjects[2:] {
		st := summarize(s.took)
		if s.call != nil {
			raw = &st
		} else {
			lim = &st
		}
	}
	if raw != nil {
		// Through the hub, the hub's own cost is the floor: the goals of
		// the database path do not apply.
		fmt.Println(hubGoal(k, *raw))
		return
	}
	for _, g := range goals(floor, k, lim) {
		fmt.Println(g)
	}
}

// hubGoal is the verdict on kojibot's reply time through the hub k: its
// median at most the raw hub call's median + 1 ms (the hub's own cost is
// the floor of that path).
func hubGoal(k, raw stats) string {
	limit := raw.p50 + 1
	if k.p50 <= limit {
		return fmt.Sprintf("goal median ≤ raw XML-RPC median + 1 ms: met (%.3f ≤ %.3f ms)", k.p50, limit)
	}
	return fmt.Sprintf("goal median ≤ raw XML-RPC median + 1 ms: MISSED by %.3f ms (%.3f > %.3f ms)", k.p50-limit, k.p50, limit)
}

// goals are the verdicts on kojibot's reply time k: its median at most
// 0.8× Limnoria's echo (lim; nil when it was not measured) and its p99 at
// most the floor's p99 + 2 ms.
func goals(floor, k stats, lim *stats) []string {
	verdict := func(got, limit float64) string {
		if got <= limit {
			return fmt.Sprintf("met (%.3f ≤ %.3f ms)", got, limit)
		}
		return fmt.Sprintf("MISSED by %.3f ms (%.3f > %.3f ms)", got-limit, got, limit)
	}
	median := "not measured (-limnoria=false)"
	if lim != nil {
		median = verdict(k.p50, 0.8*lim.p50)
	}
	return []string{
		"goal median ≤ 0.8 × Limnoria echo median: " + median,
		"goal p99 ≤ floor p99 + 2 ms: " + verdict(k.p99, floor.p99+2),
	}
}

// profile records the kojibot process with perf while it answers tries
// more commands.
func profile(ctx context.Context, s *subject, pid, tries int, gap time.Duration, out string) error {
	cmd := exec.CommandContext(ctx, "perf", "record", "-g", "-F", "4999", "-o", out, "-p", strconv.Itoa(pid))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("perf: %w", err)
	}
	time.Sleep(500 * time.Millisecond)
	for i := 0; i < tries; i++ {
		time.Sleep(gap)
		if _, err := s.try(ctx, i); err != nil {
			return err
		}
	}
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	fmt.Printf("perf profile of kojibot over %d tries: %s (perf report -i %s)\n", tries, out, out)
	return nil
}

// startLimnoria runs Limnoria from a minimal generated configuration in
// dir: one network (the sandbox's lenient port), one channel, the
// Utilities plugin for echo, no flood protection and no outbound throttle
// (the same relaxed pacing kojibot gets).
func startLimnoria(ctx context.Context, dir string, port int) (func(), error) {
	bin, err := exec.LookPath("supybot")
	if err != nil {
		return nil, fmt.Errorf("limnoria: %w (Debian package limnoria; -limnoria=false leaves it out)", err)
	}
	for _, sub := range []string{"conf", "data", "backup", "logs", "tmp", "web"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	conf := []string{
		"supybot.nick: " + limNick,
		"supybot.ident: " + limNick,
		"supybot.user: Limnoria bench",
		"supybot.networks: bench",
		"supybot.networks.bench.servers: 127.0.0.1:" + strconv.Itoa(port),
		"supybot.networks.bench.channels: " + limChannel,
		"supybot.networks.bench.ssl: False",
		"supybot.reply.whenAddressedBy.chars: !",
		"supybot.plugins: Admin Owner User Misc Utilities",
		"supybot.plugins.Admin: True",
		"supybot.plugins.Owner: True",
		"supybot.plugins.User: True",
		"supybot.plugins.Misc: True",
		"supybot.plugins.Utilities: True",
		"supybot.abuse.flood.command: False",
		"supybot.abuse.flood.command.invalid: False",
		"supybot.protocols.irc.throttleTime: 0.0",
		"supybot.log.stdout: False",
		"supybot.log.level: WARNING",
		"supybot.directories.conf: " + filepath.Join(dir, "conf"),
		"supybot.directories.data: " + filepath.Join(dir, "data"),
		"supybot.directories.data.tmp: " + filepath.Join(dir, "tmp"),
		"supybot.directories.data.web: " + filepath.Join(dir, "web"),
		"supybot.directories.backup: " + filepath.Join(dir, "backup"),
		"supybot.directories.log: " + filepath.Join(dir, "logs"),
		"supybot.directories.plugins: ",
	}
	for _, f := range []string{"users.conf", "channels.conf", "networks.conf", "ignores.conf"} {
		if err := os.WriteFile(filepath.Join(dir, "conf", f), nil, 0o600); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(dir, "bench.conf")
	if err := os.WriteFile(path, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--allow-root", path)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := harness.Spawn(cmd); err != nil {
		out.Close()
		return nil, fmt.Errorf("limnoria: %w", err)
	}
	return func() {
		harness.StopProcess(cmd.Process, 5*time.Second)
		out.Close()
	}, nil
}

// rawClient is a minimal IRC client on one socket, read by its caller
// alone, so that the time a line is read is the time it arrived.
type rawClient struct {
	nick string
	conn net.Conn
	r    *bufio.Reader
}

// line is one received line, split enough to match replies.
type line struct {
	at                  time.Time
	prefix, cmd, target string
	text                string
}

func (l line) is(cmd, from, target, textPrefix string) bool {
	src, _, _ := strings.Cut(l.prefix, "!")
	return l.cmd == cmd && strings.EqualFold(src, from) && strings.EqualFold(l.target, target) &&
		strings.HasPrefix(l.text, textPrefix)
}

func parseLine(s string, at time.Time) line {
	l := line{at: at}
	if strings.HasPrefix(s, "@") {
		_, s, _ = strings.Cut(s, " ")
	}
	if strings.HasPrefix(s, ":") {
		l.prefix, s, _ = strings.Cut(s[1:], " ")
	}
	var rest string
	l.cmd, rest, _ = strings.Cut(s, " ")
	if i := strings.Index(rest, " :"); i >= 0 {
		l.text = rest[i+2:]
		rest = rest[:i]
	} else if strings.HasPrefix(rest, ":") {
		l.text, rest = rest[1:], ""
	}
	l.target, _, _ = strings.Cut(rest, " ")
	return l
}

// dialRaw connects and registers as nick, logging in to services with SASL
// PLAIN when user is set. It asks for account-tag, as kojibot does.
func dialRaw(ctx context.Context, addr, nick, user, password string) (*rawClient, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c := &rawClient{nick: nick, conn: conn, r: bufio.NewReader(conn)}
	caps := "account-tag"
	if user != "" {
		caps += " sasl"
	}
	if err := c.send("CAP REQ :" + caps); err != nil {
		return nil, err
	}
	if err := c.send("NICK " + nick); err != nil {
		return nil, err
	}
	if err := c.send("USER " + nick + " 0 * :bench client"); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	if _, err := c.until(deadline, func(l line) bool { return l.cmd == "CAP" }); err != nil {
		return nil, err
	}
	if user != "" {
		if err := c.send("AUTHENTICATE PLAIN"); err != nil {
			return nil, err
		}
		if _, err := c.until(deadline, func(l line) bool { return l.cmd == "AUTHENTICATE" }); err != nil {
			return nil, err
		}
		if err := c.send("AUTHENTICATE " + base64.StdEncoding.EncodeToString([]byte(user+"\x00"+user+"\x00"+password))); err != nil {
			return nil, err
		}
		l, err := c.until(deadline, func(l line) bool { return l.cmd >= "902" && l.cmd <= "907" && len(l.cmd) == 3 })
		if err != nil {
			return nil, err
		}
		if l.cmd != "903" {
			return nil, fmt.Errorf("%s: SASL login failed: %s %s", nick, l.cmd, l.text)
		}
	}
	if err := c.send("CAP END"); err != nil {
		return nil, err
	}
	if _, err := c.until(deadline, func(l line) bool { return l.cmd == "001" }); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *rawClient) send(s string) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write([]byte(s + "\r\n"))
	return err
}

// read returns the next line, answering PINGs on the way.
func (c *rawClient) read(deadline time.Time) (line, error) {
	for {
		_ = c.conn.SetReadDeadline(deadline)
		s, err := c.r.ReadString('\n')
		at := time.Now()
		if err != nil {
			return line{}, fmt.Errorf("%s: %w", c.nick, err)
		}
		l := parseLine(strings.TrimRight(s, "\r\n"), at)
		if l.cmd == "PING" {
			_ = c.send("PONG :" + l.text)
			continue
		}
		if l.cmd == "ERROR" {
			return line{}, fmt.Errorf("%s: server said ERROR %s", c.nick, l.text)
		}
		return l, nil
	}
}

func (c *rawClient) until(deadline time.Time, match func(line) bool) (line, error) {
	for {
		l, err := c.read(deadline)
		if err != nil {
			return l, err
		}
		if match(l) {
			return l, nil
		}
	}
}

func (c *rawClient) join(_ context.Context, ch string) error {
	if err := c.send("JOIN " + ch); err != nil {
		return err
	}
	_, err := c.until(time.Now().Add(30*time.Second), func(l line) bool { return l.cmd == "366" })
	return err
}

// waitMember waits until nick has joined ch (its JOIN seen, or listed by NAMES).
func (c *rawClient) waitMember(_ context.Context, ch, nick string, timeout time.Duration, gone func() bool) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if gone() {
			return fmt.Errorf("%s exited before joining %s", nick, ch)
		}
		if err := c.send("NAMES " + ch); err != nil {
			return err
		}
		for {
			l, err := c.read(deadline)
			if err != nil {
				return err
			}
			if l.cmd == "JOIN" && l.is("JOIN", nick, "", "") {
				return nil
			}
			if l.cmd == "353" && slices.ContainsFunc(strings.Fields(l.text), func(n string) bool {
				return strings.EqualFold(strings.TrimLeft(n, "@+%&~"), nick)
			}) {
				return nil
			}
			if l.cmd == "366" {
				break
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("%s did not join %s within %s", nick, ch, timeout)
}

// echo answers every line said in ch by echoing it there, until the
// connection closes.
func (c *rawClient) echo(ch string) {
	for {
		l, err := c.read(time.Time{})
		if err != nil {
			return
		}
		if l.cmd == "PRIVMSG" && strings.EqualFold(l.target, ch) && strings.HasPrefix(l.text, "ping ") {
			_ = c.send("PRIVMSG " + ch + " :" + l.text)
		}
	}
}

func (c *rawClient) close() {
	_ = c.send("QUIT :bye")
	_ = c.conn.Close()
}

// cpuTime is a process's user + system CPU time so far.
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * 10 * time.Millisecond
}

// rssKiB reads a process's resident set size from /proc.
func rssKiB(pid int) int {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return -1
}

func numCPU() int {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return -1
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}
