package matrix

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"maunium.net/go/mautrix/id"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/config"
)

// TestMessageHTML: each part of a structured reply has its own markup — the
// table is a <table>, the links are <a>, the preformatted text is <pre> —
// and every text is escaped; only http(s) addresses become links.
func TestMessageHTML(t *testing.T) {
	tests := []struct {
		name string
		m    reply.Message
		want string
	}{
		{"text", reply.Text(reply.Error, "no <host> & such\nsecond"), "error: no &lt;host&gt; &amp; such<br>second"},
		{"links", reply.Message{Lines: []string{"job 3 started"}, Links: []reply.Link{{Label: "progress", URL: "https://bot/jobs/a?b=1&c=2"}}},
			`job 3 started — <a href="https://bot/jobs/a?b=1&amp;c=2">progress</a>`},
		{"not a web link", reply.Message{Lines: []string{"draft"}, Links: []reply.Link{{Label: "x", URL: "javascript:alert(1)"}}},
			"draft — x: javascript:alert(1)"},
		{"table", reply.Message{Lines: []string{"2 hosts"}, Table: &reply.Table{
			Columns: []reply.Column{{Name: "host"}, {Name: "load", Right: true}, {Name: "page", URL: true}},
			Rows:    [][]string{{"ppc3", "1.5", "http://w/p"}, {"<b>x</b>", "2", "javascript:1"}}}},
			`2 hosts<table><thead><tr><th>host</th><th>load</th><th>page</th></tr></thead><tbody>` +
				`<tr><td>ppc3</td><td>1.5</td><td><a href="http://w/p">http://w/p</a></td></tr>` +
				`<tr><td>&lt;b&gt;x&lt;/b&gt;</td><td>2</td><td>javascript:1</td></tr></tbody></table>`},
		{"pre and footer", reply.Message{Kind: reply.Confirm, Lines: []string{"plan"}, Pre: []string{"a <b>", "  c"}, Footer: "to go ahead: !koji confirm abc"},
			"confirm: plan<pre>a &lt;b&gt;\n  c</pre>to go ahead: !koji confirm abc"},
		{"footer after text", reply.Message{Kind: reply.Confirm, Lines: []string{"reboot ppc3"}, Footer: "to go ahead"},
			"confirm: reboot ppc3<br>to go ahead"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messageHTML(tt.m); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestComposeCapsATable: a reply over max_lines keeps its headline, the
// table's heading, as many rows as fit and its footer; the last line but
// the footer says how many lines are behind the link, and the page holds
// the whole reply but the token.
func TestComposeCapsATable(t *testing.T) {
	var published string
	b := &Bot{opts: Options{Config: config.Matrix{MaxLines: 6}, LongOutput: func(text string) (string, bool) {
		published = text
		return "http://web/long/9", true
	}}}
	table := &reply.Table{Columns: []reply.Column{{Name: "delete"}, {Name: "size", Right: true}}}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		table.Rows = append(table.Rows, []string{"/var/lib/mock/" + n, "1 MiB"})
	}
	m := reply.Message{Kind: reply.Confirm, Lines: []string{"clean-up plan"}, Table: table, Footer: "to go ahead: !koji confirm tok123"}
	caller := id.UserID("@alice:fedora.im")
	c := b.compose([]reply.Message{m}, "$cmd", &caller, true)
	lines := strings.Split(c.Body, "\n")
	want := []string{"@alice:fedora.im: confirm: clean-up plan", "delete            size", "/var/lib/mock/a  1 MiB",
		"/var/lib/mock/b  1 MiB", "(3 more lines: http://web/long/9)", "to go ahead: !koji confirm tok123"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("body\n%s\nwant\n%s", c.Body, strings.Join(want, "\n"))
	}
	if strings.Contains(published, "tok123") || !strings.Contains(published, "/var/lib/mock/e") {
		t.Errorf("published %q: want every row and no token", published)
	}
	for _, w := range []string{"<td>/var/lib/mock/b</td>", "</table><br>(3 more lines: http://web/long/9)<br>to go ahead: !koji confirm tok123"} {
		if !strings.Contains(c.FormattedBody, w) {
			t.Errorf("formatted_body lacks %q:\n%s", w, c.FormattedBody)
		}
	}
	if strings.Contains(c.FormattedBody, "/var/lib/mock/c") {
		t.Errorf("formatted_body shows a row past max_lines:\n%s", c.FormattedBody)
	}
	// At the smallest max_lines the token still comes, after the headline
	// and the note: one line over rather than a confirmation without it.
	b.opts.Config.MaxLines = 2
	c = b.compose([]reply.Message{m}, "$cmd", &caller, true)
	want = []string{"@alice:fedora.im: confirm: clean-up plan", "(6 more lines: http://web/long/9)", "to go ahead: !koji confirm tok123"}
	if c.Body != strings.Join(want, "\n") {
		t.Errorf("max_lines 2: body\n%s\nwant\n%s", c.Body, strings.Join(want, "\n"))
	}
}

// BenchmarkComposeHosts renders `hosts` of a 500-builder farm as Matrix
// sends it at the default max_lines (30): the cost of one structured
// reply's body and HTML, capped, with its long-output page.
func BenchmarkComposeHosts(bm *testing.B) {
	b := &Bot{opts: Options{Config: config.Matrix{MaxLines: 30}, LongOutput: func(string) (string, bool) { return "http://web/long/1", true }}}
	table := &reply.Table{Columns: []reply.Column{{Name: "host"}, {Name: "enabled"}, {Name: "ready"},
		{Name: "load", Right: true}, {Name: "capacity", Right: true}, {Name: "checked in"}}}
	for i := range 500 {
		table.Rows = append(table.Rows, []string{fmt.Sprintf("buildvm-%03d.iad2.fedoraproject.org", i), "yes", "yes", "1.5", "4", "2m ago"})
	}
	m := reply.Message{Lines: []string{"500 hosts, 500 enabled, 500 ready"}, Table: table}
	caller := id.UserID("@alice:fedora.im")
	bm.ReportAllocs()
	for bm.Loop() {
		b.compose([]reply.Message{m}, "$cmd", &caller, true)
	}
}

// TestComposeMentionsNobodyElse: a reply mentions its caller only, and a
// notification nobody, explicitly: "@room" or a user id in its text pings
// no one.
func TestComposeMentionsNobodyElse(t *testing.T) {
	b := &Bot{opts: Options{Config: config.Matrix{MaxLines: 30}}}
	m := reply.Text(reply.Info, "ALERT @room: disk full, ask @bob:fedora.im")
	c := b.compose([]reply.Message{m}, "", nil, true)
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"m.mentions":{}`) {
		t.Errorf("notification %s: want an empty m.mentions", raw)
	}
	caller := id.UserID("@alice:fedora.im")
	c = b.compose([]reply.Message{m}, "$cmd", &caller, true)
	if c.Mentions == nil || len(c.Mentions.UserIDs) != 1 || c.Mentions.UserIDs[0] != caller || c.Mentions.Room {
		t.Errorf("reply mentions %+v, want the caller only", c.Mentions)
	}
}

// TestComposeFitsOneEvent: however large max_lines is, a reply fits in
// one Matrix event (over 64 KiB the homeserver refuses it, and the caller
// would get nothing): fewer lines are shown, the rest behind the link,
// published once.
func TestComposeFitsOneEvent(t *testing.T) {
	pages := 0
	b := &Bot{opts: Options{Config: config.Matrix{MaxLines: 5000}, LongOutput: func(string) (string, bool) {
		pages++
		return "http://web/long/1", true
	}}}
	table := &reply.Table{Columns: []reply.Column{{Name: "builder"}, {Name: "mount"}, {Name: "note"}}}
	for i := range 3000 {
		table.Rows = append(table.Rows, []string{fmt.Sprintf("buildvm-%04d.iad2.fedoraproject.org", i), "/var/lib/mock", strings.Repeat("x", 40)})
	}
	c := b.compose([]reply.Message{{Lines: []string{"3000 builders"}, Table: table}}, "$cmd", nil, true)
	if n := eventSize(c); n > maxEventBytes {
		t.Errorf("the reply takes %d bytes, over %d", n, maxEventBytes)
	}
	lines := strings.Split(c.Body, "\n")
	if last := lines[len(lines)-1]; !c.capped || len(lines) < 30 || !strings.HasSuffix(last, " more lines: http://web/long/1)") {
		t.Errorf("%d lines, capped %v, last %q: want as many as fit, then the link", len(lines), c.capped, last)
	}
	if pages != 1 {
		t.Errorf("%d pages published, want 1", pages)
	}
}

// TestComposeNotificationMentions: a watcher notification is a structured
// message: its draft is a link, and the FAS users it escalates to are
// mentioned as the Matrix users of matrix.fas_server (m.mentions and a
// pill each); a contact that is no FAS user name is only named, and
// without matrix.fas_server no one is mentioned.
func TestComposeNotificationMentions(t *testing.T) {
	m := reply.Message{Lines: []string{"ALERT shared mount /mnt/koji on koji-hub 97% full (threshold 90%)"},
		Links:    []reply.Link{{Label: "outage draft o1", URL: "https://bot/drafts/tok"}},
		Mentions: &reply.Mentions{Label: "escalate", Users: []string{"kevin", "Nirik", "ops <oncall@example.org>"}}}
	b := &Bot{opts: Options{Config: config.Matrix{MaxLines: 30, FASServer: "fedora.im"}}}
	c := b.compose([]reply.Message{m}, "", nil, true)
	if want := []id.UserID{"@kevin:fedora.im", "@nirik:fedora.im"}; c.Mentions == nil || fmt.Sprint(c.Mentions.UserIDs) != fmt.Sprint(want) || c.Mentions.Room {
		t.Errorf("m.mentions %+v, want %v", c.Mentions, want)
	}
	wantHTML := `ALERT shared mount /mnt/koji on koji-hub 97% full (threshold 90%) — <a href="https://bot/drafts/tok">outage draft o1</a>` +
		` — escalate: <a href="https://matrix.to/#/@kevin:fedora.im">@kevin:fedora.im</a>, <a href="https://matrix.to/#/@nirik:fedora.im">@nirik:fedora.im</a>, ops &lt;oncall@example.org&gt;`
	if c.FormattedBody != wantHTML {
		t.Errorf("formatted_body\n%s\nwant\n%s", c.FormattedBody, wantHTML)
	}
	wantBody := "ALERT shared mount /mnt/koji on koji-hub 97% full (threshold 90%); outage draft o1: https://bot/drafts/tok — escalate: @kevin:fedora.im, @nirik:fedora.im, ops <oncall@example.org>"
	if c.Body != wantBody {
		t.Errorf("body\n%s\nwant\n%s", c.Body, wantBody)
	}

	b.opts.Config.FASServer = ""
	c = b.compose([]reply.Message{m}, "", nil, true)
	if c.Mentions == nil || len(c.Mentions.UserIDs) != 0 || strings.Contains(c.FormattedBody, "matrix.to") || !strings.Contains(c.Body, "escalate: kevin, Nirik") {
		t.Errorf("without matrix.fas_server: mentions %+v\n%s\n%s", c.Mentions, c.Body, c.FormattedBody)
	}
}
