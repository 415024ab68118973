package fleet

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Sentinel errors, matched with errors.Is. The errors the Fleet returns wrap
// one of them and name the host (its configured name and address).
var (
	// ErrUnknownHost: the name is not in the hosts map the Fleet was built with.
	ErrUnknownHost = errors.New("unknown host")
	// ErrUnknownHostKey: the host's key is not in ssh.known_hosts.
	ErrUnknownHostKey = errors.New("unknown host key")
	// ErrHostKeyChanged: ssh.known_hosts holds a different (or revoked) key
	// for the host.
	ErrHostKeyChanged = errors.New("host key changed")
	// ErrAuth: the host refused every key the Fleet offered.
	ErrAuth = errors.New("authentication refused")
	// ErrUnreachable: the host (or the jump host) could not be reached, did
	// not answer, or the connection was lost.
	ErrUnreachable = errors.New("unreachable")
	// ErrTimeout: a deadline passed (the command's, or the connection's).
	ErrTimeout = errors.New("timed out")
	// ErrInvalid: an argument failed validation before anything was sent.
	ErrInvalid = errors.New("invalid argument")
	// ErrClosed: the Fleet was closed.
	ErrClosed = errors.New("fleet closed")
	// ErrOutputTruncated: a command's output went over the output cap
	// (ssh.max_output or RunOptions.MaxOutput) and only its beginning was
	// kept, so its last record may be cut: nothing may be read from it as
	// if it were whole.
	ErrOutputTruncated = errors.New("output truncated")
)

// ctxError explains why ctx ended while doing op on host: ErrTimeout (also
// matching context.DeadlineExceeded) after a deadline, context.Canceled
// otherwise.
func ctxError(ctx context.Context, host, op string, limit time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		if limit <= 0 {
			return fmt.Errorf("fleet: %s: %s: %w: %w", host, op, ErrTimeout, context.DeadlineExceeded)
		}
		return fmt.Errorf("fleet: %s: %s: %w (limit %s): %w", host, op, ErrTimeout, limit.Round(time.Millisecond), context.DeadlineExceeded)
	}
	return fmt.Errorf("fleet: %s: %s: %w", host, op, ctx.Err())
}

// JoinErrors joins the failures of an Each fan-out, sorted by host, into one
// error (errors.Join), or nil when every host succeeded.
func JoinErrors(results map[string]error) error {
	hosts := make([]string, 0, len(results))
	for h, err := range results {
		if err != nil {
			hosts = append(hosts, h)
		}
	}
	sort.Strings(hosts)
	errs := make([]error, len(hosts))
	for i, h := range hosts {
		errs[i] = results[h]
	}
	return errors.Join(errs...)
}

// Kind names the kind of a Fleet failure in a few words fit for a chat
// channel ("unknown SSH host key (see the log)", "unreachable", "timed
// out"), without the host's address, a file path, a key fingerprint or an
// ssh-keyscan hint: the whole error is for the log. ok is false when err
// wraps none of the Fleet's sentinel errors.
func Kind(err error) (kind string, ok bool) {
	switch {
	case err == nil:
		return "", false
	case errors.Is(err, ErrHostKeyChanged):
		return "SSH host key changed (see the log)", true
	case errors.Is(err, ErrUnknownHostKey):
		return "unknown SSH host key (see the log)", true
	case errors.Is(err, ErrAuth):
		return "SSH login refused", true
	case errors.Is(err, ErrTimeout):
		return "timed out", true
	case errors.Is(err, ErrUnreachable):
		return "unreachable", true
	case errors.Is(err, ErrOutputTruncated):
		return "output over the size limit (ssh.max_output); nothing was read from it", true
	case errors.Is(err, ErrUnknownHost):
		return "not a configured host", true
	case errors.Is(err, ErrInvalid):
		return "invalid argument", true
	case errors.Is(err, ErrClosed):
		return "the bot is shutting down", true
	}
	return "", false
}

// Summary is Kind preceded by the configured name of the host the failure
// is about, when err names one: "xenbuilder4: unknown SSH host key (see
// the log)". The Fleet's errors start "fleet: <name> (<address>): " or
// "fleet: <name>: "; only the name is kept.
func Summary(err error) (string, bool) {
	kind, ok := Kind(err)
	if !ok {
		return "", false
	}
	if host := hostOf(err.Error()); host != "" {
		return host + ": " + kind, true
	}
	return kind, true
}

// hostOf returns the host name at the start of the first Fleet error in
// text, or "" when there is none.
func hostOf(text string) string {
	const prefix = "fleet: "
	i := strings.Index(text, prefix)
	if i < 0 {
		return ""
	}
	rest := text[i+len(prefix):]
	end := strings.IndexAny(rest, " :")
	if end <= 0 || !strings.HasPrefix(rest[end:], ":") && !strings.HasPrefix(rest[end:], " (") {
		return ""
	}
	name := rest[:end]
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return ""
		}
	}
	return name
}
