package web

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
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

// TestBrowserStatusLive: /status open in Chromium changes without a
// reload when the farm does: status.js, told over /status/events, fetches
// the page again and replaces its main part (the new alert shows, the
// old one goes), and what it puts in is text, never markup.
func TestBrowserStatusLive(t *testing.T) {
	var alerts atomic.Value
	alerts.Store([]string{"disk:bld1:/var/lib/mock"})
	s := New(Options{Listen: "127.0.0.1:0", StatusPage: true,
		Status: StatusSource{Firing: func() []string { return alerts.Load().([]string) }}})
	s.statusPoll = 100 * time.Millisecond
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+s.Addr()+"/status")); err != nil {
		t.Fatal(err)
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	const alertsText = `Array.from(document.querySelectorAll("li.alert")).map(e => e.textContent).join(",")`
	if got := eval(`window.kojibotMark = "same page"; ` + alertsText); got != "disk:bld1:/var/lib/mock" {
		t.Fatalf("alerts %q", got)
	}
	// Let the stream connect and take its first look before the change.
	time.Sleep(500 * time.Millisecond)
	alerts.Store([]string{"stale:<b>bld2</b>"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := eval(alertsText)
		if got == "stale:<b>bld2</b>" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not change: alerts %q", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if mark := eval(`String(window.kojibotMark)`); mark != "same page" {
		t.Fatalf("the page was reloaded (mark %q)", mark)
	}
	if n := eval(`String(document.querySelectorAll("b").length)`); n != "0" {
		t.Errorf("%s elements made of the alert", n)
	}
}
