package fleet

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// nasty are arguments a shell would otherwise interpret.
var nasty = []string{
	"",
	" ",
	"plain",
	"it's",
	"''",
	`"double" "quotes"`,
	`back\slash\`,
	"$(touch PWNED)",
	"`touch PWNED`",
	"${HOME}",
	"$HOME",
	"a;touch PWNED",
	"a|touch PWNED",
	"a&touch PWNED&",
	"a&&b||c",
	"line1\nline2\n",
	"\n",
	"tab\there",
	"*",
	"?[a-z]*",
	"~",
	"~root",
	"X=1",
	"-rf",
	"--",
	"-n",
	"#comment",
	"!history",
	"{a,b}",
	"(subshell)",
	"<in >out 2>&1",
	"ünïcödé ☃ 日本語",
	"\xff\xfe invalid utf-8",
	"\r\x1b[31mred",
	"'; touch PWNED; echo '",
}

// shells are the POSIX shells the quoting must hold in.
func shells(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, sh := range []string{"/bin/sh", "/bin/bash", "/bin/dash"} {
		if _, err := os.Stat(sh); err == nil {
			out = append(out, sh)
		}
	}
	if len(out) == 0 {
		t.Fatal("no POSIX shell found")
	}
	return out
}

// roundTrip runs `printf '<%s>' QUOTED...` in sh and returns what the
// arguments arrived as.
func roundTrip(t *testing.T, sh, dir string, args []string) string {
	t.Helper()
	line, err := Join(append([]string{"printf", "<%s>"}, args...))
	if err != nil {
		t.Fatalf("Join(%q): %v", args, err)
	}
	cmd := exec.Command(sh, "-c", line)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s -c %q: %v", sh, line, err)
	}
	return string(out)
}

func TestQuoteRoundTripsThroughShell(t *testing.T) {
	for _, sh := range shells(t) {
		dir := t.TempDir()
		for _, s := range nasty {
			if got, want := roundTrip(t, sh, dir, []string{s}), "<"+s+">"; got != want {
				q, _ := Quote(s)
				t.Errorf("%s: Quote(%q) = %s arrived as %q, want %q", sh, s, q, got, want)
			}
		}
		// All at once, as separate words.
		want := ""
		for _, s := range nasty {
			want += "<" + s + ">"
		}
		if got := roundTrip(t, sh, dir, nasty); got != want {
			t.Errorf("%s: joined arguments arrived as %q, want %q", sh, got, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "PWNED")); err == nil {
			t.Errorf("%s: a quoted argument ran a command", sh)
		}
	}
}

func TestQuoteForms(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"kojid", "kojid"},
		{"/var/lib/mock", "/var/lib/mock"},
		{"-B1", "-B1"},
		{"user@host:1,2+3%", "user@host:1,2+3%"},
		{"", "''"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"X=1", "'X=1'"},
		{"~", "'~'"},
	} {
		got, err := Quote(c.in)
		if err != nil || got != c.want {
			t.Errorf("Quote(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestQuoteRejectsNUL(t *testing.T) {
	for _, s := range []string{"\x00", "a\x00b", "rm -rf /\x00"} {
		if q, err := Quote(s); !errors.Is(err, ErrNUL) {
			t.Errorf("Quote(%q) = %q, %v; want ErrNUL", s, q, err)
		}
		if _, err := Join([]string{"echo", s}); !errors.Is(err, ErrNUL) {
			t.Errorf("Join with %q: %v; want ErrNUL", s, err)
		}
	}
	if _, err := Join(nil); err == nil {
		t.Error("Join(nil) succeeded")
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range nasty {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Quote(s)
		if err != nil {
			if !errors.Is(err, ErrNUL) {
				t.Fatalf("Quote(%q): %v", s, err)
			}
			return
		}
		cmd := exec.Command("/bin/sh", "-c", "printf '%s' "+q)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sh -c printf %s: %v", q, err)
		}
		if string(out) != s {
			t.Fatalf("Quote(%q) = %s arrived as %q", s, q, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "PWNED")); err == nil {
			t.Fatalf("Quote(%q) ran a command", s)
		}
	})
}
