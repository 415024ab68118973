// Package outage drafts outage announcements from Fedora Infrastructure's
// outage template (a Go text/template that the configuration can replace) and
// keeps the drafts (in the bot's state store, Kept) for `outage show` and
// the HTTP server.
package outage

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"
	"time"
)

// ErrInvalid is returned, wrapped, for a draft that cannot be rendered: no
// service, no start time, or a planned outage without a duration.
var ErrInvalid = errors.New("invalid outage draft")

// TimeLayout is how the templates write a time: "YYYY-MM-DD HH:MM", always
// in UTC, as Fedora's subject lines and the `date -d` hint expect.
const TimeLayout = "2006-01-02 15:04"

// Draft is one outage announcement, the only value the template is fed.
type Draft struct {
	// ID is the store's short id ("o1"), for `outage show`; empty until
	// the draft is stored.
	ID string
	// Token is the draft's random, unguessable name (128 bits, URL-safe),
	// the only name its HTTP page answers to (Path); set when the draft is
	// stored.
	Token string
	// Planned selects the planned wording; false means an ongoing outage.
	Planned bool
	// Service is what is out, e.g. "Koji build system".
	Service string
	// Start is when the outage starts (planned) or started (unplanned).
	// It is rendered in UTC whatever its location.
	Start time.Time
	// Duration is the expected length; required when Planned, optional
	// (zero: unknown) otherwise.
	Duration time.Duration
	// Reason says why; it may span several lines.
	Reason string
	// Affected and Unaffected list services, one entry a line.
	Affected, Unaffected []string
	// TicketURL links the infrastructure ticket, when there is one.
	TicketURL string
	// To are the recipients (outage.to).
	To []string
	// Contacts are the contact persons (disk.escalate).
	Contacts []string
	// CreatedBy is the FAS user who drafted it, or "kojibot" for a draft
	// made by the watcher.
	CreatedBy string
	// Created is when the draft was made.
	Created time.Time
}

// Kind returns "Planned" or "Unplanned", the first word of the subject.
func (d Draft) Kind() string {
	if d.Planned {
		return "Planned"
	}
	return "Unplanned"
}

// StartUTC returns Start in UTC as "YYYY-MM-DD HH:MM" (TimeLayout).
func (d Draft) StartUTC() string {
	return d.Start.UTC().Format(TimeLayout)
}

// DurationText returns Duration in words, rounded to the minute:
// "3 hours", "1 hour and 30 minutes", "2 days and 4 hours". A zero or
// negative duration reads "an unknown time".
func (d Draft) DurationText() string {
	return approx(d.Duration)
}

// Validate reports, wrapping ErrInvalid, what the draft lacks to be
// rendered: a service, a start time, and for a planned outage a duration.
func (d Draft) Validate() error {
	var missing []string
	if strings.TrimSpace(d.Service) == "" {
		missing = append(missing, "no service")
	}
	if d.Start.IsZero() {
		missing = append(missing, "no start time")
	}
	if d.Planned && d.Duration <= 0 {
		missing = append(missing, "a planned outage needs a duration")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(missing, ", "))
	}
	return nil
}

// normalized returns a copy of d that the template may read: times in UTC,
// and slices of its own.
func (d Draft) normalized() Draft {
	d.Start = d.Start.UTC()
	if !d.Created.IsZero() {
		d.Created = d.Created.UTC()
	}
	return d.clone()
}

// clone returns a copy of d that shares no slice with it.
func (d Draft) clone() Draft {
	d.Affected = cloneStrings(d.Affected)
	d.Unaffected = cloneStrings(d.Unaffected)
	d.To = cloneStrings(d.To)
	d.Contacts = cloneStrings(d.Contacts)
	return d
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}

// approx writes a duration in words, rounded to the minute.
func approx(d time.Duration) string {
	if d <= 0 {
		return "an unknown time"
	}
	d = d.Round(time.Minute)
	if d == 0 {
		d = time.Minute
	}
	const day = 24 * time.Hour
	days := d / day
	if days < 2 { // "36 hours" reads better than "1 day and 12 hours"
		days = 0
	}
	d -= days * day
	hours := d / time.Hour
	minutes := (d % time.Hour) / time.Minute

	var parts []string
	for _, p := range []struct {
		n    time.Duration
		unit string
	}{{days, "day"}, {hours, "hour"}, {minutes, "minute"}} {
		switch {
		case p.n == 1:
			parts = append(parts, "1 "+p.unit)
		case p.n > 1:
			parts = append(parts, fmt.Sprintf("%d %ss", p.n, p.unit))
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

//go:embed outage.tmpl
var builtinText string

// builtin is the embedded template, parsed once; a broken embedded template
// is a programming error caught by the tests.
var builtin = func() *Template {
	t, err := parse("outage.tmpl", builtinText)
	if err != nil {
		panic(err)
	}
	return t
}()

// Template is a parsed outage template: it defines "subject" and "body".
// It is safe for concurrent use.
type Template struct {
	name string
	tmpl *template.Template
}

// Builtin returns the embedded template, Fedora Infrastructure's outage
// template.
func Builtin() *Template { return builtin }

// Name returns where the template came from: its file, or "outage.tmpl"
// for the built-in one.
func (t *Template) Name() string { return t.name }

// LoadTemplate reads the template in path (outage.template_file), which
// replaces the built-in one. It must define "subject" and "body", which are
// executed with a Draft (its fields and the methods Kind, StartUTC and
// DurationText); besides text/template's own functions it may call join
// (strings.Join), utc (a time.Time as TimeLayout in UTC) and approx (a
// time.Duration in words). The built-in outage.tmpl is an example. It is
// parsed and then executed against sample drafts, planned and unplanned,
// so that a syntax error or an unknown field fails at start, with the file
// and line in the error.
func LoadTemplate(path string) (*Template, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load outage template: %w", err)
	}
	t, err := parse(path, string(text))
	if err != nil {
		return nil, fmt.Errorf("load outage template: %w", err)
	}
	return t, nil
}

// funcs are the functions a template may call besides the builtins of
// text/template.
var funcs = template.FuncMap{
	"join": strings.Join,
	"utc": func(t time.Time) string {
		return t.UTC().Format(TimeLayout)
	},
	"approx": approx,
}

// parse parses and validates a template.
func parse(name, text string) (*Template, error) {
	tm, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(text)
	if err != nil {
		return nil, err
	}
	for _, want := range []string{"subject", "body"} {
		if tm.Lookup(want) == nil {
			return nil, fmt.Errorf("template: %s: no {{define %q}}", name, want)
		}
	}
	t := &Template{name: name, tmpl: tm}
	for _, d := range samples() {
		if _, _, err := t.Render(d); err != nil {
			return nil, fmt.Errorf("%w (with a sample %s draft)", err, strings.ToLower(d.Kind()))
		}
	}
	return t, nil
}

// samples returns drafts that exercise both branches of a template and
// both full and empty lists.
func samples() []Draft {
	start := time.Date(2026, 2, 21, 21, 0, 0, 0, time.UTC)
	return []Draft{
		{
			ID: "o1", Planned: true, Service: "Koji build system",
			Start: start, Duration: 3 * time.Hour,
			Reason:     "Database server upgrade.",
			Affected:   []string{"Koji build system"},
			Unaffected: []string{"Bodhi"},
			TicketURL:  "https://forge.fedoraproject.org/infra/tickets/issues/1",
			To:         []string{"fedora-devel-list@lists.fedoraproject.org"}, Contacts: []string{"alice"},
			CreatedBy: "alice", Created: start.Add(-7 * 24 * time.Hour),
		},
		{
			ID: "o2", Service: "Koji build system", Start: start,
			CreatedBy: "kojibot", Created: start,
		},
	}
}

// Render renders d with the built-in template; see Template.Render.
func Render(d Draft) (subject, body string, err error) {
	return builtin.Render(d)
}

// Render renders d: subject is the one-line subject, body the whole draft
// as an operator pastes it into a mail client (or `sendmail -t`): the To:
// and Subject: lines, a blank line, then the announcement. Times are
// rendered in UTC whatever the location of d's times. It fails, wrapping
// ErrInvalid, for a draft that Validate rejects.
func (t *Template) Render(d Draft) (subject, body string, err error) {
	if err := d.Validate(); err != nil {
		return "", "", err
	}
	d = d.normalized()
	var buf bytes.Buffer
	if err := t.tmpl.ExecuteTemplate(&buf, "subject", d); err != nil {
		return "", "", err
	}
	subject = strings.TrimSpace(buf.String())
	if subject == "" || strings.ContainsAny(subject, "\r\n") {
		return "", "", fmt.Errorf("template: %s: \"subject\" must render one non-empty line, got %q", t.name, subject)
	}
	buf.Reset()
	if err := t.tmpl.ExecuteTemplate(&buf, "body", d); err != nil {
		return "", "", err
	}
	return subject, buf.String(), nil
}
