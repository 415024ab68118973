package web

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/commands"
)

// assets are the pages' templates, style sheet and script. Every page's
// data is escaped by html/template; nothing from a host, a comment or a
// caller is ever marked as safe markup.
//
//go:embed assets
var assets embed.FS

// pages are the parsed HTML templates.
var pages = template.Must(template.ParseFS(assets, "assets/*.html"))

// contentSecurityPolicy is sent with every HTML page: scripts, styles and
// images only from this server (no inline script or style), no plugins, no
// framing, forms nowhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// JobEventsPoll is how often a job's event stream looks for new steps.
const JobEventsPoll = 250 * time.Millisecond

// wantsHTML tells whether r asked for the HTML page: a browser's Accept
// names text/html, and neither ?format=text nor an Accept of text/plain
// before it asks for plain text. Clients that send no Accept (curl, the
// bot's own links read by scripts) keep the plain text.
func wantsHTML(r *http.Request) bool {
	if r.URL.Query().Get("format") == "text" {
		return false
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "text/plain":
			return false
		case "text/html", "application/xhtml+xml":
			return true
		}
	}
	return false
}

// writeHTML renders the template name with data and answers with it, or
// with a plain 500 when it does not render (logged).
func (s *Server) writeHTML(w http.ResponseWriter, name string, data any) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		s.log.Error("page does not render", "page", name, "err", err)
		writeText(w, http.StatusInternalServerError, "the page cannot be rendered\n")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

// jobPage is what job.html shows.
type jobPage struct {
	ID, Command, Owner, Started, Result, State, Events string
	Hosts, Log                                         []string
}

// jobHTML serves j's HTML page.
func (s *Server) jobHTML(w http.ResponseWriter, j *commands.Job) {
	s.writeHTML(w, "job.html", jobPage{
		ID:      j.ID,
		Command: j.Command,
		Owner:   j.Owner,
		Started: j.Started.UTC().Format("2006-01-02 15:04:05 UTC"),
		Result:  j.Result(),
		State:   string(j.State()),
		Events:  "/jobs/" + j.Token + "/events",
		Hosts:   j.Hosts,
		Log:     j.Log(),
	})
}

// jobEvents streams a job's steps as Server-Sent Events: "step" for each
// log line from the index ?from=, then "result" with the outcome once the
// job has finished, and the stream ends. It is found by token like the
// page.
func (s *Server) jobEvents(w http.ResponseWriter, r *http.Request) {
	j, ok := s.servedJob(r)
	if !ok {
		notFound(w)
		return
	}
	from, _ := strconv.Atoi(r.URL.Query().Get("from"))
	if from < 0 {
		from = 0
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	tick := time.NewTicker(JobEventsPoll)
	defer tick.Stop()
	for {
		// The server's write timeout is for ordinary pages; a stream
		// lives as long as its job.
		_ = rc.SetWriteDeadline(time.Now().Add(time.Minute))
		finished := j.State() != commands.JobRunning
		lines := j.Log()
		if from > len(lines) {
			from = len(lines)
		}
		var b strings.Builder
		for _, line := range lines[from:] {
			writeEvent(&b, "step", line)
		}
		from = len(lines)
		if finished {
			writeEvent(&b, "result", j.Result())
		}
		if b.Len() > 0 {
			if _, err := w.Write([]byte(b.String())); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
		if finished {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-j.Done():
		case <-tick.C:
		}
	}
}

// writeEvent appends one Server-Sent Event to b, its data split into one
// "data:" field per line (the browser joins them with newlines).
func writeEvent(b *strings.Builder, event, data string) {
	b.WriteString("event: " + event + "\n")
	for _, line := range strings.Split(strings.ReplaceAll(data, "\r", ""), "\n") {
		b.WriteString("data: " + line + "\n")
	}
	b.WriteString("\n")
}

// static serves the style sheet and script.
func static() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err)
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("file") {
		case "style.css", "live.js", "status.js":
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/" + r.PathValue("file")
			files.ServeHTTP(w, r2)
		default:
			notFound(w)
		}
	})
}
