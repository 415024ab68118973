package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fedora-infra/kojibot/commands/outage"
	"github.com/fedora-infra/kojibot/commands/watch"
	"github.com/fedora-infra/kojibot/commands/watch/trend"
)

var chartNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// chartFixture is a draft store with one draft whose text holds markup,
// and samples of the shared mount: every 30 min of the last 24 h (49
// readings inside the span) and one older, which is not charted.
func chartFixture(t *testing.T) (*Server, outage.Draft) {
	t.Helper()
	store := outage.NewStore(0, nil)
	d, err := store.New(outage.Draft{Service: `Koji <img src=x onerror=alert(1)>`, Start: chartNow,
		Reason: "</textarea><script>alert(2)</script>", CreatedBy: "kojibot", Created: chartNow})
	if err != nil {
		t.Fatal(err)
	}
	samples := watch.NewMemorySamples(watch.SampleKeep, 30*time.Minute)
	check := "shared:ntap1:/mnt/koji"
	samples.Append(check, trend.Sample{At: chartNow.Add(-25 * time.Hour), Percent: 10})
	for i := 48; i >= 0; i-- {
		samples.Append(check, trend.Sample{At: chartNow.Add(-time.Duration(i) * 30 * time.Minute), Percent: 60 + float64(48-i)*0.8})
	}
	s := start(t, Options{Drafts: store, Samples: samples, Now: func() time.Time { return chartNow },
		ChartMounts: []Mount{{Check: check, Label: `shared mount /mnt/koji on <b>ntap1</b>`}}})
	return s, d
}

func TestNewChart(t *testing.T) {
	from := chartNow.Add(-ChartSpan)
	c := newChart("c1", "m", []trend.Sample{{At: from, Percent: 0}, {At: chartNow.Add(-12 * time.Hour), Percent: 50}, {At: chartNow, Percent: 100}}, from, chartNow)
	if len(c.Points) != 3 {
		t.Fatalf("%d points", len(c.Points))
	}
	bottom, top := c.Top+c.PlotH, c.Top
	want := []chartPoint{{X: c.Left, Y: bottom}, {X: c.Left + c.PlotW/2, Y: (top + bottom) / 2}, {X: c.Right, Y: top}}
	for i, p := range c.Points {
		if p.X != want[i].X || p.Y != want[i].Y {
			t.Errorf("point %d at %v,%v, want %v,%v", i, p.X, p.Y, want[i].X, want[i].Y)
		}
	}
	if c.Polyline != "40,190 315,100 590,10" {
		t.Errorf("polyline %q", c.Polyline)
	}
	if c.Last != "100.0% full at 12:00 UTC" {
		t.Errorf("last %q", c.Last)
	}
}

func TestDraftPageHTML(t *testing.T) {
	s, d := chartFixture(t)
	resp, body := getWith(t, s, d.Path(), browserAccept)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	if n := strings.Count(body, `<circle class="sample"`); n != 49 {
		t.Errorf("%d points, want 49 (one per reading of the last 24 h)", n)
	}
	for _, bad := range []string{"<img", "<script>", "</textarea><script>", "<b>ntap1"} {
		if strings.Contains(body, bad) {
			t.Errorf("page holds unescaped %q", bad)
		}
	}
	for _, want := range []string{`<label for="subject">`, `<label for="body">`, "&lt;/textarea&gt;&lt;script&gt;", `role="img"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	// The text stays for everyone else.
	expectText(t, s, d.Path(), http.StatusOK, "</textarea><script>alert(2)</script>")
	resp, _ = getWith(t, s, d.Path()+"?format=text", browserAccept)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("?format=text: %q", resp.Header.Get("Content-Type"))
	}
}

// TestBrowserDraftPage opens a draft page in Chromium: the chart has one
// point per reading, and the draft's markup is text in the form fields.
func TestBrowserDraftPage(t *testing.T) {
	s, d := chartFixture(t)
	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+s.Addr()+d.Path())); err != nil {
		t.Fatal(err)
	}
	points, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg.chart circle.sample").length`))
	if err != nil {
		t.Fatal(err)
	}
	if points != 49 {
		t.Fatalf("%d points on the chart, want 49", points)
	}
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("body").value`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "</textarea><script>alert(2)</script>") {
		t.Fatalf("body field %q", body)
	}
	injected, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("img, script, b").length`))
	if err != nil {
		t.Fatal(err)
	}
	if injected != 0 {
		t.Fatalf("%d elements injected by the draft's text", injected)
	}
}
