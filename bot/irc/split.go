package irc

import (
	"strings"
	"unicode/utf8"
)

// ircLineMax is the most bytes of one IRC line, CR LF included (RFC 1459;
// message tags have their own budget).
const ircLineMax = 512

// maxHostLen is assumed for our own host until the server tells us the real
// one; it is the usual HOSTLEN.
const maxHostLen = 63

// minTextBudget keeps the splitter making progress on absurd settings: no
// rune is longer than 4 bytes.
const minTextBudget = 16

// piece is one line on the wire as cut by splitText. Cont says it continues
// the previous piece's line (it was cut for length, not at a "\n").
type piece struct {
	Text string
	Cont bool
}

// splitText cuts text into pieces of at most max bytes: first at every
// "\n", then, for longer lines, at UTF-8 boundaries, preferring a space in
// the second half of the budget (the space stays at the end of the piece).
// Nothing is dropped: concatenating the pieces, with "\n" before every piece
// that is not a continuation, gives text back. An empty line is one empty
// piece. max below minTextBudget is raised to it.
func splitText(text string, max int) []piece {
	if max < minTextBudget {
		max = minTextBudget
	}
	var out []piece
	for _, line := range strings.Split(text, "\n") {
		cont := false
		for {
			n := cutPoint(line, max)
			out = append(out, piece{Text: line[:n], Cont: cont})
			line, cont = line[n:], true
			if line == "" {
				break
			}
		}
	}
	return out
}

// cutPoint returns how many bytes of s go in the next piece: all of s when
// it fits, else the longest run of whole runes within max, or up to the
// last space when that space is past the middle of the budget. Invalid
// bytes count as one-byte runes.
func cutPoint(s string, max int) int {
	if len(s) <= max {
		return len(s)
	}
	end, afterSpace := 0, 0
	for end < len(s) {
		_, size := utf8.DecodeRuneInString(s[end:])
		if end+size > max {
			break
		}
		end += size
		if s[end-size] == ' ' {
			afterSpace = end
		}
	}
	if end == 0 {
		return 1 // unreachable with max >= 4; guarantees progress anyway
	}
	if afterSpace > max/2 {
		return afterSpace
	}
	return end
}

// lines returns the text of the pieces.
func lines(ps []piece) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Text
	}
	return out
}

// selfMask is our own nick!user@host as other clients see it; its length is
// what the server adds in front of every message we send.
type selfMask struct {
	Nick, User, Host string
}

// textBudget is the most bytes of text that fit in one
// ":nick!user@host COMMAND target :text\r\n" line relayed by the server,
// capped by lineBytes when that is smaller.
func textBudget(lineBytes int, self selfMask, command, target string) int {
	overhead := len(":") + len(self.Nick) + len("!") + len(self.User) + len("@") + len(self.Host) +
		len(" ") + len(command) + len(" ") + len(target) + len(" :") + len("\r\n")
	b := ircLineMax - overhead
	if lineBytes > 0 && lineBytes < b {
		b = lineBytes
	}
	if b < minTextBudget {
		b = minTextBudget
	}
	return b
}

// cleanText makes reply text safe to put on the wire: invalid UTF-8 is
// replaced, CR and NUL are dropped (a lone CR would end the line early),
// and trailing newlines are trimmed.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.ContainsAny(s, "\r\x00") {
		s = strings.NewReplacer("\r\n", "\n", "\r", "\n", "\x00", "").Replace(s)
	}
	return strings.TrimRight(s, "\n")
}
