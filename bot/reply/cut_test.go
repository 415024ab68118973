package reply

import (
	"strings"
	"testing"
	"unicode/utf8"
)

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
