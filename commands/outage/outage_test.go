package outage

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// golden compares got with testdata/<name>.golden, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

var (
	planned = Draft{
		ID:         "o1",
		Planned:    true,
		Service:    "Koji build system",
		Start:      time.Date(2024, 2, 21, 21, 0, 0, 0, time.UTC),
		Duration:   3 * time.Hour,
		Reason:     "The Koji database server moves to new hardware.",
		Affected:   []string{"Koji build system (koji.fedoraproject.org)", "Bodhi update pushes"},
		Unaffected: []string{"Fedora websites", "Mirrors"},
		TicketURL:  "https://forge.fedoraproject.org/infra/tickets/issues/11812",
		To:         config.Default().Outage.To,
		Contacts:   []string{"alice", "bob"},
		CreatedBy:  "alice",
		Created:    time.Date(2024, 2, 14, 9, 30, 0, 0, time.UTC),
	}
	unplanned = Draft{
		ID:        "o2",
		Service:   "Koji build system",
		Start:     time.Date(2026, 11, 26, 14, 5, 41, 0, time.UTC),
		Reason:    "kojid cannot reach the hub.",
		To:        []string{"infrastructure@lists.fedoraproject.org"},
		CreatedBy: "bob",
	}
)

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name    string
		draft   Draft
		subject string
	}{
		{"planned", planned, "Planned Outage - Koji build system - 2024-02-21 21:00 UTC"},
		{"unplanned", unplanned, "Unplanned Outage - Koji build system - 2026-11-26 14:05 UTC"},
		{"fullmount",
			ForFullMount("/mnt/koji", 93.456, "koji-hub",
				time.Date(2026, 11, 26, 3, 17, 0, 0, time.UTC),
				[]string{"alice", "carol"}, config.Default().Outage.To),
			"Unplanned Outage - Koji build system - 2026-11-26 03:17 UTC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			subject, body, err := Render(tc.draft)
			if err != nil {
				t.Fatal(err)
			}
			if subject != tc.subject {
				t.Errorf("subject = %q, want %q", subject, tc.subject)
			}
			if !strings.Contains(body, "\nSubject: "+subject+"\n") {
				t.Errorf("body lacks the Subject: line %q", subject)
			}
			golden(t, tc.name, body)
		})
	}
}

// TestRenderFacts checks the template's wording independently of the golden
// files, so that an -update cannot silently lose it.
func TestRenderFacts(t *testing.T) {
	_, body, err := Render(planned)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"To: fedora-infrastructure-list@lists.fedoraproject.org, fedora-devel-list@lists.fedoraproject.org\n",
		"There will be an outage starting at 2024-02-21 21:00 UTC, which will last approximately 3 hours.",
		"date -d '2024-02-21 21:00 UTC'",
		"Reason for outage:", "Affected Services:", "Unaffected Services:", "Ticket Link:",
		"#fedora-admin", "reply to this email",
		"Contact Persons:\n\n- alice\n- bob\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("planned body lacks %q", want)
		}
	}
	_, body, err = Render(unplanned)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"To: infrastructure@lists.fedoraproject.org\n",
		"There is an ongoing outage of Koji build system, which started at 2026-11-26 14:05 UTC.",
		"date -d '2026-11-26 14:05 UTC'",
		"Ticket Link:\n\nTBD\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("unplanned body lacks %q", want)
		}
	}
	if strings.Contains(body, "which will last") {
		t.Error("unplanned body with no duration promises one")
	}
}

func TestRenderAlwaysUTC(t *testing.T) {
	zones := []*time.Location{
		time.FixedZone("EST", -5*3600),
		time.FixedZone("IST", 5*3600+1800),
		time.FixedZone("CHAST", 12*3600+45*60),
	}
	wantSubject, wantBody, err := Render(planned)
	if err != nil {
		t.Fatal(err)
	}
	for _, loc := range zones {
		d := planned
		d.Start = planned.Start.In(loc)
		d.Created = planned.Created.In(loc)
		subject, body, err := Render(d)
		if err != nil {
			t.Fatal(err)
		}
		if subject != wantSubject || body != wantBody {
			t.Errorf("zone %s: rendering differs from UTC:\n%s\n%s", loc, subject, body)
		}
	}

	// A custom template that prints the raw time.Time also sees UTC.
	tm := writeTemplate(t, `{{define "subject"}}{{.Start}}{{end}}{{define "body"}}{{.Created.Location}} {{utc .Start}}{{end}}`)
	d := planned
	d.Start = planned.Start.In(zones[0])
	d.Created = planned.Created.In(zones[1])
	subject, body, err := tm.Render(d)
	if err != nil {
		t.Fatal(err)
	}
	if subject != "2024-02-21 21:00:00 +0000 UTC" || body != "UTC 2024-02-21 21:00" {
		t.Errorf("custom template saw non-UTC times: %q, %q", subject, body)
	}
}

func TestRenderInvalid(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Draft)
		want   string
	}{
		{"no service", func(d *Draft) { d.Service = " " }, "no service"},
		{"no start", func(d *Draft) { d.Start = time.Time{} }, "no start time"},
		{"planned without duration", func(d *Draft) { d.Duration = 0 }, "needs a duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := planned
			tc.change(&d)
			_, _, err := Render(d)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Render = %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

func TestDurationText(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "an unknown time"},
		{-time.Hour, "an unknown time"},
		{20 * time.Second, "1 minute"},
		{time.Minute, "1 minute"},
		{45 * time.Minute, "45 minutes"},
		{time.Hour, "1 hour"},
		{90 * time.Minute, "1 hour and 30 minutes"},
		{3*time.Hour + 29*time.Second, "3 hours"},
		{36 * time.Hour, "36 hours"},
		{48 * time.Hour, "2 days"},
		{76*time.Hour + 5*time.Minute, "3 days, 4 hours and 5 minutes"},
	}
	for _, tc := range tests {
		if got := (Draft{Duration: tc.d}).DurationText(); got != tc.want {
			t.Errorf("DurationText(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// writeTemplate writes text to a temporary file and loads it.
func writeTemplate(t *testing.T, text string) *Template {
	t.Helper()
	tm, err := LoadTemplate(writeFile(t, text))
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outage.tmpl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadTemplateCustom(t *testing.T) {
	tm := writeTemplate(t, `{{define "subject"}}[{{.Kind}}] {{.Service}} @ {{.StartUTC}} UTC{{end}}
{{- define "body" -}}
To: {{join .To ", "}}
{{if .Planned}}Down for {{.DurationText}} from {{.StartUTC}} UTC.{{else}}Down since {{.StartUTC}} UTC.{{end}}
Why: {{.Reason}}
{{range .Affected}}* {{.}}
{{end}}Ticket: {{or .TicketURL "none"}}
Drafted by {{.CreatedBy}} ({{.ID}}).
{{end}}`)
	if !strings.HasSuffix(tm.Name(), "outage.tmpl") {
		t.Errorf("Name = %q, want the file", tm.Name())
	}
	subject, body, err := tm.Render(planned)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[Planned] Koji build system @ 2024-02-21 21:00 UTC"; subject != want {
		t.Errorf("subject = %q, want %q", subject, want)
	}
	golden(t, "custom", body)
}

func TestLoadTemplateRejects(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string // substrings of the error, beside the file name
	}{
		{"syntax error", "{{define \"subject\"}}x{{end}}\n{{define \"body\"}}\n{{if .Planned}}\n{{end}}", []string{"outage.tmpl:", "unexpected EOF"}},
		{"unknown function", "{{define \"subject\"}}x{{end}}\n{{define \"body\"}}\n{{frobnicate .Service}}{{end}}", []string{"outage.tmpl:3", "frobnicate"}},
		{"unknown field", "{{define \"subject\"}}x{{end}}\n{{define \"body\"}}\n\nHello {{.Servise}}{{end}}", []string{"outage.tmpl:4", "Servise"}},
		{"unknown field in planned branch", "{{define \"subject\"}}x{{end}}\n{{define \"body\"}}{{if .Planned}}\n{{.Lenght}}{{end}}{{end}}", []string{"outage.tmpl:3", "Lenght", "planned"}},
		{"unknown field in unplanned branch", "{{define \"subject\"}}x{{end}}\n{{define \"body\"}}{{if not .Planned}}\n{{.Since}}{{end}}{{end}}", []string{"outage.tmpl:3", "Since", "unplanned"}},
		{"unknown field in subject", "{{define \"subject\"}}{{.Title}}{{end}}{{define \"body\"}}x{{end}}", []string{"outage.tmpl:1", "Title"}},
		{"wrong argument type", "{{define \"subject\"}}x{{end}}{{define \"body\"}}{{join .Service \",\"}}{{end}}", []string{"outage.tmpl:1", "Service", "expected []string"}},
		{"index out of range", "{{define \"subject\"}}x{{end}}{{define \"body\"}}{{index .Affected 0}}{{end}}", []string{"outage.tmpl:1", "index"}},
		{"no subject", "{{define \"body\"}}x{{end}}", []string{"subject"}},
		{"no body", "{{define \"subject\"}}x{{end}}", []string{"body"}},
		{"empty subject", "{{define \"subject\"}} {{end}}{{define \"body\"}}x{{end}}", []string{"one non-empty line"}},
		{"multi-line subject", "{{define \"subject\"}}a\nb{{end}}{{define \"body\"}}x{{end}}", []string{"one non-empty line"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.text)
			tm, err := LoadTemplate(path)
			if err == nil {
				t.Fatalf("LoadTemplate accepted %q", tc.text)
			}
			if tm != nil {
				t.Error("LoadTemplate returned a template with its error")
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file %s", msg, path)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestLoadTemplateMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.tmpl")
	_, err := LoadTemplate(path)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("LoadTemplate(missing) = %v", err)
	}
}

func TestBuiltinIsWhatRenderUses(t *testing.T) {
	s1, b1, err1 := Builtin().Render(unplanned)
	s2, b2, err2 := Render(unplanned)
	if err1 != nil || err2 != nil || s1 != s2 || b1 != b2 {
		t.Fatal("Render and Builtin().Render differ")
	}
	// The built-in file also passes the start-up validation of custom ones.
	if _, err := LoadTemplate(filepath.Join(".", "outage.tmpl")); err != nil {
		t.Fatal(err)
	}
}

func TestForFullMount(t *testing.T) {
	now := time.Date(2026, 11, 26, 4, 17, 0, 0, time.FixedZone("CET", 3600))
	contacts := []string{"alice"}
	to := []string{"ops@example.org"}
	d := ForFullMount("/pub/epel/", 91, "koji-hub", now, contacts, to)
	if d.Planned || d.Service != "Koji build system" || d.CreatedBy != AutoAuthor {
		t.Errorf("draft = %+v", d)
	}
	if d.Start.Location() != time.UTC || !d.Start.Equal(now) || !d.Created.Equal(now) {
		t.Errorf("Start = %v, Created = %v, want %v in UTC", d.Start, d.Created, now)
	}
	if !strings.Contains(d.Reason, "/pub/epel/") || !strings.Contains(d.Reason, "koji-hub") || !strings.Contains(d.Reason, "91%") {
		t.Errorf("Reason = %q, want the mount, host and usage", d.Reason)
	}
	if len(d.Affected) < 2 || !strings.Contains(strings.Join(d.Affected, "\n"), "mirror") {
		t.Errorf("Affected = %q, want Koji and the mirrors", d.Affected)
	}
	if err := d.Validate(); err != nil {
		t.Error(err)
	}
	// The draft owns its slices.
	contacts[0], to[0] = "mallory", "evil@example.org"
	if d.Contacts[0] != "alice" || d.To[0] != "ops@example.org" {
		t.Error("ForFullMount aliases its arguments")
	}
}

// TestStore: both kinds of drafts (in memory, in the state store) keep
// the newest drafts under ids o1, o2, ..., found by id whatever its case,
// as copies.
func TestStore(t *testing.T) { eachDrafts(t, 3, testStore) }

func testStore(t *testing.T, s Drafts) {

	if _, err := s.New(Draft{Service: "Koji"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("New(invalid) = %v", err)
	}
	var ids []string
	for i := range 5 {
		d := unplanned
		d.Reason = fmt.Sprint("reason ", i)
		d.Start = d.Start.In(time.FixedZone("X", 7200))
		got, err := s.New(d)
		if err != nil {
			t.Fatal(err)
		}
		if got.Created.IsZero() || got.Start.Location() != time.UTC {
			t.Errorf("stored draft: Created %v, Start %v", got.Created, got.Start)
		}
		ids = append(ids, got.ID)
	}
	if strings.Join(ids, ",") != "o1,o2,o3,o4,o5" {
		t.Errorf("ids = %v", ids)
	}
	var listed []string
	list, _ := s.List()
	for _, d := range list {
		listed = append(listed, d.ID+"="+d.Reason)
	}
	if want := "o5=reason 4,o4=reason 3,o3=reason 2"; strings.Join(listed, ",") != want {
		t.Errorf("List = %v, want %s (newest first, bounded)", listed, want)
	}
	if _, ok, _ := s.Get("o1"); ok {
		t.Error("Get(o1) found a draft beyond the bound")
	}
	d, ok, _ := s.Get(" O4 ")
	if !ok || d.Reason != "reason 3" {
		t.Errorf("Get(O4) = %+v, %v", d, ok)
	}
	// Returned drafts are copies.
	d.Affected = append(d.Affected, "x")
	d2, _, _ := s.Get("o4")
	d2.To[0] = "changed"
	if d3, _, _ := s.Get("o4"); len(d3.Affected) != 0 || d3.To[0] == "changed" {
		t.Error("Get returns drafts that share memory with the store")
	}
	// An explicit Created is kept.
	d = unplanned
	d.Created = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if got, _ := s.New(d); !got.Created.Equal(d.Created) {
		t.Errorf("Created = %v, want %v", got.Created, d.Created)
	}
}

func TestStoreConcurrent(t *testing.T) {
	s := NewStore(0, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				d, err := s.New(unplanned)
				if err != nil {
					t.Error(err)
					return
				}
				// Other writers may already have pushed it out.
				if got, ok, _ := s.Get(d.ID); ok && got.ID != d.ID {
					t.Errorf("Get(%s) = %s", d.ID, got.ID)
				}
				s.List()
			}
		})
	}
	wg.Wait()
	list, _ := s.List()
	if len(list) != DefaultMaxDrafts {
		t.Fatalf("kept %d drafts, want %d", len(list), DefaultMaxDrafts)
	}
	seen := map[string]bool{}
	idRE := regexp.MustCompile(`^o[0-9]+$`)
	for _, d := range list {
		if seen[d.ID] || !idRE.MatchString(d.ID) {
			t.Errorf("bad or duplicate id %q", d.ID)
		}
		seen[d.ID] = true
	}
	if list[0].ID != "o400" {
		t.Errorf("newest = %s, want o400", list[0].ID)
	}
}

// TestStoreTokens: every stored draft gets a random, URL-safe token of at
// least 128 bits; ByToken finds it by that token only, never by its short
// id, and forgets it with the draft.
func TestStoreTokens(t *testing.T) { eachDrafts(t, 2, testStoreTokens) }

func testStoreTokens(t *testing.T, s Drafts) {
	tokenRE := regexp.MustCompile(`^[a-z2-7]{26,}$`) // base32: 5 bits a character
	seen := map[string]bool{}
	var first Draft
	for i := range 3 {
		d, err := s.New(unplanned)
		if err != nil {
			t.Fatal(err)
		}
		if !tokenRE.MatchString(d.Token) || seen[d.Token] {
			t.Fatalf("draft %s: token %q is not a new URL-safe 128-bit token", d.ID, d.Token)
		}
		seen[d.Token] = true
		if d.Path() != "/drafts/"+d.Token {
			t.Errorf("Path() = %q", d.Path())
		}
		if i == 0 {
			first = d
			continue
		}
		got, ok, _ := s.ByToken(d.Token)
		if !ok || got.ID != d.ID || got.Token != d.Token {
			t.Errorf("ByToken(%s) = %+v, %v; want draft %s", d.Token, got, ok, d.ID)
		}
		if g, _, _ := s.Get(d.ID); g.Token != d.Token {
			t.Errorf("Get(%s).Token = %q, want %q", d.ID, g.Token, d.Token)
		}
		for _, guess := range []string{d.ID, "", strings.ToUpper(d.Token), d.Token[:len(d.Token)-1], " " + d.Token} {
			if g, ok, _ := s.ByToken(guess); ok {
				t.Errorf("ByToken(%q) found draft %s", guess, g.ID)
			}
		}
	}
	if _, ok, _ := s.ByToken(first.Token); ok {
		t.Error("ByToken found a draft beyond the bound")
	}
	if (Draft{ID: "o9"}).Path() != "" {
		t.Error("an unstored draft has a path")
	}
}

func TestForFillingMount(t *testing.T) {
	now := time.Date(2026, 11, 26, 4, 17, 0, 0, time.UTC)
	d := ForFillingMount("/mnt/koji", 97, "+2.1%/h, full in about 1 h 25 min", "koji-hub", now, nil, nil)
	if !strings.Contains(d.Reason, "is 97% full, +2.1%/h, full in about 1 h 25 min. ") {
		t.Errorf("Reason = %q, want the trend after the fill", d.Reason)
	}
	if plain := ForFillingMount("/mnt/koji", 97, "", "koji-hub", now, nil, nil); plain.Reason != ForFullMount("/mnt/koji", 97, "koji-hub", now, nil, nil).Reason {
		t.Errorf("an empty trend changes the reason: %q", plain.Reason)
	}
}
