package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// tourPrefix is the bot's command prefix in the channel.
const tourPrefix = "!koji "

// tourTimeout bounds the scripted conversation (the sandbox's start-up
// is not counted).
const tourTimeout = 60 * time.Second

// Tour starts the demo farm, plays a scripted conversation with the bot
// through the real IRC server as alice (in the FAS group) and bob (not in
// it), writes the transcript to w as an IRC log, and stops everything.
// With screenshot set, it writes there a screenshot of the bot's /status
// once /mnt/koji is full (make screenshot: docs/status.png).
func Tour(ctx context.Context, w io.Writer, screenshot string) error {
	f, err := startFarm(ctx, "kojibot-tour-", true, false)
	if err != nil {
		return err
	}
	defer f.close()
	sb := f.sb
	addr := fmt.Sprintf("127.0.0.1:%d", sb.IRC.Port())
	t := &tour{w: w, bot: "kojibot", status: f.httpBase + "/status", screenshot: screenshot}
	for _, u := range []string{"alice", "bob"} {
		c, err := ircnet.Dial(ctx, addr, u, ircnet.ClientOptions{})
		if err != nil {
			return err
		}
		defer c.Quit()
		if err := c.Identify(ctx, u, sb.Users[u]); err != nil {
			return err
		}
		if err := c.Join(ctx, sandbox.Channel); err != nil {
			return err
		}
		if u == "alice" {
			t.alice = c
		} else {
			t.bob = c
		}
	}
	// A build writes to fillingBuilder's fillingMount at a known rate
	// from before the bot starts, so that every reading of the watcher's
	// is on the trend.
	stopFill := make(chan struct{})
	filled := fillAt(sb, fillingBuilder, fillingMount+"/kojibot-tour-build", fillPerSecond, stopFill)
	defer func() { close(stopFill); <-filled }()
	bot, err := sb.StartBot(f.bin, "kojibot", f.cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, tourTimeout)
	defer cancel()
	begin := time.Now()
	if err := t.play(ctx, sb); err != nil {
		t.flush()
		return fmt.Errorf("tour: %w\nthe bot's output (end):\n%s", err, tail(bot.Output(), 30))
	}
	t.flush()
	fmt.Fprintf(w, "--- the tour took %s; stopping everything\n", time.Since(begin).Round(100*time.Millisecond))
	return nil
}

// shootStatus opens the status page at url in headless Chromium (Debian's
// chromium), waits until it marks a stale builder and a full mount, and
// writes its screenshot (PNG, the whole page) to path.
func shootStatus(ctx context.Context, url, path string) error {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		return fmt.Errorf("screenshot: chromium (Debian package chromium): %w", err)
	}
	dir, err := os.MkdirTemp("", "kojibot-tour-chromium-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin),
		chromedp.UserDataDir(dir), chromedp.NoSandbox, chromedp.WindowSize(900, 700))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancelT := context.WithTimeout(bctx, 30*time.Second)
	defer cancelT()
	if err := chromedp.Do(bctx, chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS("tr.stale")), chromedp.WaitVisible(chromedp.CSS("tr.full"))); err != nil {
		return fmt.Errorf("screenshot: %s shows no stale builder and no full mount: %w", url, err)
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	return os.WriteFile(path, png, 0o644)
}

// The tour's filling mount: a build writes fillPerSecond bytes a second to
// fillingBuilder's fillingMount, of fillingMountSize bytes, and `disk
// fillingBuilder` says how fast it fills and when it will be full.
const (
	fillingBuilder   = "xenbuilder1"
	fillingMount     = "/mnt/build"
	fillingMountSize = 16 << 20
	fillPerSecond    = 32 << 10
)

// fillAt grows the file path on host so that it holds perSecond bytes for
// every second since the call (fallocate: the blocks are really used),
// every 250ms, until stop is closed; the file is removed at the end. The
// returned channel is closed when it has stopped.
func fillAt(sb *sandbox.Sandbox, host, path string, perSecond int64, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		defer func() { _, _ = sb.Farm.Exec(host, "rm -f "+path) }()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if size := int64(float64(perSecond) * time.Since(start).Seconds()); size > 0 {
				if _, err := sb.Farm.Exec(host, fmt.Sprintf("fallocate -l %d %s", size, path)); err != nil {
					return
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return done
}

// tour is the conversation as alice's client sees it.
type tour struct {
	w          io.Writer
	bot        string
	alice, bob *ircnet.Client
	// status is the bot's /status; screenshot, when set, is where the
	// tour writes its screenshot once /mnt/koji is full.
	status, screenshot string

	mu      sync.Mutex
	printed int // alice's messages written so far
	seen    int // alice's messages looked at by wait so far
}

// flush writes alice's new PRIVMSG, NOTICE and JOIN lines.
func (t *tour) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	ms := t.alice.Messages()
	for ; t.printed < len(ms); t.printed++ {
		m := ms[t.printed]
		at := m.At.Format("15:04:05")
		switch {
		case m.Command == "PRIVMSG" && strings.EqualFold(m.Target(), sandbox.Channel):
			fmt.Fprintf(t.w, "%s <%s> %s\n", at, m.Source, m.Text)
		case m.Command == "NOTICE" && strings.EqualFold(m.Source, t.bot):
			fmt.Fprintf(t.w, "%s -%s- %s\n", at, m.Source, m.Text)
		case m.Command == "JOIN" && strings.EqualFold(m.Source, t.bot):
			fmt.Fprintf(t.w, "%s -!- %s has joined %s\n", at, m.Source, sandbox.Channel)
		}
	}
}

// note writes a line of narration.
func (t *tour) note(format string, args ...any) {
	t.flush()
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "%s *** %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// say sends text to the channel as c; alice's own lines are written here
// (the server does not echo them), bob's come back through alice's client.
func (t *tour) say(c *ircnet.Client, text string) error {
	t.flush()
	if c == t.alice {
		t.mu.Lock()
		fmt.Fprintf(t.w, "%s <%s> %s\n", time.Now().Format("15:04:05"), c.Nick(), text)
		t.mu.Unlock()
	}
	return c.Privmsg(sandbox.Channel, text)
}

// wait writes the conversation as it arrives until a line of the bot's
// (in the channel, or a NOTICE to alice) satisfies done, and returns it.
func (t *tour) wait(ctx context.Context, what string, done func(string) bool) (string, error) {
	return t.waitFrom(ctx, what, false, done)
}

// alert is wait for a notification of the watcher's, which may have come
// at any time since the bot joined.
func (t *tour) alert(ctx context.Context, what string, done func(string) bool) (string, error) {
	return t.waitFrom(ctx, what, true, done)
}

// waitFrom is wait, looking at every line alice received when all, else
// only at those not looked at yet.
func (t *tour) waitFrom(ctx context.Context, what string, all bool, done func(string) bool) (string, error) {
	for {
		t.flush()
		ms := t.alice.Messages()
		t.mu.Lock()
		i := t.seen
		if all {
			i = 0
		}
		for ; i < len(ms); i++ {
			m := ms[i]
			if (m.Command == "PRIVMSG" || m.Command == "NOTICE") && strings.EqualFold(m.Source, t.bot) && done(m.Text) {
				if !all {
					t.seen = i + 1
				}
				t.mu.Unlock()
				return m.Text, nil
			}
		}
		if !all {
			t.seen = i
		}
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// quiet writes the conversation until the bot has been silent for d.
func (t *tour) quiet(ctx context.Context, d time.Duration) {
	last := len(t.alice.Messages())
	idle := time.Now()
	for time.Since(idle) < d && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		if n := len(t.alice.Messages()); n != last {
			last, idle = n, time.Now()
		}
		t.flush()
	}
	t.mu.Lock()
	t.seen = max(t.seen, last)
	t.mu.Unlock()
}

var (
	tourToken = regexp.MustCompile(`confirm ([a-z0-9]{8}) \(within `)
	tourLink  = regexp.MustCompile(`http://\S+/replies/\S+`)
	tourJob   = regexp.MustCompile(`^(?:alice: )?job ([0-9]+) started: `)
)

// has is a done func: the line contains every part.
func has(parts ...string) func(string) bool {
	return func(l string) bool {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				return false
			}
		}
		return true
	}
}

// confirmJob sends text as alice, confirms the plan and follows the job to
// its end.
func (t *tour) confirmJob(ctx context.Context, text string) error {
	if err := t.say(t.alice, tourPrefix+text); err != nil {
		return err
	}
	l, err := t.wait(ctx, "the confirmation of "+text, func(l string) bool {
		return tourToken.MatchString(l) || tourLink.MatchString(l) || strings.Contains(l, "error:") || strings.Contains(l, "denied:")
	})
	if err != nil {
		return err
	}
	if link := tourLink.FindString(l); link != "" && !tourToken.MatchString(l) {
		// The plan was summarised: the whole of it is behind the link, and
		// the token (never published there) follows in the channel.
		page, err := httpGet(ctx, link)
		if err != nil {
			return err
		}
		if tourToken.MatchString(page) {
			return fmt.Errorf("%s: the token was published at %s", text, link)
		}
		t.note("alice reads the whole plan at the link (%d lines)", strings.Count(strings.TrimRight(page, "\n"), "\n")+1)
		if l, err = t.wait(ctx, "the token of "+text, func(l string) bool { return tourToken.MatchString(l) }); err != nil {
			return err
		}
	}
	m := tourToken.FindStringSubmatch(l)
	if m == nil {
		return fmt.Errorf("%s: %s", text, l)
	}
	if err := t.say(t.alice, tourPrefix+"confirm "+m[1]); err != nil {
		return err
	}
	l, err = t.wait(ctx, "the job of "+text, func(l string) bool { return tourJob.MatchString(l) || strings.Contains(l, "error:") })
	if err != nil {
		return err
	}
	j := tourJob.FindStringSubmatch(l)
	if j == nil {
		return fmt.Errorf("%s: %s", text, l)
	}
	_, err = t.wait(ctx, "the end of job "+j[1], func(l string) bool {
		return strings.Contains(l, "job "+j[1]+" (") && (strings.Contains(l, " done in ") || strings.Contains(l, "error:"))
	})
	return err
}

// play is the script.
func (t *tour) play(ctx context.Context, sb *sandbox.Sandbox) error {
	t.note("kojibot joins %s; alice is in FAS group %s, bob is not; the bot checks the farm every 2s", sandbox.Channel, sandbox.Group)
	for !slices.ContainsFunc(t.alice.Messages(), func(m ircnet.Message) bool {
		return m.Command == "JOIN" && strings.EqualFold(m.Source, t.bot)
	}) {
		if ctx.Err() != nil {
			return fmt.Errorf("the bot did not join: %w", ctx.Err())
		}
		time.Sleep(100 * time.Millisecond)
	}
	steps := []struct {
		who  *ircnet.Client
		text string
		done func(string) bool
	}{
		{t.alice, "help", has("alice:")},
		{t.alice, "hosts", has("alice:")},
		{t.alice, "disk all", has("alice:")},
	}
	for _, s := range steps {
		if err := t.say(s.who, tourPrefix+s.text); err != nil {
			return err
		}
		if _, err := t.wait(ctx, "the reply to "+s.text, s.done); err != nil {
			return err
		}
		t.quiet(ctx, 700*time.Millisecond)
	}
	if _, err := t.alert(ctx, "the stale builder alert", has("ALERT", "stale builder")); err != nil {
		return err
	}
	if _, err := t.alert(ctx, "the disk alert", has("ALERT", sandbox.FullBuilder)); err != nil {
		return err
	}
	t.quiet(ctx, 500*time.Millisecond)

	if err := t.say(t.bob, tourPrefix+"capacity ppc3 8"); err != nil {
		return err
	}
	if _, err := t.wait(ctx, "bob's denial", has("bob: denied:")); err != nil {
		return err
	}
	if err := t.say(t.alice, tourPrefix+"capacity ppc3 2"); err != nil {
		return err
	}
	if _, err := t.wait(ctx, "alice's capacity", has("alice:", "capacity 4 → 2")); err != nil {
		return err
	}
	t.quiet(ctx, 300*time.Millisecond)

	t.note("meanwhile a build on %s has been writing %d KiB/s to %s (%d MiB) since the bot started", fillingBuilder, fillPerSecond>>10, fillingMount, fillingMountSize>>20)
	// The watcher needs three readings for a rate: ask again (it reads
	// every 2s) until it has them.
	for try := 1; ; try++ {
		if err := t.say(t.alice, tourPrefix+"disk "+fillingBuilder); err != nil {
			return err
		}
		l, err := t.wait(ctx, "the disk of "+fillingBuilder, has("alice: "+fillingBuilder+":", fillingMount))
		if err != nil {
			return err
		}
		t.quiet(ctx, 300*time.Millisecond)
		if strings.Contains(l, "%/h, full in about") {
			break
		}
		if try == 3 {
			return fmt.Errorf("no fill rate for %s: %s", fillingMount, l)
		}
		time.Sleep(2 * time.Second)
	}
	const history = "list-history --host ppc3" + sandbox.KojiDomain
	t.note("what Koji itself shows, with the upstream CLI: koji %s", history)
	out, err := sb.Koji.ReadCLI(ctx, strings.Fields(history)...)
	if err != nil {
		return err
	}
	t.mu.Lock()
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		fmt.Fprintf(t.w, "%s     %s\n", time.Now().Format("15:04:05"), l)
	}
	t.mu.Unlock()
	if err := t.say(t.alice, tourPrefix+"cleanup "+sandbox.MessyBuilder+" --dry-run"); err != nil {
		return err
	}
	if _, err := t.wait(ctx, "the dry run", has("dry run, nothing will change")); err != nil {
		return err
	}
	t.quiet(ctx, 700*time.Millisecond)
	if err := t.confirmJob(ctx, "cleanup "+sandbox.MessyBuilder); err != nil {
		return err
	}
	t.quiet(ctx, 500*time.Millisecond)

	t.note("%s on %s fills up past 90%%", sandbox.SharedMount, sandbox.HubHost)
	if err := sb.FillShared(); err != nil {
		return err
	}
	if _, err := t.alert(ctx, "the shared mount alert", has("ALERT shared mount "+sandbox.SharedMount, "/drafts/")); err != nil {
		return err
	}
	t.quiet(ctx, 500*time.Millisecond)
	if t.screenshot != "" {
		if err := shootStatus(ctx, t.status, t.screenshot); err != nil {
			return err
		}
		t.note("the farm in a browser now: %s (screenshot: %s)", t.status, t.screenshot)
	}
	if err := t.confirmJob(ctx, "restart all"); err != nil {
		return err
	}
	t.quiet(ctx, 500*time.Millisecond)
	return nil
}

// httpGet returns the body of url.
func httpGet(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
