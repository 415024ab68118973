// Package bot holds what kojibot's transports share: which message is a
// command (Route), the inbound rate limit per caller (UserLimits) and the
// interface to the commands (Handler); the structured reply they render is
// bot/reply. The transports themselves are bot/irc (IRC through girc) and
// bot/matrix (Matrix through mautrix); both hand commands to the commands
// dispatcher.
package bot

import (
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Route decides whether a message (an IRC PRIVMSG, a Matrix m.text) is a
// command and returns its text without the prefix; both transports use
// it. In a channel or room the line must start with prefix
// followed by a space or the end of the line; in private the prefix is
// optional. CTCP (and so ACTION) is never a command. The prefix is matched
// without regard to ASCII case.
func Route(prefix string, inChannel bool, text string) (string, bool) {
	if strings.HasPrefix(text, "\x01") {
		return "", false
	}
	rest, had := cutPrefix(text, prefix)
	if inChannel {
		if !had {
			return "", false
		}
		return strings.TrimSpace(rest), true
	}
	cmd := strings.TrimSpace(rest)
	return cmd, cmd != ""
}

// cutPrefix removes prefix from text when it is followed by white space or
// the end.
func cutPrefix(text, prefix string) (string, bool) {
	if len(text) < len(prefix) || !strings.EqualFold(text[:len(prefix)], prefix) {
		return text, false
	}
	rest := text[len(prefix):]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return text, false
	}
	return rest, true
}

// AnonymousBucket is the inbound rate-limit key that every caller without
// an identity of its own shares: on IRC whoever has no services account,
// whatever nick they use; on Matrix guests and users of other servers.
const AnonymousBucket = "anonymous"

// UserLimits is the inbound rate limit, one token bucket per caller, shared
// in shape by the transports: the IRC side keys it by services account, the
// Matrix side by FAS-server user id; callers without either share
// AnonymousBucket. Its methods are safe for concurrent use.
type UserLimits struct {
	every rate.Limit
	burst int
	now   func() time.Time

	mu sync.Mutex
	m  map[string]*userLimit
}

type userLimit struct {
	lim    *rate.Limiter
	warned bool
	last   time.Time
}

// idleForget is how long an unused bucket is kept; it is full again by then.
const idleForget = 10 * time.Minute

// NewUserLimits returns limits of perSecond commands a second per caller,
// in bursts of burst.
func NewUserLimits(perSecond float64, burst int) *UserLimits {
	return &UserLimits{every: rate.Limit(perSecond), burst: burst, now: time.Now, m: map[string]*userLimit{}}
}

// Allow reports whether key may run a command now; when it may not, warn
// is true the first time only, until a command is allowed again.
func (u *UserLimits) Allow(key string) (ok, warn bool) {
	now := u.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.m) > 1024 {
		for k, l := range u.m {
			if now.Sub(l.last) > idleForget {
				delete(u.m, k)
			}
		}
	}
	l := u.m[key]
	if l == nil {
		l = &userLimit{lim: rate.NewLimiter(u.every, u.burst)}
		u.m[key] = l
	}
	l.last = now
	if l.lim.AllowN(now, 1) {
		l.warned = false
		return true, false
	}
	warn = !l.warned
	l.warned = true
	return false, warn
}
