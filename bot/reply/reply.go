// Package reply is the structured reply: what a command decided to say —
// its kind, prose lines, a table, preformatted text, links and a footer
// that must stay visible — before any transport renders it. IRC, `kojibot
// exec`, job logs and long-output pages use its text rendering (Lines);
// Matrix renders the same message as HTML (a real table, links, <pre>). No
// transport parses another's text.
//
// The package is a leaf: commands build messages with it, the transports
// render them, and it imports neither.
package reply

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind says what a reply is, which decides its prefix and the exit code of
// `kojibot exec`.
type Kind int

// The kinds of reply.
const (
	Info    Kind = iota // a result or progress line
	Error               // "error: ..." (exec exits 1)
	Usage               // "error: ..." followed by the usage line (exec exits 1)
	Denied              // "denied: ..." (exec exits 3)
	Confirm             // "confirm: ..." with a token
)

// Prefix is what a reply of kind k starts with: "error: ", "denied: ",
// "confirm: ", or "" for Info.
func (k Kind) Prefix() string {
	switch k {
	case Error, Usage:
		return "error: "
	case Denied:
		return "denied: "
	case Confirm:
		return "confirm: "
	}
	return ""
}

// Failed reports whether a reply of kind k means the command failed.
func (k Kind) Failed() bool { return k == Error || k == Usage || k == Denied }

// Message is one reply. Its parts are shown in this order: the headline
// (Lines[0], prefixed by the kind, followed by the links), the other
// lines, the table, the preformatted text, and the footer.
type Message struct {
	Kind Kind
	// Lines is prose, one element per line; the first is the headline.
	Lines []string
	// Links are named URLs that belong to the headline (a job's progress
	// page, an outage draft).
	Links []Link
	// Table, when set, follows the lines.
	Table *Table
	// Pre is text shown as it is, in a fixed-width font where the
	// transport has one (an outage draft, a command's output).
	Pre []string
	// Footer is a last line that a transport never leaves out when it
	// shortens the message (a confirmation's "to go ahead" with its token).
	Footer string
	// Mentions, when set, are the people the headline calls on (those to
	// escalate to), shown after the links.
	Mentions *Mentions
}

// Mentions are people a message calls on, by FAS user name. A text
// transport shows them as "label: name, name"; one that can mention a
// FAS user (Matrix, with matrix.fas_server) mentions them.
type Mentions struct {
	// Label says why they are named ("escalate").
	Label string
	// Users are FAS user names, or other contacts, as configured.
	Users []string
}

// Text is how a text transport shows ms: "label: a, b"; "" when there is
// no one.
func (ms *Mentions) Text() string {
	if ms == nil || len(ms.Users) == 0 {
		return ""
	}
	return ms.Label + ": " + strings.Join(ms.Users, ", ")
}

// Link is a URL with the word that names it.
type Link struct {
	Label string
	URL   string
}

// Table is rows of cells under named columns.
type Table struct {
	Columns []Column
	Rows    [][]string
}

// Column is a table column's heading and alignment.
type Column struct {
	Name string
	// Right aligns the column's cells to the right (numbers).
	Right bool
	// URL says the column's cells are addresses, which a transport with
	// markup makes links.
	URL bool
}

// Text is a message of kind made of text, one line per "\n".
func Text(kind Kind, text string) Message {
	return Message{Kind: kind, Lines: strings.Split(text, "\n")}
}

// Normalized is m with every element of Lines and Pre one line (an
// element holding "\n" becomes several), and the footer, the links and
// the table's cells without control characters (each becomes a space), so
// that no text can break a line or a table's layout. Every method here
// works on the normalized message; a transport that reads the parts
// itself normalizes first.
func (m Message) Normalized() Message {
	m.Lines, m.Pre = splitLines(m.Lines), splitLines(m.Pre)
	m.Footer = oneLine(m.Footer)
	if m.Mentions != nil {
		ms := &Mentions{Label: oneLine(m.Mentions.Label), Users: make([]string, len(m.Mentions.Users))}
		for i, u := range m.Mentions.Users {
			ms.Users[i] = oneLine(u)
		}
		m.Mentions = ms
	}
	if len(m.Links) > 0 {
		links := make([]Link, len(m.Links))
		for i, l := range m.Links {
			links[i] = Link{Label: oneLine(l.Label), URL: oneLine(l.URL)}
		}
		m.Links = links
	}
	if m.Table != nil && !m.Table.clean() {
		t := &Table{Columns: make([]Column, len(m.Table.Columns)), Rows: make([][]string, len(m.Table.Rows))}
		for i, c := range m.Table.Columns {
			c.Name = oneLine(c.Name)
			t.Columns[i] = c
		}
		for i, r := range m.Table.Rows {
			t.Rows[i] = make([]string, len(r))
			for j, cell := range r {
				t.Rows[i][j] = oneLine(cell)
			}
		}
		m.Table = t
	}
	return m
}

// clean reports whether no heading or cell of t holds a control character.
func (t *Table) clean() bool {
	for _, c := range t.Columns {
		if strings.ContainsFunc(c.Name, unicode.IsControl) {
			return false
		}
	}
	for _, r := range t.Rows {
		for _, cell := range r {
			if strings.ContainsFunc(cell, unicode.IsControl) {
				return false
			}
		}
	}
	return true
}

// splitLines is ls with each element holding "\n" split into lines; ls
// itself when none does.
func splitLines(ls []string) []string {
	if !slices.ContainsFunc(ls, func(l string) bool { return strings.Contains(l, "\n") }) {
		return ls
	}
	var out []string
	for _, l := range ls {
		out = append(out, strings.Split(l, "\n")...)
	}
	return out
}

// oneLine is s with each control character (line breaks, tabs, IRC
// formatting codes) replaced by a space.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// Headline is the first line with the kind's prefix, the links and the
// mentions, as a text transport shows it.
func (m Message) Headline() string {
	m = m.Normalized()
	head := ""
	if len(m.Lines) > 0 {
		head = m.Lines[0]
	}
	head = m.Kind.Prefix() + head
	for i, l := range m.Links {
		sep := "; "
		if i == 0 && head == "" {
			sep = ""
		}
		head += sep + l.Label + ": " + l.URL
	}
	// A dash, not "; ": a link right before it stays a link a client can
	// tell from the punctuation.
	if who := m.Mentions.Text(); who != "" {
		if head != "" {
			head += " — "
		}
		head += who
	}
	return head
}

// Body is the message's text lines without the footer: the headline, the
// other lines, the table (a heading line, then one line per row, columns
// aligned) and the preformatted text.
func (m Message) Body() []string {
	m = m.Normalized()
	out := make([]string, 0, 1+len(m.Lines)+len(m.Pre)+m.Table.height())
	out = append(out, m.Headline())
	if len(m.Lines) > 1 {
		out = append(out, m.Lines[1:]...)
	}
	out = append(out, m.Table.Lines()...)
	out = append(out, m.Pre...)
	return out
}

// TextLines is the message as a text transport shows it: Body, then the
// footer.
func (m Message) TextLines() []string {
	out := m.Body()
	if f := oneLine(m.Footer); f != "" {
		out = append(out, f)
	}
	return out
}

// String is TextLines joined by newlines.
func (m Message) String() string { return strings.Join(m.TextLines(), "\n") }

// Len is how many text lines the message has, the footer included.
func (m Message) Len() int {
	m = m.Normalized()
	n := max(len(m.Lines), 1) + m.Table.height() + len(m.Pre)
	if m.Footer != "" {
		n++
	}
	return n
}

// Cap shortens m to at most limit text lines (Len), keeping the headline
// and the footer and taking whole lines off the end of the other parts,
// and reports how many lines it left out. room lines are kept free for
// the transport's note about what was left out. A table keeps its heading
// when it keeps at least one row.
func (m Message) Cap(limit, room int) (Message, int) {
	m = m.Normalized()
	total := m.Len()
	if total <= limit {
		return m, 0
	}
	budget := limit - room - 1 // the headline
	if m.Footer != "" {
		budget--
	}
	budget = max(budget, 0)
	out := Message{Kind: m.Kind, Links: m.Links, Footer: m.Footer, Mentions: m.Mentions}
	if len(m.Lines) > 0 {
		out.Lines = []string{m.Lines[0]}
	}
	shown := 1
	if len(m.Lines) > 1 {
		var n int
		out.Lines, n = appendUpTo(out.Lines, m.Lines[1:], budget)
		budget -= n
		shown += n
	}
	if m.Table != nil && len(m.Table.Rows) > 0 && budget >= 2 {
		rows, n := appendUpTo(nil, m.Table.Rows, budget-1)
		out.Table = &Table{Columns: m.Table.Columns, Rows: rows}
		budget -= n + 1
		shown += n + 1
	}
	var n int
	out.Pre, n = appendUpTo(nil, m.Pre, budget)
	shown += n
	if m.Footer != "" {
		shown++
	}
	return out, total - shown
}

// appendUpTo appends at most n elements of from to to, and says how many.
func appendUpTo[T any](to, from []T, n int) ([]T, int) {
	n = max(min(n, len(from)), 0)
	return append(to, from[:n]...), n
}

// height is how many text lines the table takes: its heading and rows,
// or none without rows.
func (t *Table) height() int {
	if t == nil || len(t.Rows) == 0 {
		return 0
	}
	return 1 + len(t.Rows)
}

// Lines is the table as text: a heading line, then one line per row, each
// column as wide as its widest cell, two spaces apart, with no trailing
// spaces. A table without rows has no lines.
func (t *Table) Lines() []string {
	if t.height() == 0 {
		return nil
	}
	width := make([]int, len(t.Columns))
	for i, c := range t.Columns {
		width[i] = utf8.RuneCountInString(c.Name)
	}
	for _, r := range t.Rows {
		for i := range min(len(r), len(width)) {
			width[i] = max(width[i], utf8.RuneCountInString(oneLine(r[i])))
		}
	}
	heading := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		heading[i] = c.Name
	}
	out := make([]string, 0, 1+len(t.Rows))
	out = append(out, t.line(heading, width))
	for _, r := range t.Rows {
		out = append(out, t.line(r, width))
	}
	return out
}

// line lays out one row's cells in the columns' widths.
func (t *Table) line(cells []string, width []int) string {
	var b strings.Builder
	for i, w := range width {
		cell := ""
		if i < len(cells) {
			cell = oneLine(cells[i])
		}
		if i > 0 {
			b.WriteString("  ")
		}
		pad := strings.Repeat(" ", max(w-utf8.RuneCountInString(cell), 0))
		if t.Columns[i].Right {
			b.WriteString(pad + cell)
		} else {
			b.WriteString(cell + pad)
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// Cut shortens s to at most n bytes, cutting on a rune boundary and
// marking the cut with "…": the one way kojibot shortens text, in replies,
// notifications and error messages alike.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
