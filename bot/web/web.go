// Package web is kojibot's HTTP side (http.listen): /healthz for the
// service manager, /metrics for Prometheus, and the pages the
// bot links to from IRC: outage drafts, job logs (HTML for a browser,
// live over Server-Sent Events; plain text otherwise), long replies, and,
// with http.status_page, /status: the farm on one HTML page. It serves
// nothing else, and no page changes anything.
package web

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fedora-infra/kojibot/commands"
	"github.com/fedora-infra/kojibot/commands/outage"
	"github.com/fedora-infra/kojibot/commands/watch"
)

// Defaults and bounds of the server.
const (
	// DefaultMaxReplies is how many long replies Store keeps.
	DefaultMaxReplies = 200
	// MaxReplyBytes bounds one stored reply; a longer one is cut, saying so.
	MaxReplyBytes = 1 << 20
	// HealthTimeout bounds the database ping of /healthz.
	HealthTimeout = 2 * time.Second
	// HealthCacheTTL is how long /healthz reuses its last database ping,
	// so that a flood of /healthz cannot load the Koji database: at most
	// one ping runs at a time, and at most one starts per HealthCacheTTL.
	HealthCacheTTL = time.Second
)

// IRCStatus tells whether the bot is on the IRC network, as *irc.Bot does.
type IRCStatus interface {
	Connected() bool
}

// Pinger checks that the Koji database or hub answers, as *kojidb.DB and
// *kojiapi.Client do.
type Pinger interface {
	Ping(ctx context.Context) error
}

// JobSource finds a job by its random token (never by its short id, which
// is easy to guess), as *commands.Dispatcher does.
type JobSource interface {
	JobByToken(token string) (*commands.Job, bool)
}

// Options configure a Server. Every collaborator may be nil: /healthz then
// skips its check, and /drafts, /jobs or /replies answer 404.
type Options struct {
	// Listen is http.listen, host:port.
	Listen string
	// PublicURL is http.public_url, the base of the links Store returns.
	PublicURL string
	// IRC is checked by /healthz; nil when IRC is not configured.
	IRC IRCStatus
	// Matrix is checked by /healthz; nil when Matrix is not configured.
	Matrix IRCStatus
	// DB is pinged by /healthz, for at most HealthTimeout, at most once
	// per HealthCacheTTL.
	DB Pinger
	// Hub (koji.hub.url) is pinged by /healthz the same way.
	Hub Pinger
	// Messaging (messaging.url) is named by /healthz when its broker is
	// unreachable ("messaging: down"); nil: no messaging.
	Messaging MessagingStatus
	// Jobs serves /jobs/<token>; a job started in a private message is
	// never served.
	Jobs JobSource
	// Drafts serves /drafts/<token>, rendered with Template (nil: the
	// built-in one).
	Drafts   outage.Drafts
	Template *outage.Template
	// Samples are the watcher's mount readings; a draft's HTML page charts
	// ChartMounts' fill from them (nil: no charts).
	Samples     watch.Samples
	ChartMounts []Mount
	// StatusPage serves /status (http.status_page), from Status.
	StatusPage bool
	Status     StatusSource
	// Now is the clock of the charts (nil: time.Now).
	Now func() time.Time
	// Gatherer is what /metrics exposes; nil means
	// prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// MaxReplies is how many long replies Store keeps (0:
	// DefaultMaxReplies).
	MaxReplies int
	// Log receives the server's log (nil: discarded).
	Log *slog.Logger
}

// Server is the HTTP server. Its lifecycle is New, Start, Shutdown.
type Server struct {
	opts    Options
	log     *slog.Logger
	handler http.Handler
	replies *replies
	health  dbHealth // the database's pings
	hub     dbHealth // the hub's pings
	// statusPoll is how often /status/events looks for a change
	// (StatusPoll; shorter in tests).
	statusPoll time.Duration
	// page is what /status showed last, shared by every viewer for half
	// a StatusPoll: however many browsers watch, Koji is asked for its
	// hosts at most twice per StatusPoll.
	page struct {
		sync.Mutex
		at   time.Time
		data statusPage
	}

	mu     sync.Mutex
	srv    *http.Server
	ln     net.Listener
	served chan struct{} // closed when Serve has returned
}

// New returns a Server for opts; it listens once Start is called.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Template == nil {
		opts.Template = outage.Builtin()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Gatherer == nil {
		opts.Gatherer = prometheus.DefaultGatherer
	}
	if opts.MaxReplies <= 0 {
		opts.MaxReplies = DefaultMaxReplies
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	s := &Server{
		opts:       opts,
		log:        opts.Log.With("component", "http"),
		replies:    newReplies(opts.MaxReplies),
		statusPoll: StatusPoll,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /drafts/{token}", s.draft)
	mux.HandleFunc("GET /jobs/{token}", s.job)
	mux.HandleFunc("GET /jobs/{token}/events", s.jobEvents)
	mux.Handle("GET /static/{file}", static())
	mux.HandleFunc("GET /replies/{id}", s.reply)
	if opts.StatusPage {
		mux.HandleFunc("GET /status", s.status)
		mux.HandleFunc("GET /status/events", s.statusEvents)
	}
	// Anything else: the mux's own plain-text 404, or 405 for another
	// method on a served path.
	s.handler = secure(mux)
	return s
}

// secure sets the headers every answer carries: no content sniffing, no
// caching (no-store: a proxy or a browser must never show a stale farm,
// job or draft), no framing.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// Start listens on Options.Listen and serves in the background. It
// returns the error when the address cannot be listened on (e.g. the port
// is taken), and an error when called twice.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("web: server already started")
	}
	if s.opts.Listen == "" {
		return errors.New("web: no http.listen address")
	}
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("web: listen on %s: %w", s.opts.Listen, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.served = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}(s.srv, s.served)
	s.log.Info("http server listening", "addr", ln.Addr().String(), "public_url", s.opts.PublicURL)
	return nil
}

// Addr returns the address listened on ("127.0.0.1:9090"), or "" before
// Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops listening and waits, until ctx ends, for the requests in
// flight. It is a no-op before Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, served := s.srv, s.served
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		// The requests in flight did not end in time: cut them.
		_ = srv.Close()
	}
	<-served
	return err
}

// Store keeps text, a reply too long for the channel, and returns the URL
// that serves it: <PublicURL>/replies/<id>, under a random id. The last
// MaxReplies texts are kept. Without a PublicURL nothing is stored and ok
// is false. It is (*irc.Bot)'s WithLongOutput function, and safe for
// concurrent use.
func (s *Server) Store(text string) (url string, ok bool) {
	if s.opts.PublicURL == "" {
		return "", false
	}
	if len(text) > MaxReplyBytes {
		text = cutUTF8(text, MaxReplyBytes) + "\n… (cut at " + fmt.Sprint(MaxReplyBytes) + " bytes)\n"
	}
	id := s.replies.add(text)
	return s.opts.PublicURL + "/replies/" + id, true
}

// healthz answers 200 "ok" when the bot is on every configured chat
// network and the Koji database answers, else 503 with one line per failing
// component ("irc: disconnected", "matrix: disconnected", "koji-db: down",
// "koji-hub: down"). The message bus is named ("messaging: down") but
// fails nothing: commands work without it and its messages wait in the
// outbox, so a bot whose only trouble is the broker answers 200 "ok" with
// that line after it, and no probe restarts it for that. It never shows
// an error's text, which can carry addresses, paths or a DSN: that goes
// to the log.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	var problems []string
	if s.opts.IRC != nil && !s.opts.IRC.Connected() {
		problems = append(problems, "irc: disconnected")
	}
	if s.opts.Matrix != nil && !s.opts.Matrix.Connected() {
		problems = append(problems, "matrix: disconnected")
	}
	if s.opts.DB != nil {
		if err := s.pingErr(r.Context(), &s.health, s.opts.DB, "the Koji database"); err != nil {
			problems = append(problems, "koji-db: down")
		}
	}
	if s.opts.Hub != nil {
		if err := s.pingErr(r.Context(), &s.hub, s.opts.Hub, "the Koji hub"); err != nil {
			problems = append(problems, "koji-hub: down")
		}
	}
	var degraded []string
	if s.opts.Messaging != nil {
		if up, _ := s.opts.Messaging.Up(); !up {
			degraded = append(degraded, "messaging: down")
		}
	}
	if len(problems) > 0 {
		writeText(w, http.StatusServiceUnavailable, strings.Join(append(problems, degraded...), "\n")+"\n")
		return
	}
	writeText(w, http.StatusOK, strings.Join(append([]string{"ok"}, degraded...), "\n")+"\n")
}

// dbHealth is the last ping of /healthz of one component (the database,
// the hub) and the one in flight.
type dbHealth struct {
	mu       sync.Mutex
	at       time.Time     // when the last ping ended; zero: never
	err      error         // its outcome
	wait     chan struct{} // closed when the ping in flight ends; nil: none
	inDriver bool          // a Ping call has not returned yet
}

// pingErr returns the outcome of a ping of p (what, for the log) at most
// HealthCacheTTL old, kept in h, pinging when there is none: one ping at a
// time, shared by every request that waits for it. A request that ends
// first gets its context's error.
func (s *Server) pingErr(ctx context.Context, h *dbHealth, p Pinger, what string) error {
	h.mu.Lock()
	if !h.at.IsZero() && time.Now().Sub(h.at) < HealthCacheTTL {
		err := h.err
		h.mu.Unlock()
		return err
	}
	if h.wait == nil {
		h.wait = make(chan struct{})
		go s.pingOnce(h, p, what, h.wait)
	}
	wait := h.wait
	h.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
		return ctx.Err()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// pingOnce pings p, records the outcome in h and closes done. It gives up
// after HealthTimeout even if Ping does not heed its context; a Ping that
// has not returned is not called again until it does. A failure is logged
// in full (the reply names only the component).
func (s *Server) pingOnce(h *dbHealth, p Pinger, what string, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), HealthTimeout)
	defer cancel()
	h.mu.Lock()
	stuck := h.inDriver // then the flag is the running Ping's to clear
	h.inDriver = true
	h.mu.Unlock()
	var err error
	if stuck {
		err = errors.New("the previous ping has not returned")
	} else {
		answer := make(chan error, 1)
		go func() {
			err := p.Ping(ctx)
			h.mu.Lock()
			h.inDriver = false
			h.mu.Unlock()
			answer <- err
		}()
		select {
		case err = <-answer:
		case <-ctx.Done():
			err = fmt.Errorf("no answer within %s", HealthTimeout)
		}
	}
	if err != nil {
		s.log.Warn("health check: "+what+" does not answer", "err", err)
	}
	h.mu.Lock()
	h.at, h.err, h.wait = time.Now(), err, nil
	h.mu.Unlock()
	close(done)
}

// draft serves an outage draft as its subject and body, found by its
// random token only: /drafts/<short id> serves nothing.
func (s *Server) draft(w http.ResponseWriter, r *http.Request) {
	if s.opts.Drafts == nil {
		notFound(w)
		return
	}
	d, ok, err := s.opts.Drafts.ByToken(r.PathValue("token"))
	if err != nil {
		s.log.Error("outage drafts cannot be read", "err", err)
		writeText(w, http.StatusServiceUnavailable, "the outage drafts cannot be read now; try again\n")
		return
	}
	if !ok {
		notFound(w)
		return
	}
	subject, body, err := s.opts.Template.Render(d)
	if err != nil {
		s.log.Error("outage draft does not render", "draft", d.ID, "err", err)
		writeText(w, http.StatusInternalServerError, "draft "+d.ID+" cannot be rendered\n")
		return
	}
	if wantsHTML(r) {
		s.draftHTML(w, d, subject, body)
		return
	}
	text := body
	if !strings.Contains(body, subject) {
		text = "Subject: " + subject + "\n\n" + body
	}
	writeText(w, http.StatusOK, text)
}

// job serves a job's description, result and whole log, found by its
// random token only: as an HTML page (live over /jobs/<token>/events) to a
// browser, as plain text with ?format=text, Accept: text/plain or no
// Accept at all. A job started in a private message (no Place) is
// never served: its output was for its owner alone.
func (s *Server) job(w http.ResponseWriter, r *http.Request) {
	j, ok := s.servedJob(r)
	if !ok {
		notFound(w)
		return
	}
	if wantsHTML(r) {
		s.jobHTML(w, j)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "job %s: %s\n", j.ID, j.Command)
	fmt.Fprintf(&b, "owner: %s\n", j.Owner)
	if len(j.Hosts) > 0 {
		fmt.Fprintf(&b, "hosts: %s\n", strings.Join(j.Hosts, ", "))
	}
	fmt.Fprintf(&b, "started: %s\n", j.Started.UTC().Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintf(&b, "result: %s\n\n", j.Result())
	for _, line := range j.Log() {
		b.WriteString(line)
		b.WriteByte('\n')
	}
	writeText(w, http.StatusOK, b.String())
}

// servedJob returns the job r's path names by its token, if it is one that
// is served.
func (s *Server) servedJob(r *http.Request) (*commands.Job, bool) {
	if s.opts.Jobs == nil {
		return nil, false
	}
	token := r.PathValue("token")
	if token == "" {
		return nil, false
	}
	j, ok := s.opts.Jobs.JobByToken(token)
	if !ok || j == nil || j.Place == "" || j.Token != token {
		return nil, false
	}
	return j, true
}

// reply serves a stored long reply.
func (s *Server) reply(w http.ResponseWriter, r *http.Request) {
	text, ok := s.replies.get(r.PathValue("id"))
	if !ok {
		notFound(w)
		return
	}
	writeText(w, http.StatusOK, text)
}

// writeText answers with a plain-text body.
func writeText(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, text)
}

func notFound(w http.ResponseWriter) {
	writeText(w, http.StatusNotFound, "404 not found\n")
}

// cutUTF8 returns the longest prefix of s of at most n bytes that does not
// split a UTF-8 sequence.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// replies keeps the newest texts under random ids.
type replies struct {
	mu    sync.Mutex
	max   int
	texts map[string]string
	order []string // ids, oldest first
}

func newReplies(max int) *replies {
	return &replies{max: max, texts: make(map[string]string, max)}
}

// add stores text under a new random id (128 bits) and returns the id,
// dropping the oldest text when full.
func (rs *replies) add(text string) string {
	id := strings.ToLower(rand.Text())
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.texts[id] = text
	rs.order = append(rs.order, id)
	for len(rs.order) > rs.max {
		delete(rs.texts, rs.order[0])
		rs.order[0] = ""
		rs.order = rs.order[1:]
	}
	return id
}

func (rs *replies) get(id string) (string, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	text, ok := rs.texts[id]
	return text, ok
}
