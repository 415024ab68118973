package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fedora-infra/kojibot/commands"
	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/commands/outage"
	"github.com/fedora-infra/kojibot/commands/watch"
	"github.com/fedora-infra/kojibot/commands/watch/trend"
)

// fakeHosts are Koji's build hosts as the database would give them.
type fakeHosts []kojidb.Host

func (f fakeHosts) Hosts(context.Context) ([]kojidb.Host, error) { return f, nil }

// statusFixture is a farm of three builders, one of them stale and one
// with a comment holding markup; a full shared mount filling at 1 %/h; a
// running job; an alert and a draft.
func statusFixture(t *testing.T) *Server {
	t.Helper()
	hosts := fakeHosts{
		{Name: "buildvm-x86-01.iad2.fedoraproject.org", Enabled: true, Ready: true, Capacity: 10, TaskLoad: 3.5, LastCheckin: chartNow, CheckinAge: 20 * time.Second},
		{Name: "buildvm-x86-02.iad2.fedoraproject.org", Enabled: true, Ready: false, Capacity: 10, LastCheckin: chartNow.Add(-2 * time.Hour), CheckinAge: 2 * time.Hour},
		{Name: "bvm-ppc64le-03", Enabled: false, Capacity: 4, Comment: `<img src=x onerror=alert(1)> disk swap`, LastCheckin: chartNow, CheckinAge: time.Minute},
	}
	samples := watch.NewMemorySamples(watch.SampleKeep, time.Hour)
	for i := 12; i >= 0; i-- {
		samples.Append("shared:ntap1:/mnt/koji", trend.Sample{At: chartNow.Add(-time.Duration(i) * time.Hour), Percent: 85 + float64(12-i)})
		samples.Append("disk:buildvm-x86-01.iad2.fedoraproject.org:/var/lib/mock", trend.Sample{At: chartNow.Add(-time.Duration(i) * time.Hour), Percent: 40})
	}
	job := commands.NewStandaloneJob("3", "q3hx7k2mzt5ydw4nqa6vcr2lpe", "alice", "#fedora-admin", "cleanup buildvm-x86-01.iad2.fedoraproject.org", nil, chartNow)
	job.Step("deleted 120 buildroots, 41 GiB")
	priv := commands.NewStandaloneJob("4", "b7fzx2kq4mwn6tyc3vdr5hale2", "alice", "", "reboot secret-host", nil, chartNow)
	drafts := outage.NewStore(0, nil)
	if _, err := drafts.New(outage.Draft{Service: "Koji build system", Start: chartNow, CreatedBy: "kojibot", Created: chartNow}); err != nil {
		t.Fatal(err)
	}
	return start(t, Options{StatusPage: true, Samples: samples, Drafts: drafts, Now: func() time.Time { return chartNow },
		Status: StatusSource{Hosts: hosts, StaleAfter: 10 * time.Minute, FullPercent: 95,
			Mounts: []Mount{
				{Check: "disk:buildvm-x86-01.iad2.fedoraproject.org:/var/lib/mock", Label: "/var/lib/mock on buildvm-x86-01.iad2.fedoraproject.org"},
				{Check: "shared:ntap1:/mnt/koji", Label: "shared mount /mnt/koji on ntap1"},
			},
			Firing: func() []string {
				return []string{"shared:ntap1:/mnt/koji", "stale:buildvm-x86-02.iad2.fedoraproject.org"}
			},
			Running: func() []*commands.Job { return []*commands.Job{job, priv} }}})
}

func TestStatusPage(t *testing.T) {
	s := statusFixture(t)
	resp, body := getWith(t, s, "/status", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	for _, want := range []string{`<tr class="stale"><th scope="row">buildvm-x86-02.iad2.fedoraproject.org</th>`, "97.0%", "<strong>full</strong>", "&#43;1.0%/h, full in about 3 h",
		"deleted 120 buildroots, 41 GiB", `href="/jobs/q3hx7k2mzt5ydw4nqa6vcr2lpe"`, "&lt;img src=x onerror=alert(1)&gt; disk swap",
		"stale:buildvm-x86-02.iad2.fedoraproject.org", "Koji build system", "3.5 / 10.0", `<meta name="viewport"`} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %q:\n%s", want, body)
		}
	}
	for _, bad := range []string{"<img", "secret-host", `<tr class="stale"><th scope="row">buildvm-x86-01`} {
		if strings.Contains(body, bad) {
			t.Errorf("status page holds %q", bad)
		}
	}
	// Off unless asked for.
	off := start(t, Options{})
	if resp, _ := getWith(t, off, "/status", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/status without status_page: %d", resp.StatusCode)
	}
}

// TestBrowserStatusPage opens /status in Chromium at a phone's width: the
// stale builder and the full mount are marked, the comment's markup is
// text. (The README's screenshot is the sandbox's: make screenshot.)
func TestBrowserStatusPage(t *testing.T) {
	s := statusFixture(t)
	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+s.Addr()+"/status")); err != nil {
		t.Fatal(err)
	}
	stale, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("tr.stale th")))
	if err != nil {
		t.Fatal(err)
	}
	if stale != "buildvm-x86-02.iad2.fedoraproject.org" {
		t.Fatalf("stale row %q", stale)
	}
	full, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("tr.full th")))
	if err != nil {
		t.Fatal(err)
	}
	if full != "shared mount /mnt/koji on ntap1" {
		t.Fatalf("full row %q", full)
	}
	imgs, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("img").length`))
	if err != nil {
		t.Fatal(err)
	}
	comment, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if imgs != 0 || !strings.Contains(comment, "<img src=x onerror=alert(1)> disk swap") {
		t.Fatalf("%d img elements; page text:\n%s", imgs, comment)
	}
}

// TestPagesNotStored: /status, the job and draft pages (HTML and plain
// text) and their event streams are answered with Cache-Control:
// no-store, so that no proxy or browser cache ever shows a stale farm.
func TestPagesNotStored(t *testing.T) {
	const jobToken = "q3hx7k2mzt5ydw4nqa6vcr2lpe"
	drafts := outage.NewStore(0, nil)
	d, err := drafts.New(outage.Draft{Service: "Koji build system", Start: chartNow, CreatedBy: "kojibot", Created: chartNow})
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, Options{StatusPage: true, Drafts: drafts, Jobs: fakeJobs{jobToken: hostileJob(jobToken)},
		Status: StatusSource{Hosts: fakeHosts{{Name: "bld1", Enabled: true}}}})
	for _, page := range []struct{ path, accept string }{
		{"/status", browserAccept}, {"/status", ""},
		{"/jobs/" + jobToken, browserAccept}, {"/jobs/" + jobToken, "text/plain"}, {"/jobs/" + jobToken + "?format=text", ""},
		{d.Path(), browserAccept}, {d.Path(), "text/plain"},
	} {
		resp, _ := getWith(t, s, page.path, page.accept)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s (Accept %q): %d, Cache-Control %q", page.path, page.accept, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	}
	// The event streams: their headers, then hang up.
	for _, path := range []string{"/status/events", "/jobs/" + jobToken + "/events"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Addr()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: %d, Cache-Control %q", path, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
		cancel()
		resp.Body.Close()
	}
}

// TestStatusPageNewestDrafts: the page lists the newest drafts, newest
// first, StatusDrafts of them.
func TestStatusPageNewestDrafts(t *testing.T) {
	drafts := outage.NewStore(0, nil)
	for i := range StatusDrafts + 2 {
		if _, err := drafts.New(outage.Draft{Service: fmt.Sprintf("service %d", i+1), Start: chartNow, CreatedBy: "kojibot", Created: chartNow}); err != nil {
			t.Fatal(err)
		}
	}
	s := start(t, Options{StatusPage: true, Drafts: drafts, Now: func() time.Time { return chartNow }, Status: StatusSource{Hosts: fakeHosts{}}})
	_, body := getWith(t, s, "/status", "")
	var order []int
	for _, id := range []string{">o7<", ">o6<", ">o5<", ">o4<", ">o3<"} {
		order = append(order, strings.Index(body, id))
	}
	if !slices.IsSorted(order) || order[0] < 0 {
		t.Errorf("drafts not newest first (positions of o7..o3: %v):\n%s", order, body)
	}
	for _, old := range []string{">o2<", ">o1<"} {
		if strings.Contains(body, old) {
			t.Errorf("status page lists the old draft %s", old)
		}
	}
}

// countingHosts counts the reads of Koji's hosts.
type countingHosts struct {
	fakeHosts
	reads atomic.Int64
}

func (c *countingHosts) Hosts(ctx context.Context) ([]kojidb.Host, error) {
	c.reads.Add(1)
	time.Sleep(20 * time.Millisecond) // a read takes a moment: others come meanwhile
	return c.fakeHosts.Hosts(ctx)
}

// TestStatusPageSharedRead: twenty viewers at once cost Koji one read of
// its hosts, not twenty; a viewer after half a StatusPoll gets a new one.
func TestStatusPageSharedRead(t *testing.T) {
	hosts := &countingHosts{fakeHosts: fakeHosts{{Name: "ppc3", Enabled: true, Capacity: 2}}}
	s := start(t, Options{StatusPage: true, Status: StatusSource{Hosts: hosts}})
	s.statusPoll = time.Minute
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, body := getWith(t, s, "/status", ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, "ppc3") {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	if n := hosts.reads.Load(); n != 1 {
		t.Errorf("20 viewers read the hosts %d times, want 1", n)
	}
	s.page.Lock()
	s.page.at = time.Now().Add(-time.Minute) // half a StatusPoll later
	s.page.Unlock()
	getWith(t, s, "/status", "")
	if n := hosts.reads.Load(); n != 2 {
		t.Errorf("a viewer after half a StatusPoll: %d reads, want 2", n)
	}
}

// awayDrafts is a drafts store that cannot be read.
type awayDrafts struct{ outage.Drafts }

func (awayDrafts) ByToken(string) (outage.Draft, bool, error) {
	return outage.Draft{}, false, errors.New("the state store is away")
}
func (awayDrafts) List() ([]outage.Draft, error) { return nil, errors.New("the state store is away") }

// TestDraftsStoreAway: drafts that cannot be read are a 503 and a line on
// /status, never a 404 or "None".
func TestDraftsStoreAway(t *testing.T) {
	s := start(t, Options{StatusPage: true, Drafts: awayDrafts{}, Status: StatusSource{Hosts: fakeHosts{}}})
	if resp, body := getWith(t, s, "/drafts/q3hx7k2mzt5ydw4nqa6vcr2lpe", ""); resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "away") {
		t.Errorf("/drafts/<token> with the store away: %d %q", resp.StatusCode, body)
	}
	if _, body := getWith(t, s, "/status", ""); !strings.Contains(body, "The outage drafts cannot be read now.") {
		t.Errorf("/status with the drafts' store away:\n%s", body)
	}
}
