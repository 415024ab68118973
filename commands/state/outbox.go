package state

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Queued is one message waiting in the outbox for the message bus.
type Queued struct {
	// ID orders the outbox: the oldest message has the lowest.
	ID int64
	// Payload is the message as its publisher encoded it.
	Payload string
	Queued  time.Time
}

// Enqueue adds payload at the end of the outbox and then drops the oldest
// messages beyond bound (bound <= 0: none is dropped); it returns how many
// it dropped.
func (s *Store) Enqueue(ctx context.Context, payload string, queued time.Time, bound int) (dropped int, err error) {
	if payload == "" {
		return 0, errors.New("state: an empty message")
	}
	err = s.write(ctx, func(q querier) error {
		if _, err := q.ExecContext(ctx, `INSERT INTO outbox (payload, queued) VALUES (?, ?)`, payload, nanos(queued)); err != nil {
			return err
		}
		if bound <= 0 {
			return nil
		}
		n, err := s.trim(ctx, q, "outbox", "id", "id DESC", bound)
		dropped = int(n)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("state: queueing a message: %w", err)
	}
	return dropped, nil
}

// Outbox returns up to limit messages of the outbox, oldest first.
func (s *Store) Outbox(ctx context.Context, limit int) ([]Queued, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, payload, queued FROM outbox ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("state: reading the outbox: %w", err)
	}
	defer rows.Close()
	var out []Queued
	for rows.Next() {
		var q Queued
		var at int64
		if err := rows.Scan(&q.ID, &q.Payload, &at); err != nil {
			return nil, fmt.Errorf("state: reading the outbox: %w", err)
		}
		q.Queued = time.Unix(0, at)
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: reading the outbox: %w", err)
	}
	return out, nil
}

// Sent removes the message id from the outbox: the broker has it. Like
// every write of a store bound to a leader, it is refused (ErrFenced) once
// a later leader's term began.
func (s *Store) Sent(ctx context.Context, id int64) error {
	if err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, id)
		return err
	}); err != nil {
		return fmt.Errorf("state: removing message %d from the outbox: %w", id, err)
	}
	return nil
}
