package commands

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/redact"
)

// publicError renders err for a reply: each Fleet failure in it reduced to
// its host and kind (fleet.Summary), the context around it kept, and the
// rest redacted of addresses and paths.
func publicError(err error) string {
	if err == nil {
		return ""
	}
	// errors.Join: one line per error, each rendered on its own.
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		errs := u.Unwrap()
		texts := make([]string, 0, len(errs))
		for _, e := range errs {
			if e != nil {
				texts = append(texts, e.Error())
			}
		}
		if len(texts) > 1 && strings.Join(texts, "\n") == err.Error() {
			out := make([]string, 0, len(errs))
			for _, e := range errs {
				if e != nil {
					out = append(out, publicError(e))
				}
			}
			return strings.Join(out, "\n")
		}
	}
	text := err.Error()
	if s, ok := fleet.Summary(err); ok {
		if i := strings.Index(text, "fleet: "); i >= 0 {
			text = text[:i] + s
		} else {
			text = s
		}
	}
	return redact.Text(text)
}

// isFleetError reports whether err wraps one of the Fleet's failures.
func isFleetError(err error) bool {
	_, ok := fleet.Kind(err)
	return ok && !errors.Is(err, fleet.ErrInvalid)
}

// cutText shortens s to at most n bytes on a rune boundary, marking the cut.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
