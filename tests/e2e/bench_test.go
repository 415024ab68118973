package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// BenchmarkHostsRoundTrip measures, over 100 tries, the time from a
// "!koji hosts" line sent through the real IRC server to the first line of
// the bot's reply, and the bot's resident memory after start and after the
// tries. The bot is built without the race detector and sends with a
// relaxed pace so that the figure is the bot's own latency, not the flood
// pacing's. Run: go test -run '^$' -bench HostsRoundTrip -benchtime 1x ./tests/e2e/
func BenchmarkHostsRoundTrip(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	bin, err := sandbox.BuildBinary(dir, false)
	if err != nil {
		b.Fatal(err)
	}
	const nick = "kojibot-bench"
	botChannel[nick] = "#bench"
	path, err := sb.WriteConfig(ctx, sandbox.BotConfig{Nick: nick, DB: "koji", Channel: "#bench", Lenient: true,
		Extra: map[string]any{"irc": map[string]any{"send_rate": 200, "send_burst": 200},
			"commands": map[string]any{"user_rate": 200, "user_burst": 200}}})
	if err != nil {
		b.Fatal(err)
	}
	bot, err := sb.StartBot(bin, nick, path)
	if err != nil {
		b.Fatal(err)
	}
	bots[nick] = bot
	defer func() { bot.Stop(); delete(bots, nick) }()
	if err := waitJoined(ctx, nick); err != nil {
		b.Fatal(err)
	}
	rssStart := rssKiB(bot.PID())
	c, err := ircnet.Dial(ctx, sb.IRC.Addr(), "benchuser", ircnet.ClientOptions{SASLUser: "alice", SASLPassword: users["alice"]})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Quit()
	if err := c.Join(ctx, "#bench"); err != nil {
		b.Fatal(err)
	}
	const tries = 100
	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < tries; i++ {
		start := time.Now()
		if err := c.Privmsg("#bench", "!koji hosts"); err != nil {
			b.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		// The four channel lines of the summarised reply; the first one times it.
		ms, err := c.Collect(wctx, 4, func(m ircnet.Message) bool {
			return m.Command == "PRIVMSG" && m.Source == nick && strings.HasPrefix(m.Text, "benchuser: ")
		})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		took = append(took, ms[0].At.Sub(start))
		// Let the private NOTICE copy drain before the next try.
		nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = c.Collect(nctx, 41, func(m ircnet.Message) bool { return m.Command == "NOTICE" && m.Source == nick })
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[tries/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[tries*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(rssStart), "rss-start-KiB")
	b.ReportMetric(float64(rssKiB(bot.PID())), "rss-after-KiB")
}

// rssKiB reads a process's resident set size from /proc.
func rssKiB(pid int) int {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return -1
}
