package irc

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// rejoin is splitText's inverse: "\n" before every piece that starts a line.
func rejoin(ps []piece) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 && !p.Cont {
			b.WriteByte('\n')
		}
		b.WriteString(p.Text)
	}
	return b.String()
}

// checkSplit asserts the splitter's contract for one input.
func checkSplit(t *testing.T, text string, max int) []piece {
	t.Helper()
	ps := splitText(text, max)
	if got := rejoin(ps); got != text {
		t.Fatalf("splitText(%q, %d): rejoined %q", text, max, got)
	}
	for i, p := range ps {
		if len(p.Text) > max {
			t.Errorf("splitText(%q, %d): piece %d is %d bytes", text, max, i, len(p.Text))
		}
		if utf8.ValidString(text) && !utf8.ValidString(p.Text) {
			t.Errorf("splitText(%q, %d): piece %d %q is not valid UTF-8", text, max, i, p.Text)
		}
		if strings.Contains(p.Text, "\n") {
			t.Errorf("splitText(%q, %d): piece %d contains a newline", text, max, i)
		}
		if p.Cont && p.Text == "" {
			t.Errorf("splitText(%q, %d): empty continuation piece %d", text, max, i)
		}
	}
	return ps
}

func TestSplitTextExamples(t *testing.T) {
	tests := []struct {
		name string
		text string
		max  int
		want []piece
	}{
		{"empty", "", 20, []piece{{"", false}}},
		{"fits exactly", strings.Repeat("a", 20), 20, []piece{{strings.Repeat("a", 20), false}}},
		{"one over", strings.Repeat("a", 21), 20, []piece{{strings.Repeat("a", 20), false}, {"a", true}}},
		{"newlines and empty lines", "a\n\nb\n", 20, []piece{{"a", false}, {"", false}, {"b", false}, {"", false}}},
		{"prefers a space past half", "aaaaaaaaaaaaaa bbbbbbbbbb", 20,
			[]piece{{"aaaaaaaaaaaaaa ", false}, {"bbbbbbbbbb", true}}},
		{"ignores a space before half", "aa bbbbbbbbbbbbbbbbbbbbbbb", 20,
			[]piece{{"aa bbbbbbbbbbbbbbbbb", false}, {"bbbbbb", true}}},
		// é is 2 bytes: 17 ASCII + é ends at 19, the next é would end at 21.
		{"two-byte rune at the edge", strings.Repeat("x", 17) + "éé", 20,
			[]piece{{strings.Repeat("x", 17) + "é", false}, {"é", true}}},
		// 日 is 3 bytes: 6 of them are 18 bytes, the 7th would make 21.
		{"CJK", strings.Repeat("日", 8), 20, []piece{{strings.Repeat("日", 6), false}, {"日日", true}}},
		// 🚀 is 4 bytes: 5 of them fill 20 exactly.
		{"emoji exact", strings.Repeat("🚀", 6), 20, []piece{{strings.Repeat("🚀", 5), false}, {"🚀", true}}},
		{"emoji off by one", "x" + strings.Repeat("🚀", 5), 20, []piece{{"x" + strings.Repeat("🚀", 4), false}, {"🚀", true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkSplit(t, tt.text, tt.max)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("splitText(%q, %d)\n got %+v\nwant %+v", tt.text, tt.max, got, tt.want)
			}
		})
	}
}

// TestSplitTextProperties runs the contract over random text mixing ASCII,
// spaces, newlines, 2-, 3- and 4-byte runes and combining marks, for every
// budget from the minimum up.
func TestSplitTextProperties(t *testing.T) {
	alphabet := []string{"a", "b", "Z", "0", " ", " ", "\n", "é", "ß", "ж", "日", "本", "語", "🚀", "👍🏽", "e\u0301", "\t", "\u200d"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		var b strings.Builder
		n := rng.IntN(300)
		for j := 0; j < n; j++ {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		max := minTextBudget + rng.IntN(80)
		checkSplit(t, b.String(), max)
	}
}

func TestSplitTextInvalidUTF8(t *testing.T) {
	in := "ok \xff\xfe" + strings.Repeat("\x80", 40) + " end"
	ps := checkSplit(t, in, minTextBudget)
	if len(ps) < 3 {
		t.Errorf("got %d pieces, want the long input cut", len(ps))
	}
}

func TestSplitTextRaisesTinyBudget(t *testing.T) {
	ps := splitText(strings.Repeat("🚀", 10), 1)
	for _, p := range ps {
		if len(p.Text) > minTextBudget || !utf8.ValidString(p.Text) {
			t.Errorf("piece %q: over %d bytes or invalid", p.Text, minTextBudget)
		}
	}
}

func TestTextBudget(t *testing.T) {
	self := selfMask{Nick: "kojibot", User: "~kojibot", Host: "127.0.0.1"}
	// ":kojibot!~kojibot@127.0.0.1 PRIVMSG #fedora-admin :" is 51 bytes, + CRLF.
	if got, want := textBudget(0, self, "PRIVMSG", "#fedora-admin"), 512-51-2; got != want {
		t.Errorf("uncapped budget = %d, want %d", got, want)
	}
	if got := textBudget(350, self, "PRIVMSG", "#fedora-admin"); got != 350 {
		t.Errorf("capped budget = %d, want 350", got)
	}
	long := selfMask{Nick: strings.Repeat("n", 30), User: "~" + strings.Repeat("u", 10), Host: strings.Repeat("h", 63)}
	target := "#" + strings.Repeat("c", 63)
	line := ":" + long.Nick + "!" + long.User + "@" + long.Host + " NOTICE " + target + " :"
	got := textBudget(1000, long, "NOTICE", target)
	if len(line)+got+2 != 512 {
		t.Errorf("budget %d + overhead %d + CRLF != 512", got, len(line))
	}
}

func TestCleanText(t *testing.T) {
	tests := map[string]string{
		"a\r\nb\n\n":  "a\nb",
		"a\x00b\rc":   "ab\nc",
		"bad \xff ok": "bad \uFFFD ok",
		"\n\n":        "",
	}
	for in, want := range tests {
		if got := cleanText(in); got != want {
			t.Errorf("cleanText(%q) = %q, want %q", in, got, want)
		}
	}
}
