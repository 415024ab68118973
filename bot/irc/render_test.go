package irc

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fedora-infra/kojibot/bot/reply"
)

var testSelf = selfMask{Nick: "kojibot", User: "~kojibot", Host: "127.0.0.1"}

// info is an Info message of s.
func info(s string) reply.Message { return reply.Text(reply.Info, s) }

func numbered(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

// parseWire splits "CMD target :text".
func parseWire(t *testing.T, line string) (cmd, target, text string) {
	t.Helper()
	head, text, ok := strings.Cut(line, " :")
	if !ok {
		t.Fatalf("malformed line %q", line)
	}
	cmd, target, _ = strings.Cut(head, " ")
	return cmd, target, text
}

// checkWire asserts each line fits 512 bytes once the server adds our
// prefix, is valid UTF-8 and carries no CR/LF/NUL.
func checkWire(t *testing.T, ls []string) {
	t.Helper()
	prefix := ":" + testSelf.Nick + "!" + testSelf.User + "@" + testSelf.Host + " "
	for _, l := range ls {
		if n := len(prefix) + len(l) + 2; n > 512 {
			t.Errorf("line is %d bytes on the wire: %q", n, l)
		}
		if !utf8.ValidString(l) || strings.ContainsAny(l, "\r\n\x00") {
			t.Errorf("bad line %q", l)
		}
	}
}

func TestRenderChannelShort(t *testing.T) {
	r := renderer{maxLines: 4, lineBytes: 350, self: testSelf}
	main, bulk := r.reply("alice", "#fedora-admin", info("error: no such host\nusage: host <name>\n"))
	want := []string{"PRIVMSG #fedora-admin :alice: error: no such host", "PRIVMSG #fedora-admin :alice: usage: host <name>"}
	if strings.Join(main, "|") != strings.Join(want, "|") || bulk != nil {
		t.Errorf("got %q + %q, want %q", main, bulk, want)
	}
}

func TestRenderChannelSummarised(t *testing.T) {
	r := renderer{maxLines: 4, lineBytes: 350, self: testSelf}
	text := numbered(40)
	main, bulk := r.reply("alice", "#fedora-admin", info(text))
	checkWire(t, main)
	checkWire(t, bulk)
	if len(main) != 4 {
		t.Fatalf("channel got %d lines, want 4: %q", len(main), main)
	}
	for i, l := range main[:3] {
		if want := fmt.Sprintf("PRIVMSG #fedora-admin :alice: line %d", i+1); l != want {
			t.Errorf("channel line %d = %q, want %q", i, l, want)
		}
	}
	if want := "PRIVMSG #fedora-admin :alice: … 37 more lines sent to you by private notice"; main[3] != want {
		t.Errorf("summary %q, want %q", main[3], want)
	}
	if len(bulk) != 40 {
		t.Fatalf("private copy has %d lines, want 40", len(bulk))
	}
	var whole []string
	for _, l := range bulk {
		cmd, target, text := parseWire(t, l)
		if cmd != "NOTICE" || target != "alice" {
			t.Fatalf("private copy line %q: want NOTICE to alice", l)
		}
		whole = append(whole, text)
	}
	if got := strings.Join(whole, "\n") + "\n"; got != text {
		t.Errorf("private copy differs from the reply:\n%s", got)
	}
}

func TestRenderChannelSummaryCountsSplitLines(t *testing.T) {
	r := renderer{maxLines: 4, lineBytes: 100, self: testSelf}
	// One long line of 1000 bytes of CJK: cut into several wire lines, so
	// it must be summarised even though it has no "\n".
	text := strings.Repeat("日本語", 111) + "!"
	main, bulk := r.reply("bob", "#c", info(text))
	checkWire(t, main)
	if len(main) != 4 || !strings.Contains(main[3], "more lines sent to you by private notice") {
		t.Fatalf("channel got %q", main)
	}
	var rebuilt strings.Builder
	for _, l := range bulk {
		_, _, txt := parseWire(t, l)
		if len(txt) > 100 {
			t.Errorf("NOTICE text of %d bytes exceeds line_bytes", len(txt))
		}
		rebuilt.WriteString(txt)
	}
	if rebuilt.String() != text {
		t.Errorf("private copy lost text: %q", rebuilt.String())
	}
}

func TestRenderChannelLongOutputLink(t *testing.T) {
	var published string
	r := renderer{maxLines: 3, lineBytes: 350, self: testSelf, longOutput: func(text string) (string, bool) {
		published = text
		return "http://bot.example/out/1", true
	}}
	main, bulk := r.reply("alice", "#c", info(numbered(10)))
	if bulk != nil {
		t.Errorf("with a link, no private copy expected; got %d lines", len(bulk))
	}
	if len(main) != 3 || main[2] != "PRIVMSG #c :alice: … 8 more lines: http://bot.example/out/1" {
		t.Errorf("got %q", main)
	}
	if published != strings.TrimRight(numbered(10), "\n") {
		t.Errorf("published %q", published)
	}
}

func TestRenderPrivate(t *testing.T) {
	r := renderer{maxLines: 4, lineBytes: 350, self: testSelf}
	main, bulk := r.reply("alice", "", info(numbered(10)))
	if len(main) != 10 || bulk != nil {
		t.Fatalf("private reply: %d lines + %d bulk, want 10 + 0", len(main), len(bulk))
	}
	if main[0] != "PRIVMSG alice :line 1" {
		t.Errorf("private reply is addressed or mis-targeted: %q", main[0])
	}
	main, _ = r.reply("alice", "", info("a\n\nb"))
	if main[1] != "PRIVMSG alice : " {
		t.Errorf("empty line rendered as %q, want one space", main[1])
	}
	main, _ = r.reply("alice", "", info(numbered(maxBulkLines+50)))
	if len(main) != maxBulkLines || !strings.Contains(main[len(main)-1], "51 more lines cut") {
		t.Errorf("huge private reply: %d lines, last %q", len(main), main[len(main)-1])
	}
	if main, bulk := r.reply("alice", "#c", info("\n\n")); main != nil || bulk != nil {
		t.Errorf("blank reply rendered as %q %q", main, bulk)
	}
}

func TestRenderNotify(t *testing.T) {
	r := renderer{maxLines: 4, lineBytes: 350, self: testSelf}
	got := r.notify("#ops", "disk /mnt/koji at 93%")
	if len(got) != 1 || got[0] != "PRIVMSG #ops :disk /mnt/koji at 93%" {
		t.Errorf("got %q", got)
	}
	got = r.notify("#ops", numbered(6))
	if len(got) != 4 || got[3] != "PRIVMSG #ops :… 3 more lines not shown" {
		t.Errorf("long notification: %q", got)
	}
}

// TestRenderKeepsTheTokenLine: a summarised confirmation still shows its
// footer, the line with the token, in the channel, and the token is never
// published on the long-output page.
func TestRenderKeepsTheTokenLine(t *testing.T) {
	var published string
	r := renderer{maxLines: 4, lineBytes: 350, self: testSelf, longOutput: func(text string) (string, bool) {
		published = text
		return "http://bot.example/out/2", true
	}}
	m := reply.Text(reply.Confirm, "clean up xenbuilder2\n"+strings.TrimRight(numbered(10), "\n"))
	m.Footer = "to go ahead: !koji confirm abcd1234 (within 5m; only you, here)"
	main, _ := r.reply("alice", "#c", m)
	if len(main) != 4 {
		t.Fatalf("%d lines, want 4: %q", len(main), main)
	}
	if want := "PRIVMSG #c :alice: confirm: clean up xenbuilder2"; main[0] != want {
		t.Errorf("first line %q, want %q", main[0], want)
	}
	if want := "PRIVMSG #c :alice: to go ahead: !koji confirm abcd1234 (within 5m; only you, here)"; main[3] != want {
		t.Errorf("last line %q, want %q", main[3], want)
	}
	if want := "PRIVMSG #c :alice: … 9 more lines: http://bot.example/out/2"; main[2] != want {
		t.Errorf("note %q, want %q", main[2], want)
	}
	if strings.Contains(published, "abcd1234") || !strings.Contains(published, "line 10") {
		t.Errorf("published %q: want the plan without the token", published)
	}
	// At the smallest max_lines the token still comes, after the headline
	// and the note: one line over rather than a confirmation without it.
	r.maxLines = 2
	if main, _ := r.reply("alice", "#c", m); len(main) != 3 || main[0] != "PRIVMSG #c :alice: confirm: clean up xenbuilder2" ||
		main[1] != "PRIVMSG #c :alice: … 10 more lines: http://bot.example/out/2" || !strings.Contains(main[2], "confirm abcd1234") {
		t.Errorf("max_lines 2: %q", main)
	}
	r.maxLines = 4
	// Short enough: the footer is simply the last line.
	m = reply.Message{Kind: reply.Confirm, Lines: []string{"reboot ppc3"}, Footer: "to go ahead: !koji confirm 12345678"}
	if main, _ := r.reply("alice", "#c", m); len(main) != 2 || main[1] != "PRIVMSG #c :alice: to go ahead: !koji confirm 12345678" {
		t.Errorf("short confirmation: %q", main)
	}
}

// TestRenderTable: a table reaches IRC as its text rendering, a heading
// line and one aligned line per row, counted against max_lines like any
// other line; the links follow the headline.
func TestRenderTable(t *testing.T) {
	r := renderer{maxLines: 6, lineBytes: 350, self: testSelf}
	m := reply.Message{Lines: []string{"2 hosts"}, Links: []reply.Link{{Label: "page", URL: "http://bot.example/p"}},
		Table: &reply.Table{Columns: []reply.Column{{Name: "host"}, {Name: "load", Right: true}},
			Rows: [][]string{{"ppc3.fedora.redhat.com", "1.5"}, {"x86-01", "12"}}}}
	main, _ := r.reply("alice", "#c", m)
	want := []string{
		"PRIVMSG #c :alice: 2 hosts; page: http://bot.example/p",
		"PRIVMSG #c :alice: host                    load",
		"PRIVMSG #c :alice: ppc3.fedora.redhat.com   1.5",
		"PRIVMSG #c :alice: x86-01                    12",
	}
	if strings.Join(main, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(main, "\n"), strings.Join(want, "\n"))
	}
	// Summarised where only the heading would fit: the heading goes too.
	r.maxLines = 4
	m.Footer = "to go ahead: !koji confirm 12345678"
	main, _ = r.reply("alice", "#c", m)
	want = []string{
		"PRIVMSG #c :alice: 2 hosts; page: http://bot.example/p",
		"PRIVMSG #c :alice: … 3 more lines sent to you by private notice",
		"PRIVMSG #c :alice: to go ahead: !koji confirm 12345678",
	}
	if strings.Join(main, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(main, "\n"), strings.Join(want, "\n"))
	}
}
