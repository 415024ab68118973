package state

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Sample is one reading of a mount the watcher checks.
type Sample struct {
	At time.Time
	// Percent is how full the mount was (0–100).
	Percent float64
	// Size is the mount's size in bytes (0: unknown).
	Size uint64
}

// AddSample records a reading of the mount checked under check, and drops
// that check's readings taken before keepFrom, so the table stays bounded.
// A second reading at the same instant replaces the first.
func (s *Store) AddSample(ctx context.Context, check string, r Sample, keepFrom time.Time) error {
	if check == "" {
		return errors.New("state: a sample with no check")
	}
	if math.IsNaN(r.Percent) || math.IsInf(r.Percent, 0) || r.Size > math.MaxInt64 {
		return errors.New("state: a sample out of range")
	}
	keep, at := orZero(keepFrom), nanos(r.At)
	err := s.write(ctx, func(q querier) error {
		if _, err := q.ExecContext(ctx, `DELETE FROM samples WHERE check_name = ? AND (at < ? OR at = ?)`,
			check, keep, at); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, `INSERT INTO samples (check_name, at, percent, size) VALUES (?, ?, ?, ?)`,
			check, at, r.Percent, int64(r.Size))
		return err
	})
	if err != nil {
		return fmt.Errorf("state: keeping a reading of %s: %w", check, err)
	}
	return nil
}

// Samples returns check's readings taken at or after since, oldest first.
func (s *Store) Samples(ctx context.Context, check string, since time.Time) ([]Sample, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, percent, size FROM samples WHERE check_name = ? AND at >= ? ORDER BY at`,
		check, orZero(since))
	if err != nil {
		return nil, fmt.Errorf("state: reading the readings of %s: %w", check, err)
	}
	defer rows.Close()
	var out []Sample
	for rows.Next() {
		var at, size int64
		var r Sample
		if err := rows.Scan(&at, &r.Percent, &size); err != nil {
			return nil, fmt.Errorf("state: reading the readings of %s: %w", check, err)
		}
		r.At, r.Size = time.Unix(0, at), uint64(size)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: reading the readings of %s: %w", check, err)
	}
	return out, nil
}

// orZero is t in Unix nanoseconds, the zero time being 0 (the beginning),
// where nanos takes it for now.
func orZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
