package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Confirmation is a destructive command waiting for "confirm <token>",
// as the store keeps it: enough to check who may confirm it, and to plan
// the command again in another process.
type Confirmation struct {
	// Token is the single-use token the caller was given.
	Token string
	// Identity is who may confirm: "<transport>:<account>" or
	// "fas:<user>".
	Identity string
	// Place is where it must be confirmed ("" for a private message).
	Place string
	// Transport is where it was asked ("irc", "matrix").
	Transport string
	// Command is the normalised command line that asked.
	Command string
	// Digest identifies the plan the caller was shown (a SHA-256, hex).
	Digest  string
	Expires time.Time
	Created time.Time
}

const confirmColumns = `token, identity, place, transport, command, digest, expires, created`

// AddConfirmation keeps c. It first drops the expired confirmations (at
// now), then, when max > 0 and max are kept already, the ones that
// expire first, so that at most max are kept. A token kept already is an
// error.
func (s *Store) AddConfirmation(ctx context.Context, c Confirmation, now time.Time, max int) error {
	if c.Token == "" || c.Identity == "" {
		return errors.New("state: a confirmation with no token or identity")
	}
	err := s.write(ctx, func(q querier) error {
		if _, err := q.ExecContext(ctx, `DELETE FROM confirmations WHERE expires < ?`, nanos(now)); err != nil {
			return err
		}
		if max > 0 {
			if _, err := s.trim(ctx, q, "confirmations", "token", "expires DESC, token", max-1); err != nil {
				return err
			}
		}
		_, err := q.ExecContext(ctx, `INSERT INTO confirmations (`+confirmColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			c.Token, c.Identity, c.Place, c.Transport, c.Command, c.Digest, nanos(c.Expires), nanos(c.Created))
		return err
	})
	if err != nil {
		return fmt.Errorf("state: keeping a confirmation: %w", err)
	}
	return nil
}

// scanner is a row of a query: *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanConfirmation(r scanner) (Confirmation, error) {
	var c Confirmation
	var expires, created int64
	if err := r.Scan(&c.Token, &c.Identity, &c.Place, &c.Transport, &c.Command, &c.Digest, &expires, &created); err != nil {
		return Confirmation{}, err
	}
	c.Expires, c.Created = time.Unix(0, expires), time.Unix(0, created)
	return c, nil
}

// Confirmation returns the confirmation of token, expired or not, and
// whether the store keeps one. It changes nothing.
func (s *Store) Confirmation(ctx context.Context, token string) (Confirmation, bool, error) {
	c, err := scanConfirmation(s.db.QueryRowContext(ctx, `SELECT `+confirmColumns+` FROM confirmations WHERE token = ?`, token))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Confirmation{}, false, nil
	case err != nil:
		return Confirmation{}, false, fmt.Errorf("state: reading a confirmation: %w", err)
	}
	return c, true, nil
}

// TakeConfirmation removes the confirmation of token and returns it: of
// any number of callers (in this process or others) taking the same
// token, exactly one gets ok, the one that may run it. A store bound to
// a leader whose term has ended takes nothing (ErrFenced).
func (s *Store) TakeConfirmation(ctx context.Context, token string) (c Confirmation, ok bool, err error) {
	err = s.write(ctx, func(q querier) error {
		var err error
		c, err = scanConfirmation(q.QueryRowContext(ctx, `DELETE FROM confirmations WHERE token = ? RETURNING `+confirmColumns, token))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		ok = true
		return nil
	})
	if err != nil {
		return Confirmation{}, false, fmt.Errorf("state: taking a confirmation: %w", err)
	}
	return c, ok, nil
}
