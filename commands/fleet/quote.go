package fleet

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNUL is returned by Quote for a string holding a NUL byte, which no
// POSIX shell word (and no C argv element) can carry.
var ErrNUL = errors.New("fleet: argument contains a NUL byte")

// Quote returns s as one word for a POSIX shell (sh, dash, bash, ksh): the
// remote shell hands the command exactly s, whatever it contains — quotes,
// $(...), backticks, ;|&, globs, newlines, UTF-8 or invalid UTF-8.
//
// Quote is the one quoting function of kojibot: every
// argument of every remote command passes through it. A string made only of
// characters that no shell treats specially ([A-Za-z0-9_@%+:,./-], not
// empty) is returned as is so that logs stay readable; anything else is put
// in single quotes, an embedded single quote closing the quotes, adding an
// escaped quote and reopening them:
//
//	it's  →  'it'\''s'
//
// Quoting does not stop a program from reading a leading "-" as an option:
// callers put "--" before arguments that come from users. A NUL byte is
// refused with ErrNUL.
func Quote(s string) (string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return "", fmt.Errorf("%w: %q", ErrNUL, s)
	}
	if s != "" && plainWord(s) {
		return s, nil
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'", nil
}

// plainWord reports whether every byte of s is one that a POSIX shell
// treats literally in every position of a word ("=" and "~" are left out:
// they mean something at the start of a word).
func plainWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("_@%+:,./-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Join quotes every element of argv with Quote and joins them with spaces,
// giving the command line a remote POSIX shell runs as exactly argv. An
// empty argv is an error.
func Join(argv []string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("fleet: empty command")
	}
	words := make([]string, len(argv))
	for i, a := range argv {
		q, err := Quote(a)
		if err != nil {
			return "", err
		}
		words[i] = q
	}
	return strings.Join(words, " "), nil
}
