package web

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands"
)

// getWith fetches path from s with the Accept header accept.
func getWith(t *testing.T, s *Server, path, accept string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+s.Addr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// hostileJob is a job whose every field a caller or a host could have
// chosen holds markup.
func hostileJob(token string) *commands.Job {
	j := commands.NewStandaloneJob("9", token, "<b>mallory</b>", "#fedora-admin",
		`cleanup <img src=x onerror=alert(1)>`, []string{`bld"><script>alert(2)</script>`},
		time.Date(2026, 11, 26, 3, 17, 5, 0, time.UTC))
	j.Step(`deleted </li><script>alert(3)</script>`)
	return j
}

func TestJobPageHTML(t *testing.T) {
	const token = "q3hx7k2mzt5ydw4nqa6vcr2lpe"
	s := start(t, Options{Jobs: fakeJobs{token: hostileJob(token)}})
	resp, body := getWith(t, s, "/jobs/"+token, browserAccept)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for _, bad := range []string{"<img", "<script>alert", "<b>mallory", "</li><script>"} {
		if strings.Contains(body, bad) {
			t.Errorf("page holds unescaped %q:\n%s", bad, body)
		}
	}
	for _, want := range []string{`<meta name="viewport"`, "<h1>", `<th scope="row">Owner</th>`, "&lt;b&gt;mallory&lt;/b&gt;",
		"&lt;img src=x onerror=alert(1)&gt;", `data-events="/jobs/` + token + `/events"`, `src="/static/live.js"`, ">running<"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Errorf("page has an inline script:\n%s", body)
	}

	// Plain text stays: asked for, or not asked for HTML.
	for _, c := range []struct{ path, accept string }{
		{"/jobs/" + token + "?format=text", browserAccept},
		{"/jobs/" + token, "text/plain"},
		{"/jobs/" + token, ""},
		{"/jobs/" + token, "*/*"},
	} {
		resp, body := getWith(t, s, c.path, c.accept)
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || !strings.HasPrefix(body, "job 9: cleanup <img") {
			t.Errorf("GET %s Accept %q: %q %q", c.path, c.accept, resp.Header.Get("Content-Type"), body)
		}
	}
	// The HTML page is served by token only, as the text.
	if resp, _ := getWith(t, s, "/jobs/9", browserAccept); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/jobs/9: %d", resp.StatusCode)
	}
	if resp, _ := getWith(t, s, "/jobs/9/events", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/jobs/9/events: %d", resp.StatusCode)
	}
}

func TestJobEvents(t *testing.T) {
	const token = "q3hx7k2mzt5ydw4nqa6vcr2lpe"
	j := commands.NewStandaloneJob("9", token, "alice", "#fedora-admin", "cleanup bld1", nil, time.Now())
	j.Step("stopped kojid")
	j.Step("two\nlines")
	s := start(t, Options{Jobs: fakeJobs{token: j}})
	go func() {
		time.Sleep(3 * JobEventsPoll)
		j.Step("freed 2 GiB")
		j.Finish("done")
	}()
	resp, body := getWith(t, s, "/jobs/"+token+"/events?from=1", "text/event-stream")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	want := "event: step\ndata: two\ndata: lines\n\nevent: step\ndata: freed 2 GiB\n\nevent: result\ndata: done\n\n"
	if body != want {
		t.Fatalf("events %q, want %q", body, want)
	}
}

func TestStaticAssets(t *testing.T) {
	s := start(t, Options{})
	for path, ct := range map[string]string{"/static/live.js": "text/javascript", "/static/style.css": "text/css"} {
		resp, body := getWith(t, s, path, "")
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) || body == "" {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	for _, path := range []string{"/static/job.html", "/static/", "/static/..%2fhtml.go"} {
		if resp, _ := getWith(t, s, path, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestWantsHTML(t *testing.T) {
	for accept, want := range map[string]bool{
		"": false, "*/*": false, "text/plain": false, "text/html": true, browserAccept: true,
		"text/plain, text/html": false, "application/json": false,
	} {
		r, _ := http.NewRequest("GET", "/jobs/x", nil)
		r.Header.Set("Accept", accept)
		if got := wantsHTML(r); got != want {
			t.Errorf("Accept %q: %v, want %v", accept, got, want)
		}
	}
}
