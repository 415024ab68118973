// Package redact removes from a text what a chat channel must not see:
// URLs (a DSN, FASJSON's address), network addresses, the bot's file paths
// and ssh-keyscan recipes. It keeps the rest, so that a reply or a
// notification still names the failure; the whole text goes to the log.
package redact

import (
	"regexp"
	"strings"
	"unicode"
)

// What an error replied in a channel must not carry: the bot's file paths
// (ssh.known_hosts, keys, state), network addresses (IP:port, host:port,
// URLs: a DSN or FASJSON's address) and ssh-keyscan recipes. The whole
// error goes to the log; the reply names the failure.
var (
	urlRE = regexp.MustCompile(`\b[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>` + "`" + `]+`)
	// [v6]:port, [v6]
	bracketRE = regexp.MustCompile(`\[[0-9A-Za-z:.%_-]*:[0-9A-Za-z:.%_-]*\](:[0-9]+)?`)
	// 1.2.3.4, 1.2.3.4:5432
	ipv4RE = regexp.MustCompile(`\b[0-9]{1,3}(\.[0-9]{1,3}){3}(:[0-9]+)?\b`)
	// ::1, fe80::1, 2001:db8::5 (compressed), or all eight groups.
	ipv6RE = regexp.MustCompile(`(\b[0-9A-Fa-f]{1,4}(:[0-9A-Fa-f]{1,4}){0,6})?::([0-9A-Fa-f]{1,4}(:[0-9A-Fa-f]{1,4}){0,6}\b)?|\b[0-9A-Fa-f]{1,4}(:[0-9A-Fa-f]{1,4}){7}\b`)
	// db3.example.org:5432, localhost:22 (a name with a letter in it).
	hostPortRE = regexp.MustCompile(`\b[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?)*:[0-9]{1,5}\b`)
	// An absolute or home path of two segments or more (/etc/kojibot/x,
	// ~/.ssh/id), or of one under a well-known root (/tmp, /etc).
	pathRE = regexp.MustCompile(`(^|[\s'"(\[=,;:` + "`" + `])(~?/[^\s'"()\[\],;` + "`" + `]+)`)
)

// wellKnownRoots are the one-segment paths that are still paths.
var wellKnownRoots = map[string]bool{
	"/etc": true, "/var": true, "/tmp": true, "/home": true, "/root": true, "/run": true,
	"/usr": true, "/opt": true, "/srv": true, "/mnt": true, "/proc": true, "/dev": true,
}

// Text removes from text what a channel must not see: URLs, addresses,
// file paths, and any clause that gives an ssh-keyscan or ssh-keygen
// recipe. It keeps the rest, so that the reply still names the failure.
func Text(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = redactLine(l)
	}
	return strings.Join(lines, "\n")
}

func redactLine(l string) string {
	for _, hint := range []string{"ssh-keyscan", "ssh-keygen", "known_hosts"} {
		if j := strings.Index(l, hint); j >= 0 {
			// Drop the clause that holds it, and everything after.
			cut := strings.LastIndexAny(l[:j], ";(—")
			if cut < 0 {
				cut = strings.LastIndex(l[:j], ": ")
			}
			if cut < 0 {
				cut = 0
			}
			l = strings.TrimRightFunc(l[:cut], func(r rune) bool { return unicode.IsSpace(r) || r == ':' || r == ',' })
			if l == "" {
				l = "SSH host key problem"
			}
			l += " (see the log)"
		}
	}
	l = urlRE.ReplaceAllStringFunc(l, func(m string) string {
		bare := strings.TrimRight(m, ".,:;)")
		return "<url>" + m[len(bare):] // the sentence's punctuation, not the URL's
	})
	l = bracketRE.ReplaceAllString(l, "<address>")
	l = ipv4RE.ReplaceAllString(l, "<address>")
	l = ipv6RE.ReplaceAllStringFunc(l, func(m string) string {
		if m == "::" {
			return m
		}
		return "<address>"
	})
	l = hostPortRE.ReplaceAllStringFunc(l, func(m string) string {
		host := m[:strings.LastIndexByte(m, ':')]
		if strings.IndexFunc(host, unicode.IsLetter) < 0 {
			return m // 03:04, a time
		}
		return "<address>"
	})
	l = pathRE.ReplaceAllStringFunc(l, func(m string) string {
		sub := pathRE.FindStringSubmatch(m)
		lead, path := sub[1], sub[2]
		bare := strings.TrimRight(path, ".:")
		trail := path[len(bare):] // the sentence's, not the path's
		p := strings.TrimPrefix(bare, "~")
		if strings.Count(strings.Trim(p, "/"), "/") >= 1 || wellKnownRoots[p] || strings.HasPrefix(path, "~/") {
			return lead + "<path>" + trail
		}
		return m
	})
	return l
}
