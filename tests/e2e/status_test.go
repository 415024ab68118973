package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// TestStatusPageInBrowser opens the bot's /status in headless Chromium
// (Debian's chromium; missing, the test fails): the sandbox farm's stale
// builder (a host without a kojid, stale since the farm started) and its
// full /mnt/koji are marked, with the watcher's rate. (The README's
// screenshot is the demo farm's: make screenshot.)
func TestStatusPageInBrowser(t *testing.T) {
	const fill = sandbox.SharedMount + "/kojibot-e2e-status-fill"
	bldCleanup(t, sandbox.HubHost, "rm -f "+fill)
	bldExec(t, sandbox.HubHost, "dd if=/dev/zero of="+fill+" bs=1M count=15 status=none")
	const staleHost = "ppc3.fedora.redhat.com"
	_, base := watchBot(t, "kojibot-status", map[string]any{"http": map[string]any{"status_page": true}})
	ctx := chromiumTab(t, 1000, 900, 2*time.Minute)

	// The watcher needs a few rounds (every 2 s) for a rate and for
	// stale_after (8 s) to pass: reload until both show.
	var stale, full string
	deadline := time.Now().Add(90 * time.Second)
	for {
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/status")); err != nil {
			t.Fatal(err)
		}
		text, err := chromedp.Run(ctx, chromedp.Evaluate[string](
			`Array.from(document.querySelectorAll("tr.stale th")).map(e => e.textContent).join(",") + "|" + Array.from(document.querySelectorAll("tr.full")).map(e => e.textContent).join(",")`))
		if err != nil {
			t.Fatal(err)
		}
		stale, full, _ = strings.Cut(text, "|")
		if strings.Contains(stale, staleHost) && !strings.Contains(stale, "xenbuilder1") && strings.Contains(full, "/mnt/koji on "+sandbox.HubHost) && strings.Contains(full, "%/h") {
			break
		}
		if time.Now().After(deadline) {
			page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("no stale %s and full %s: stale rows %q, full rows %q; page:\n%s", staleHost, sandbox.SharedMount, stale, full, page)
		}
		time.Sleep(2 * time.Second)
	}
}
