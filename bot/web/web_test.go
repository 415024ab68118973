package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fedora-infra/kojibot/commands"
	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/commands/outage"
	"github.com/fedora-infra/kojibot/commands/watch"
)

// The real collaborators fit the interfaces.
var (
	_ Pinger         = (*kojidb.DB)(nil)
	_ JobSource      = (*commands.Dispatcher)(nil)
	_ watch.Observer = (*Metrics)(nil)
)

// fakeIRC is the bot's connection state.
type fakeIRC struct{ up atomic.Bool }

func (f *fakeIRC) Connected() bool { return f.up.Load() }

// fakeDB answers Ping with its error, or, when hang is set, not until
// hang is closed, whatever its context says (as a broken driver would). It
// counts the pings.
type fakeDB struct {
	mu    sync.Mutex
	err   error
	hang  chan struct{}
	pings int
}

func (f *fakeDB) Ping(ctx context.Context) error {
	f.mu.Lock()
	f.pings++
	hang := f.hang
	f.mu.Unlock()
	if hang != nil {
		<-hang
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *fakeDB) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeDB) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pings
}

// fakeJobs holds jobs by token.
type fakeJobs map[string]*commands.Job

func (f fakeJobs) JobByToken(token string) (*commands.Job, bool) {
	j, ok := f[token]
	return j, ok
}

// start runs a Server for opts on a free loopback port.
func start(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.Listen = "127.0.0.1:0"
	s := New(opts)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Above the 5 s a server waits for a connection that has sent no
		// request yet (Chromium opens some ahead of time).
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// get fetches path from s and returns the status, headers and body: over
// HTTP when s is listening, else from its handler directly (in a synctest
// bubble, whose clock a socket would hold still).
func get(t *testing.T, s *Server, path string) (int, http.Header, string) {
	t.Helper()
	if s.Addr() == "" {
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Header(), rec.Body.String()
	}
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get("http://" + s.Addr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// expectText fails unless the answer is code with a plain-text body that
// contains every one of want.
func expectText(t *testing.T, s *Server, path string, code int, want ...string) string {
	t.Helper()
	got, h, body := get(t, s, path)
	if got != code {
		t.Fatalf("GET %s: %d, want %d; body %q", path, got, code, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET %s: no X-Content-Type-Options: nosniff", path)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Fatalf("GET %s: body lacks %q:\n%s", path, w, body)
		}
	}
	return body
}

func TestHealthz(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		irc := &fakeIRC{}
		db := &fakeDB{}
		var logged strings.Builder
		var logMu sync.Mutex
		log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
			logMu.Lock()
			defer logMu.Unlock()
			return logged.Write(p)
		}), nil))
		s := New(Options{IRC: irc, DB: db, Log: log})

		irc.up.Store(true)
		if body := expectText(t, s, "/healthz", http.StatusOK); body != "ok\n" {
			t.Fatalf("healthz body %q, want \"ok\\n\"", body)
		}

		irc.up.Store(false)
		if body := expectText(t, s, "/healthz", http.StatusServiceUnavailable); body != "irc: disconnected\n" {
			t.Fatalf("healthz body %q, want only \"irc: disconnected\"", body)
		}

		// The database fails with a text that names its address, user and
		// password: the page names the component only, the log has the rest.
		db.setErr(errors.New("kojidb: ping: Koji database unavailable: cannot connect: dial tcp 192.0.2.7:5432 (postgres://koji:s3cret@db3/koji): connect: connection refused\nsecond line"))
		time.Sleep(HealthCacheTTL)
		if body := expectText(t, s, "/healthz", http.StatusServiceUnavailable); body != "irc: disconnected\nkoji-db: down\n" {
			t.Fatalf("healthz body %q, want \"irc: disconnected\\nkoji-db: down\\n\"", body)
		}
		logMu.Lock()
		if !strings.Contains(logged.String(), "192.0.2.7:5432") {
			t.Errorf("the log lacks the database's error:\n%s", logged.String())
		}
		logMu.Unlock()

		irc.up.Store(true)
		if body := expectText(t, s, "/healthz", http.StatusServiceUnavailable); body != "koji-db: down\n" {
			t.Fatalf("healthz body %q, want only \"koji-db: down\"", body)
		}
		db.setErr(nil)
		time.Sleep(HealthCacheTTL)
		expectText(t, s, "/healthz", http.StatusOK, "ok")
	})
}

// TestHealthzCachesPing: a flood of /healthz pings the database once per
// HealthCacheTTL, not once a request.
func TestHealthzCachesPing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		irc := &fakeIRC{}
		irc.up.Store(true)
		db := &fakeDB{}
		s := New(Options{IRC: irc, DB: db})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 25 {
					if code, _, _ := get(t, s, "/healthz"); code != http.StatusOK {
						t.Errorf("healthz %d", code)
					}
				}
			})
		}
		wg.Wait()
		if n := db.count(); n != 1 {
			t.Fatalf("100 /healthz within the cache's life pinged %d times, want 1", n)
		}
		time.Sleep(HealthCacheTTL - time.Millisecond)
		expectText(t, s, "/healthz", http.StatusOK)
		if n := db.count(); n != 1 {
			t.Fatalf("%d pings before the cache expired, want 1", n)
		}
		db.setErr(errors.New("down"))
		time.Sleep(time.Millisecond)
		expectText(t, s, "/healthz", http.StatusServiceUnavailable, "koji-db: down")
		expectText(t, s, "/healthz", http.StatusServiceUnavailable, "koji-db: down")
		if n := db.count(); n != 2 {
			t.Fatalf("%d pings after the cache expired once, want 2", n)
		}
	})
}

func TestHealthzBoundedPing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		irc := &fakeIRC{}
		irc.up.Store(true)
		hang := make(chan struct{})
		defer close(hang)
		db := &fakeDB{hang: hang}
		s := New(Options{IRC: irc, DB: db})
		began := time.Now()
		if body := expectText(t, s, "/healthz", http.StatusServiceUnavailable); body != "koji-db: down\n" {
			t.Fatalf("healthz body %q with a hung database", body)
		}
		if took := time.Since(began); took > 8*time.Second {
			t.Fatalf("healthz took %v with a hung database", took)
		}
		// The hung Ping is not called again while it has not returned.
		time.Sleep(HealthCacheTTL)
		expectText(t, s, "/healthz", http.StatusServiceUnavailable, "koji-db: down")
		if n := db.count(); n != 1 {
			t.Fatalf("%d Ping calls while the first one hangs, want 1", n)
		}
	})
}

// writerFunc is an io.Writer.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.CommandDone("capacity", "ok", 1500*time.Millisecond)
	m.CommandDone("capacity", "denied", time.Millisecond)
	m.SetIRCConnected(true)
	m.SSHDial("xenbuilder2", 30*time.Millisecond, nil)
	m.SSHDial("xenbuilder3", time.Second, errors.New("refused"))
	m.CheckRan("disk", "failing")
	m.SetFiring(3)
	m.DiskFallback("ppc3", "no-sftp-subsystem")
	m.DiskFallback("ppc3", "no-sftp-subsystem")

	s := start(t, Options{Gatherer: reg})
	code, h, body := get(t, s, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("/metrics: no nosniff")
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	for _, name := range []string{MetricCommands, MetricCommandDuration, MetricIRCConnected, MetricSSHDials,
		MetricSSHDialDuration, MetricChecks, MetricFiring, MetricDiskFallback} {
		if families[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		f := families[name]
		if f == nil {
			t.Fatalf("no %s", name)
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{MetricCommands, map[string]string{"command": "capacity", "result": "ok"}, 1},
		{MetricCommands, map[string]string{"command": "capacity", "result": "denied"}, 1},
		{MetricCommandDuration, map[string]string{"command": "capacity"}, 2},
		{MetricIRCConnected, nil, 1},
		{MetricSSHDials, map[string]string{"host": "xenbuilder3", "result": "error"}, 1},
		{MetricSSHDials, map[string]string{"host": "xenbuilder2", "result": "ok"}, 1},
		{MetricSSHDialDuration, nil, 2},
		{MetricChecks, map[string]string{"kind": "disk", "result": "failing"}, 1},
		{MetricFiring, nil, 3},
		{MetricDiskFallback, map[string]string{"host": "ppc3", "reason": "no-sftp-subsystem"}, 2},
	} {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	// A nil *Metrics is a no-op.
	var none *Metrics
	none.CommandDone("x", "ok", time.Second)
	none.SetIRCConnected(false)
	none.SSHDial("h", 0, nil)
	none.CheckRan("disk", "ok")
	none.SetFiring(1)
}

func TestDrafts(t *testing.T) {
	store := outage.NewStore(0, nil)
	start0 := time.Date(2026, 11, 26, 3, 17, 0, 0, time.UTC)
	d, err := store.New(outage.ForFullMount("/mnt/koji", 95, "koji-hub", start0, []string{"alice"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, Options{Drafts: store})
	subject, body, err := outage.Render(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Token) < 26 {
		t.Fatalf("draft token %q", d.Token)
	}
	got := expectText(t, s, d.Path(), http.StatusOK, "Subject: "+subject, "Reason for outage:", "- alice")
	if got != body {
		t.Fatalf("draft page differs from the rendered draft:\n%s", got)
	}
	// The short id, which anyone can guess, serves nothing.
	expectText(t, s, "/drafts/"+d.ID, http.StatusNotFound)
	expectText(t, s, "/drafts/O1", http.StatusNotFound)
	expectText(t, s, "/drafts/"+strings.ToUpper(d.Token), http.StatusNotFound)
	expectText(t, s, "/drafts/"+d.Token[:len(d.Token)-1], http.StatusNotFound)
	expectText(t, s, "/drafts/o99", http.StatusNotFound)
	expectText(t, s, "/drafts/", http.StatusNotFound)
	expectText(t, s, d.Path()+"/extra", http.StatusNotFound)
}

func TestDraftCustomTemplateWithoutSubjectLine(t *testing.T) {
	// A replacement template whose body does not repeat the subject: the
	// page puts it first.
	path := t.TempDir() + "/outage.tmpl"
	tmpl := `{{define "subject"}}{{.Kind}} outage of {{.Service}}{{end}}{{define "body"}}Starts {{.StartUTC}} UTC.
{{end}}`
	if err := writeFile(path, tmpl); err != nil {
		t.Fatal(err)
	}
	tm, err := outage.LoadTemplate(path)
	if err != nil {
		t.Fatal(err)
	}
	store := outage.NewStore(0, nil)
	d, err := store.New(outage.Draft{Service: "Koji", Start: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, Options{Drafts: store, Template: tm})
	got := expectText(t, s, d.Path(), http.StatusOK)
	if want := "Subject: Unplanned outage of Koji\n\nStarts 2026-01-02 03:04 UTC.\n"; got != want {
		t.Fatalf("page %q, want %q", got, want)
	}
}

func TestJobs(t *testing.T) {
	const token, privToken = "q3hx7k2mzt5ydw4nqa6vcr2lpe", "b7fzx2kq4mwn6tyc3vdr5hale2"
	j := &commands.Job{ID: "7", Token: token, Owner: "alice", Place: "#fedora-admin", Command: "cleanup xenbuilder2", Hosts: []string{"xenbuilder2"},
		Started: time.Date(2026, 11, 26, 3, 17, 5, 0, time.FixedZone("EST", -5*3600))}
	// A job started in a private message.
	priv := &commands.Job{ID: "8", Token: privToken, Owner: "alice", Place: "", Command: "reboot xenbuilder3",
		Started: time.Date(2026, 11, 26, 3, 17, 5, 0, time.UTC)}
	jobs := fakeJobs{token: j, privToken: priv, "7": j, "8": priv}
	s := start(t, Options{Jobs: jobs})
	body := expectText(t, s, "/jobs/"+token, http.StatusOK)
	want := "job 7: cleanup xenbuilder2\nowner: alice\nhosts: xenbuilder2\nstarted: 2026-11-26 08:17:05 UTC\nresult: running\n\n"
	if body != want {
		t.Fatalf("job page %q, want %q", body, want)
	}
	// Served by token only: even a source that would answer to the short
	// id is not asked with a path that is not the job's token.
	expectText(t, s, "/jobs/7", http.StatusNotFound)
	expectText(t, s, "/jobs/8", http.StatusNotFound)
	expectText(t, s, "/jobs/"+privToken, http.StatusNotFound)
	expectText(t, s, "/jobs/"+strings.ToUpper(token), http.StatusNotFound)

	// Without a job source, every job is unknown.
	s2 := start(t, Options{})
	expectText(t, s2, "/jobs/"+token, http.StatusNotFound)
	expectText(t, s2, "/drafts/o1", http.StatusNotFound)
}

func TestReplies(t *testing.T) {
	s := start(t, Options{PublicURL: "https://kojibot.example.org/", MaxReplies: 3})
	long := strings.Repeat("ppc3.fedora.redhat.com capacity 4 → 2\n", 50)
	url, ok := s.Store(long)
	const prefix = "https://kojibot.example.org/replies/"
	if !ok || !strings.HasPrefix(url, prefix) || len(url) < len(prefix)+20 {
		t.Fatalf("Store = %q, %v", url, ok)
	}
	id := strings.TrimPrefix(url, prefix)
	if got := expectText(t, s, "/replies/"+id, http.StatusOK); got != long {
		t.Fatalf("reply page differs from the stored text")
	}
	url2, _ := s.Store("second")
	if url2 == url {
		t.Fatalf("two texts stored under one id %q", url)
	}
	expectText(t, s, "/replies/"+strings.TrimPrefix(url2, prefix), http.StatusOK, "second")
	expectText(t, s, "/replies/nosuchid", http.StatusNotFound)

	// Only the last MaxReplies are kept.
	s.Store("third")
	s.Store("fourth")
	expectText(t, s, "/replies/"+id, http.StatusNotFound)
	expectText(t, s, "/replies/"+strings.TrimPrefix(url2, prefix), http.StatusOK, "second")

	// A text over MaxReplyBytes is cut on a rune boundary, saying so.
	huge := strings.Repeat("é", MaxReplyBytes)
	url3, ok := s.Store(huge)
	if !ok {
		t.Fatal("Store(huge) refused")
	}
	got := expectText(t, s, "/replies/"+strings.TrimPrefix(url3, prefix), http.StatusOK, "(cut at ")
	if !strings.HasPrefix(got, "éé") || len(got) > MaxReplyBytes+100 || strings.ContainsRune(got, '\uFFFD') {
		t.Fatalf("cut reply: %d bytes, starts %q", len(got), got[:10])
	}
}

func TestStoreWithoutPublicURL(t *testing.T) {
	s := New(Options{Listen: "127.0.0.1:0"})
	if url, ok := s.Store("a long reply"); ok || url != "" {
		t.Fatalf("Store without public_url = %q, %v; want \"\", false", url, ok)
	}
}

func TestServesNothingElse(t *testing.T) {
	irc := &fakeIRC{}
	irc.up.Store(true)
	s := start(t, Options{IRC: irc, PublicURL: "http://x"})
	for _, path := range []string{"/", "/replies/", "/jobs/", "/index.html", "/healthz/x", "/debug/pprof/", "/etc/passwd"} {
		expectText(t, s, path, http.StatusNotFound)
	}
	// A path that cleans to another is redirected, never served as such.
	if code, _, _ := get(t, s, "/drafts/../healthz"); code == http.StatusOK {
		t.Fatalf("/drafts/../healthz served directly")
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+s.Addr()+"/healthz", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /healthz: %d, want 405", resp.StatusCode)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("POST /healthz: no nosniff")
	}
}

func TestStartPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := New(Options{Listen: ln.Addr().String()})
	if err := s.Start(); err == nil {
		s.Shutdown(context.Background())
		t.Fatalf("Start on a taken port %s succeeded", ln.Addr())
	}
	if s.Addr() != "" {
		t.Fatalf("Addr after a failed Start = %q", s.Addr())
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown before a successful Start: %v", err)
	}

	s2 := start(t, Options{})
	if err := s2.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
}

func TestShutdownStopsListening(t *testing.T) {
	s := New(Options{Listen: "127.0.0.1:0"})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Shutdown", addr)
	}
}

func writeFile(path, text string) error {
	return os.WriteFile(path, []byte(text), 0o644)
}
