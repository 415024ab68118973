package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/fedora-infra/kojibot/commands/state"
	"github.com/fedora-infra/kojibot/tests/harness/builders"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// The bot's pages in a real browser: Debian's chromium, headless, driven
// by chromedp. A missing chromium is a failure, never a skip.

// chromiumTab starts a headless Chromium of its own with a window of
// width × height and returns a tab of it, closed (with the browser) when
// the test ends; every action in it is bounded by timeout.
func chromiumTab(t *testing.T, width, height int, timeout time.Duration) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium (Debian package chromium): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()), chromedp.NoSandbox, chromedp.WindowSize(width, height))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelT(); cancel(); acancel() })
	return ctx
}

// jsValue evaluates expr in the tab and fails the test when it cannot.
func jsValue[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// getAs fetches url with an Accept header (none when accept is "") and
// returns the status, the Content-Type and the body.
func getAs(t *testing.T, url, accept string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// TestWebJobPageLive: the page of a real clean-up of a sandbox builder,
// opened in Chromium while the job runs, shows the steps taken after it
// was opened and then the outcome, without a reload (SSE); the same
// page is plain text with ?format=text and with Accept: text/plain.
func TestWebJobPageLive(t *testing.T) {
	// One old entry holding many bind mounts: each is unmounted with a
	// remote command of its own, so the job runs for a few seconds.
	const slow, src, mounts = builders.MockDir + "/f40-build-1041-55", builders.BuildDir + "/kojibot-e2e-jobpage-src", 80
	bldCleanup(t, bldBuilder, bldUnmountUnder(slow)+"\nrm -rf "+slow+" "+src+"\n"+bldStartServices())
	bldExec(t, bldBuilder, fmt.Sprintf(`set -e
mkdir -p %[1]s && echo src > %[1]s/file
mkdir -p %[2]s && cd %[2]s && mkdir $(seq -f m%%g %[3]d)
for i in $(seq %[3]d); do mount --bind %[1]s m$i; done
touch -d '10 days ago' %[2]s`, src, slow, mounts))
	alice, base := watchBot(t, "kojibot-jobpage", nil)
	ctx := chromiumTab(t, 1000, 900, bldWait)

	_, plan, token := bldPlan(alice, "cleanup "+bldBuilder)
	if text := strings.Join(plan, "\n"); !strings.Contains(text, "delete 1 entry") {
		t.Fatalf("plan:\n%s", text)
	}
	bldSend(alice, "confirm "+token)
	id, lines := bldStarted(alice, "the clean-up")
	link := regexp.MustCompile(regexp.QuoteMeta(base) + `/jobs/[A-Za-z0-9_-]+`).FindString(strings.Join(lines, "\n"))
	if link == "" {
		t.Fatalf("no link to the job's page in %q", lines)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	// A mark that a reload would wipe out.
	first := jsValue[[]any](t, ctx, `window.kojibotMark = "same page";
		[document.getElementById("result").textContent, document.querySelectorAll("#log li").length]`)
	if first[0] != "running" {
		t.Fatalf("the job's page, opened right after the job started, says %q: the job was too quick to watch it live", first[0])
	}
	before := int(first[1].(float64))
	end := bldJobEnd(alice, id)
	bldInOrder(t, append(lines, end...), bldBuilder+": stopped kojid, plague-builder", bldBuilder+": removed 1 entry",
		bldBuilder+": started kojid, plague-builder again", "job "+id+" (cleanup "+bldBuilder+") done in ")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#result.state-done`))); err != nil {
		t.Fatalf("the outcome never showed: %v; page:\n%s", err, jsValue[string](t, ctx, `document.body.innerText`))
	}
	steps := jsValue[[]string](t, ctx, `Array.from(document.querySelectorAll("#log li")).map(e => e.textContent)`)
	if mark := jsValue[string](t, ctx, `String(window.kojibotMark)`); mark != "same page" {
		t.Fatalf("the page was reloaded (mark %q)", mark)
	}
	if len(steps) <= before {
		t.Fatalf("%d steps when opened, %d at the end: none came live: %q", before, len(steps), steps)
	}
	text := strings.Join(steps, "\n")
	for _, want := range []string{bldBuilder + ": removed 1 entry", bldBuilder + ": started kojid, plague-builder again"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page's steps lack %q:\n%s", want, text)
		}
	}
	if got := jsValue[string](t, ctx, `document.getElementById("result").textContent`); got != "done" {
		t.Errorf("outcome %q, want done", got)
	}
	t.Logf("%d steps when the page opened, %d at the end", before, len(steps))

	// The plain text, asked for either way; a browser's Accept gets HTML.
	for _, c := range []struct{ url, accept string }{{link + "?format=text", "text/html"}, {link, "text/plain"}} {
		code, ctype, body := getAs(t, c.url, c.accept)
		if code != 200 || !strings.HasPrefix(ctype, "text/plain") || !strings.HasPrefix(body, "job "+id+": cleanup "+bldBuilder+"\n") ||
			!strings.Contains(body, "\nresult: done\n") || !strings.Contains(body, bldBuilder+": removed 1 entry") {
			t.Errorf("GET %s (Accept: %s): %d %s\n%s", c.url, c.accept, code, ctype, body)
		}
	}
	if code, ctype, body := getAs(t, link, "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"); code != 200 ||
		!strings.HasPrefix(ctype, "text/html") || !strings.Contains(body, `<ol id="log"`) {
		t.Errorf("GET %s as a browser: %d %s\n%s", link, code, ctype, body)
	}
}

// webMarkup is text that a page showing it as markup would turn into an
// image (running its onerror) and bold text.
const webMarkup = `<img src=x onerror=alert(1)><b>bold</b> & "quoted"`

// TestWebMarkupAndDraftChart: a host's comment set in Koji and an outage
// draft's text, both holding markup, are shown by /status and the draft
// page as text (no element made of them, no script run); the draft page's
// chart of /mnt/koji has one point per reading the watcher kept of it.
func TestWebMarkupAndDraftChart(t *testing.T) {
	const host = "xenbuilder1.fedora.redhat.com"
	bg := context.Background()
	db, err := pgx.Connect(bg, sb.DBs[sandbox.KojiDB].Admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(bg) })
	var old sql.NullString
	if err := db.QueryRow(bg, `SELECT comment FROM host_config WHERE active AND host_id = (SELECT id FROM host WHERE name = $1)`, host).Scan(&old); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec(bg, `UPDATE host_config SET comment = $1 WHERE active AND host_id = (SELECT id FROM host WHERE name = $2)`, old, host); err != nil {
			t.Errorf("restoring %s's comment: %v", host, err)
		}
	})
	if _, err := db.Exec(bg, `UPDATE host_config SET comment = $1 WHERE active AND host_id = (SELECT id FROM host WHERE name = $2)`, webMarkup, host); err != nil {
		t.Fatal(err)
	}
	const nick = "kojibot-markup"
	alice, base := watchBot(t, nick, map[string]any{"http": map[string]any{"status_page": true}})
	ctx := chromiumTab(t, 1000, 900, 2*time.Minute)

	// No dialog may open (an injected onerror would): chromedp would hang
	// on it, so the test would time out rather than pass.
	injected := `document.querySelectorAll("img, b, main script").length`
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/status")); err != nil {
		t.Fatal(err)
	}
	row := jsValue[string](t, ctx, `Array.from(document.querySelectorAll("tr")).filter(r => r.textContent.includes("`+host+`")).map(r => r.innerText).join("\n")`)
	if !strings.Contains(row, webMarkup) {
		t.Errorf("/status: %s's row %q lacks its comment as text %q", host, row, webMarkup)
	}
	if n := jsValue[int](t, ctx, injected); n != 0 {
		t.Errorf("/status: %d elements made of the comment", n)
	}

	// A draft whose text holds markup: shown as text, ready to copy.
	got := alice.expect("outage draft koji "+webMarkup, "outage draft o")
	link := regexp.MustCompile(regexp.QuoteMeta(base) + `/drafts/[A-Za-z0-9_-]+`).FindString(got)
	if link == "" {
		t.Fatalf("outage draft: %q, want a link under %s/drafts/", got, base)
	}
	kept := func() int {
		t.Helper()
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(5000)")
		q.Set("mode", "ro")
		st, err := sql.Open("sqlite", "file:"+filepath.Join(sb.Dir, "bots", nick, "state", state.FileName)+"?"+q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var n int
		if err := st.QueryRow(`SELECT count(*) FROM samples WHERE check_name LIKE '%:' || ?`, sandbox.SharedMount).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Let the watcher (every 2 s) read /mnt/koji a few times.
	before := kept()
	for deadline := time.Now().Add(30 * time.Second); before < 4 && time.Now().Before(deadline); before = kept() {
		time.Sleep(500 * time.Millisecond)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	points := jsValue[int](t, ctx, `document.querySelectorAll("svg.chart circle.sample").length`)
	time.Sleep(500 * time.Millisecond) // a reading taken as the page was made is written through
	after := kept()
	if before < 4 || points < before || points > after {
		t.Errorf("the draft's chart has %d points; the watcher kept %d readings of %s before the page, %d after", points, before, sandbox.SharedMount, after)
	}
	if title := jsValue[string](t, ctx, `document.querySelector("svg.chart title").textContent`); !strings.Contains(title, fmt.Sprintf(": %d readings, last ", points)) {
		t.Errorf("the chart's title %q does not count its %d points", title, points)
	}
	body := jsValue[string](t, ctx, `document.getElementById("body").value`)
	if !strings.Contains(body, webMarkup) {
		t.Errorf("the draft's body lacks %q as text:\n%s", webMarkup, body)
	}
	if n := jsValue[int](t, ctx, injected); n != 0 {
		t.Errorf("the draft page: %d elements made of the draft's text", n)
	}
	t.Logf("%d points; %d readings kept before, %d after", points, before, after)
}
