package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/kojiapi"
	"github.com/fedora-infra/kojibot/commands/kojidb"
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

// systemMessage maps a known failure of a system package to a short reply
// that names the failure, never an address (the database's host:port) or a
// path: the caller logs the whole error.
func systemMessage(err error) (string, bool) {
	var perm *kojidb.PermissionError
	var hubPerm *kojiapi.PermissionError
	var refused *kojiapi.RefusedError
	var fault *kojiapi.Fault
	switch {
	case errors.Is(err, kojidb.ErrUnavailable):
		return "the Koji database is unavailable right now; nothing was changed, try again later", true
	case errors.As(err, &perm):
		return perm.Reply(), true
	case errors.As(err, &hubPerm):
		return redact.Text(hubPerm.Reply()), true
	case errors.Is(err, kojiapi.ErrLogin):
		if errors.As(err, &fault) {
			return redact.Text("the Koji hub refused the login (Koji: " + fault.Message() + "); nothing was done"), true
		}
		return "kojibot cannot log in to the Koji hub (its log says why); nothing was done", true
	case kojiapi.IsFault(err, "ServerOffline"):
		// The hub lost its database, or is in maintenance: it refuses
		// every call before running it (and a write caught mid-way is
		// rolled back with its transaction).
		return redact.Text("the Koji hub is offline (Koji: " + kojiapi.OfflineReason(err) + "); nothing was changed, try again later"), true
	case errors.As(err, &refused):
		return redact.Text(refused.Error()), true
	case errors.As(err, &fault):
		return redact.Text("Koji refused: " + fault.Message()), true
	case errors.Is(err, kojiapi.ErrOutcomeUnknown):
		return kojiapi.ErrOutcomeUnknown.Error(), true
	case errors.Is(err, kojiapi.ErrNotAnswering):
		return kojiapi.ErrNotAnswering.Error(), true
	case errors.Is(err, kojidb.ErrBadCapacity):
		return "capacity must be a number greater than 1 (Koji's own limit)", true
	case errors.Is(err, kojidb.ErrNoHost):
		return redact.Text(err.Error()), true
	case isFleetError(err):
		return publicError(err), true
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out; nothing more was done", true
	case errors.Is(err, context.Canceled):
		return "cancelled", true
	}
	return "", false
}

// remoteMessage is a short reason for a failed remote step, for the caller
// (who names the host): the kind of failure, never the host's address, a
// file path or an ssh-keyscan recipe. The Fleet logs a host key failure in
// full.
func remoteMessage(err error) string {
	if kind, ok := fleet.Kind(err); ok {
		return kind
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return reply.Cut(publicError(err), 200)
}

// UserError is an error whose message is fit for the caller as it is.
type UserError struct{ Msg string }

// Error implements error: the message as it is.
func (e *UserError) Error() string { return e.Msg }

// Userf makes a UserError.
func Userf(format string, a ...any) error { return &UserError{Msg: fmt.Sprintf(format, a...)} }

// userMessage turns a handler's error into a short reply: a UserError as it
// is, known system failures by their meaning, anything else by its text
// with addresses, paths and ssh-keyscan recipes taken out. The whole error
// goes to the log.
func (d *Dispatcher) userMessage(c *Call, err error) string {
	var ue *UserError
	if errors.As(err, &ue) {
		return ue.Msg
	}
	if msg, ok := systemMessage(err); ok {
		c.Log.Warn("command failed", "error", err)
		return msg
	}
	c.Log.Error("command failed", "error", err)
	return fmt.Sprintf("%s failed: %s", c.Spec.Name, publicError(err))
}
