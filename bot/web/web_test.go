package web

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
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

// fakeDB answers Ping with err, or, when hang is set, not until hang is
// closed, whatever its context says (as a broken driver would).
type fakeDB struct {
	err  error
	hang chan struct{}
}

func (f *fakeDB) Ping(ctx context.Context) error {
	if f.hang != nil {
		<-f.hang
	}
	return f.err
}

// fakeJobs holds jobs by id.
type fakeJobs map[string]*commands.Job

func (f fakeJobs) Job(id string) (*commands.Job, bool) {
	j, ok := f[id]
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
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// get fetches path from s and returns the status, headers and body.
func get(t *testing.T, s *Server, path string) (int, http.Header, string) {
	t.Helper()
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
	irc := &fakeIRC{}
	db := &fakeDB{}
	s := start(t, Options{IRC: irc, DB: db})

	irc.up.Store(true)
	if body := expectText(t, s, "/healthz", http.StatusOK); body != "ok\n" {
		t.Fatalf("healthz body %q, want \"ok\\n\"", body)
	}

	irc.up.Store(false)
	body := expectText(t, s, "/healthz", http.StatusServiceUnavailable, "irc: not connected")
	if strings.Contains(body, "db:") {
		t.Fatalf("healthz blames the database: %q", body)
	}

	db.err = errors.New("kojidb: ping: Koji database unavailable: cannot connect\nsecond line")
	body = expectText(t, s, "/healthz", http.StatusServiceUnavailable,
		"irc: not connected\n", "db: kojidb: ping: Koji database unavailable: cannot connect\n")
	if strings.Contains(body, "second line") {
		t.Fatalf("healthz body spans the error's lines: %q", body)
	}

	irc.up.Store(true)
	body = expectText(t, s, "/healthz", http.StatusServiceUnavailable, "db: ")
	if strings.Contains(body, "irc") {
		t.Fatalf("healthz blames IRC: %q", body)
	}
}

func TestHealthzBoundedPing(t *testing.T) {
	irc := &fakeIRC{}
	irc.up.Store(true)
	hang := make(chan struct{})
	defer close(hang)
	s := start(t, Options{IRC: irc, DB: &fakeDB{hang: hang}})
	began := time.Now()
	expectText(t, s, "/healthz", http.StatusServiceUnavailable, "db: no answer within 2s")
	if took := time.Since(began); took > 8*time.Second {
		t.Fatalf("healthz took %v with a hung database", took)
	}
}

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
		MetricSSHDialDuration, MetricChecks, MetricFiring} {
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
	got := expectText(t, s, "/drafts/"+d.ID, http.StatusOK, "Subject: "+subject, "Reason for outage:", "- alice")
	if got != body {
		t.Fatalf("draft page differs from the rendered draft:\n%s", got)
	}
	expectText(t, s, "/drafts/o99", http.StatusNotFound)
	expectText(t, s, "/drafts/", http.StatusNotFound)
	expectText(t, s, "/drafts/o1/extra", http.StatusNotFound)
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
	got := expectText(t, s, "/drafts/"+d.ID, http.StatusOK)
	if want := "Subject: Unplanned outage of Koji\n\nStarts 2026-01-02 03:04 UTC.\n"; got != want {
		t.Fatalf("page %q, want %q", got, want)
	}
}

func TestJobs(t *testing.T) {
	j := &commands.Job{ID: "7", Owner: "alice", Command: "cleanup xenbuilder2", Hosts: []string{"xenbuilder2"},
		Started: time.Date(2026, 11, 26, 3, 17, 5, 0, time.FixedZone("EST", -5*3600))}
	s := start(t, Options{Jobs: fakeJobs{"7": j}})
	body := expectText(t, s, "/jobs/7", http.StatusOK)
	want := "job 7: cleanup xenbuilder2\nowner: alice\nhosts: xenbuilder2\nstarted: 2026-11-26 08:17:05 UTC\nresult: running\n\n"
	if body != want {
		t.Fatalf("job page %q, want %q", body, want)
	}
	expectText(t, s, "/jobs/8", http.StatusNotFound)

	// Without a job source, every job is unknown.
	s2 := start(t, Options{})
	expectText(t, s2, "/jobs/7", http.StatusNotFound)
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
