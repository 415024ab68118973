package watch

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/redact"
)

// maxReason bounds, in bytes, the error text a CHECK FAILED line quotes;
// the log has the whole of it.
const maxReason = 200

// pct writes a percentage to one decimal, without a trailing ".0":
// "93%", "93.5%".
func pct(p float64) string {
	return strconv.FormatFloat(math.Round(p*10)/10, 'f', -1, 64) + "%"
}

// human writes a duration the way an operator says it: "45s", "14m",
// "2h5m", "6h", and past two days "3d4h".
func human(d time.Duration) string {
	if d < time.Minute {
		return max(d, 0).Round(time.Second).String()
	}
	d = d.Round(time.Minute)
	h, m := int64(d/time.Hour), int64(d%time.Hour/time.Minute)
	switch {
	case h >= 48:
		if h%24 == 0 {
			return fmt.Sprintf("%dd", h/24)
		}
		return fmt.Sprintf("%dd%dh", h/24, h%24)
	case h == 0:
		return fmt.Sprintf("%dm", m)
	case m == 0:
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%dm", h, m)
}

// reason makes an error's text fit one IRC line: its first line, spaces
// folded, cut at maxReason bytes on a rune boundary with "…" saying so.
func reason(text string) string {
	if i := strings.IndexAny(text, "\r\n"); i >= 0 {
		text = text[:i]
	}
	// The notify channel is public: no addresses, paths or ssh-keyscan
	// recipes (the watcher logs the whole error).
	text = redact.Text(text)
	text = strings.Join(strings.Fields(text), " ")
	if text == "" {
		return "unknown error"
	}
	return reply.Cut(text, maxReason)
}
