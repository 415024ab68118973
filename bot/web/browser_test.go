package web

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The package's tests share one headless Chromium (Debian's chromium
// package), started by the first test that needs it.
var (
	browserOnce   sync.Once
	browserCtx    context.Context
	browserCancel context.CancelFunc
	browserErr    error
)

// browser returns a new tab of the shared Chromium, closed when t ends. A
// missing chromium is a failure, never a skip.
func browser(t *testing.T) context.Context {
	t.Helper()
	browserOnce.Do(func() {
		path, err := exec.LookPath("chromium")
		if err != nil {
			browserErr = err
			return
		}
		dir, err := os.MkdirTemp("", "kojibot-chromium-")
		if err != nil {
			browserErr = err
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.UserDataDir(dir),
			chromedp.NoSandbox, // as root in CI and containers
			chromedp.WindowSize(412, 915),
		)
		actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(actx)
		if err := chromedp.Do(ctx); err != nil {
			browserErr = err
		}
		browserCtx = ctx
		browserCancel = func() { cancel(); acancel(); _ = os.RemoveAll(dir) }
	})
	if browserErr != nil {
		t.Fatalf("chromium (Debian package chromium) does not start: %v", browserErr)
	}
	ctx, cancel := chromedp.NewContext(browserCtx)
	ctx, cancelT := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(func() { cancelT(); cancel() })
	return ctx
}

func TestMain(m *testing.M) {
	code := m.Run()
	if browserCancel != nil {
		browserCancel()
	}
	os.Exit(code)
}

// TestBrowserJobPage watches a job page in Chromium: steps taken while it
// is open appear without a reload, then the outcome; markup in the
// command, a host name or a step is shown as text.
func TestBrowserJobPage(t *testing.T) {
	const token = "q3hx7k2mzt5ydw4nqa6vcr2lpe"
	j := hostileJob(token)
	s := start(t, Options{Jobs: fakeJobs{token: j}})
	ctx := browser(t)
	url := "http://" + s.Addr() + "/jobs/" + token
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	count := func(expr string) int {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[int](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	h1, result, steps := text("h1"), text("#result"), count(`document.querySelectorAll("#log li").length`)
	if !strings.Contains(h1, "cleanup <img src=x onerror=alert(1)>") || result != "running" || steps != 1 {
		t.Fatalf("before: h1 %q, result %q, %d steps", h1, result, steps)
	}
	if n := count(`document.querySelectorAll("img, main script, b, i").length`); n != 0 {
		t.Fatalf("%d elements injected by the job's text", n)
	}

	// The page is open: the job goes on, then ends.
	j.Step("freed 2.1 GiB on <i>bld1</i>")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#log li:nth-child(2)`))); err != nil {
		t.Fatal(err)
	}
	if last := text(`#log li:nth-child(2)`); last != "freed 2.1 GiB on <i>bld1</i>" {
		t.Fatalf("live step %q", last)
	}
	j.Finish("done")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#result.state-done`))); err != nil {
		t.Fatal(err)
	}
	if result, n := text("#result"), count(`document.querySelectorAll("#log li").length + 100*document.querySelectorAll("i, img").length`); result != "done" || n != 2 {
		t.Fatalf("after: result %q, %d", result, n)
	}
}
