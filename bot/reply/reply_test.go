package reply

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func hostsTable(n int) *Table {
	t := &Table{Columns: []Column{{Name: "host"}, {Name: "load", Right: true}, {Name: "note"}}}
	for i := 1; i <= n; i++ {
		t.Rows = append(t.Rows, []string{fmt.Sprintf("b%02d", i), fmt.Sprint(i * 3), ""})
	}
	return t
}

func TestTextLines(t *testing.T) {
	tests := []struct {
		name string
		m    Message
		want []string
	}{
		{"text", Text(Info, "one\ntwo"), []string{"one", "two"}},
		{"prefix", Text(Denied, "capacity needs sysadmin-build"), []string{"denied: capacity needs sysadmin-build"}},
		{"links", Message{Lines: []string{"job 3 started"}, Links: []Link{{"progress", "https://bot/jobs/x"}, {"log", "https://bot/l"}}},
			[]string{"job 3 started; progress: https://bot/jobs/x; log: https://bot/l"}},
		{"table", Message{Kind: Confirm, Lines: []string{"plan"}, Footer: "to go ahead: confirm abc",
			Table: &Table{Columns: []Column{{Name: "host"}, {Name: "size", Right: true}, {Name: "kind"}},
				Rows: [][]string{{"ppc3.fedora.redhat.com", "1.5 GiB", "mock"}, {"é", "12 B", ""}}}},
			[]string{"confirm: plan", "host                       size  kind", "ppc3.fedora.redhat.com  1.5 GiB  mock", "é                          12 B"}},
		{"empty table", Message{Lines: []string{"none"}, Table: &Table{Columns: []Column{{Name: "x"}}}}, []string{"none"}},
		{"mentions", Message{Lines: []string{"ALERT full"}, Links: []Link{{"outage draft o1", "https://bot/d/x"}},
			Mentions: &Mentions{Label: "escalate", Users: []string{"kevin", "nir\nik"}}},
			[]string{"ALERT full; outage draft o1: https://bot/d/x — escalate: kevin, nir ik"}},
		{"no one to mention", Message{Lines: []string{"ALERT full"}, Mentions: &Mentions{Label: "escalate"}}, []string{"ALERT full"}},
		{"pre", Message{Lines: []string{"draft o1:"}, Pre: []string{"To: list", "", "  indented"}}, []string{"draft o1:", "To: list", "", "  indented"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.m.TextLines()
			want := tt.want
			if tt.m.Footer != "" {
				want = append(want, tt.m.Footer)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if tt.m.Len() != len(got) {
				t.Errorf("Len %d, TextLines has %d", tt.m.Len(), len(got))
			}
		})
	}
}

// TestCap: the headline and the footer stay; whole lines go from the end
// of the lines, then the table's rows, then the preformatted text; a table
// keeps its heading only with a row under it; what is left out is counted
// exactly.
func TestCap(t *testing.T) {
	m := Message{Kind: Confirm, Lines: []string{"plan", "stop kojid"}, Table: hostsTable(10), Pre: []string{"p1", "p2"}, Footer: "to go ahead"}
	total := m.Len() // 2 lines + heading + 10 rows + 2 pre + footer = 16
	if total != 16 {
		t.Fatalf("Len %d, want 16", total)
	}
	for limit := 1; limit <= 17; limit++ {
		for room := 0; room <= 1; room++ {
			c, more := m.Cap(limit, room)
			if limit >= total {
				if more != 0 || c.Len() != total {
					t.Errorf("limit %d: capped a message that fits (%d left out)", limit, more)
				}
				continue
			}
			if c.Len()+more != total {
				t.Errorf("limit %d room %d: %d shown + %d left out != %d", limit, room, c.Len(), more, total)
			}
			if limit >= 3 && c.Len() > limit-room {
				t.Errorf("limit %d room %d: %d lines shown", limit, room, c.Len())
			}
			if c.Lines[0] != "plan" || c.Footer != "to go ahead" || c.Kind != Confirm {
				t.Errorf("limit %d: headline, footer or kind lost: %+v", limit, c)
			}
			if c.Table != nil && len(c.Table.Rows) == 0 {
				t.Errorf("limit %d: a heading without rows", limit)
			}
		}
	}
	c, more := m.Cap(6, 1) // headline, footer, a line for the note: 3 left
	if got := c.TextLines(); strings.Join(got, "|") != "confirm: plan|stop kojid|host  load  note|b01      3|to go ahead" || more != 11 {
		t.Errorf("Cap(6, 1) = %q, %d left out", got, more)
	}
	// Unchanged: Cap works on a copy.
	if m.Len() != total || len(m.Table.Rows) != 10 {
		t.Error("Cap changed the message it was given")
	}
}

// TestNormalized: no part of a message can break a line or a table's
// layout: "\n" in a line makes two lines (counted as such), control
// characters in cells, links and the footer become spaces.
func TestNormalized(t *testing.T) {
	m := Message{Kind: Error, Lines: []string{"a\nb", "c"}, Pre: []string{"p\nq"}, Footer: "f\r\nx",
		Links: []Link{{Label: "l\n", URL: "http://x/\ty"}},
		Table: &Table{Columns: []Column{{Name: "h\n1"}, {Name: "h2"}}, Rows: [][]string{{"x\ny", "\x02bold\x02"}}}}
	got := m.TextLines()
	want := []string{"error: a; l : http://x/ y", "b", "c", "h 1  h2", "x y   bold", "p", "q", "f  x"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if m.Len() != len(got) {
		t.Errorf("Len %d, %d lines", m.Len(), len(got))
	}
	if c, more := m.Cap(5, 1); c.Len()+more != len(got) || c.Len() > 4 {
		t.Errorf("Cap(5, 1): %d lines shown, %d left out, of %d", c.Len(), more, len(got))
	}
	if m.Lines[0] != "a\nb" || m.Table.Rows[0][0] != "x\ny" {
		t.Error("Normalized changed the message it was given")
	}
}

// TestCut: text is cut on a rune boundary, never inside one, and the cut
// is marked; text that fits is left alone.
func TestCut(t *testing.T) {
	if got := Cut("short", 10); got != "short" {
		t.Errorf("Cut(short) = %q", got)
	}
	long := strings.Repeat("日本", 200) // 3-byte runes
	for n := 1; n < 40; n++ {
		got := Cut(long, n)
		if !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || len(strings.TrimSuffix(got, "…")) > n {
			t.Errorf("Cut(%d) = %q: not a valid cut to %d bytes", n, got, n)
		}
	}
}
