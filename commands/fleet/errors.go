package fleet

import (
	"context"
	"errors"
	"fmt"
	"sort"
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
