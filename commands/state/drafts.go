package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DraftRecord is an outage draft as the store keeps it: the draft itself
// is Payload, encoded by its owner (package outage).
type DraftRecord struct {
	// ID is allocated by NewDraft from a sequence: ids never repeat, and
	// a newer draft has a higher one.
	ID int64
	// Token is the draft's random name, unique in the store.
	Token   string
	Created time.Time
	Payload string
}

// NewDraft keeps a draft named token and returns its id; then, when keep
// > 0, it drops the oldest drafts beyond keep.
func (s *Store) NewDraft(ctx context.Context, token string, created time.Time, payload string, keep int) (int64, error) {
	if token == "" {
		return 0, errors.New("state: a draft with no token")
	}
	var id int64
	err := s.write(ctx, func(q querier) error {
		if err := q.QueryRowContext(ctx, `INSERT INTO drafts (token, created, payload) VALUES (?, ?, ?) RETURNING id`,
			token, nanos(created), payload).Scan(&id); err != nil {
			return err
		}
		if keep <= 0 {
			return nil
		}
		_, err := s.trim(ctx, q, "drafts", "id", "id DESC", keep)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("state: keeping an outage draft: %w", err)
	}
	return id, nil
}

const draftColumns = `id, token, created, payload`

func scanDraft(r scanner) (DraftRecord, error) {
	var d DraftRecord
	var created int64
	if err := r.Scan(&d.ID, &d.Token, &created, &d.Payload); err != nil {
		return DraftRecord{}, err
	}
	d.Created = time.Unix(0, created)
	return d, nil
}

func (s *Store) oneDraft(ctx context.Context, where string, arg any) (DraftRecord, bool, error) {
	d, err := scanDraft(s.db.QueryRowContext(ctx, `SELECT `+draftColumns+` FROM drafts WHERE `+where+` = ?`, arg))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return DraftRecord{}, false, nil
	case err != nil:
		return DraftRecord{}, false, fmt.Errorf("state: reading an outage draft: %w", err)
	}
	return d, true, nil
}

// Draft returns the draft of id, and whether it is still kept.
func (s *Store) Draft(ctx context.Context, id int64) (DraftRecord, bool, error) {
	return s.oneDraft(ctx, "id", id)
}

// DraftByToken returns the draft named token, and whether it is still
// kept. An empty token names none.
func (s *Store) DraftByToken(ctx context.Context, token string) (DraftRecord, bool, error) {
	if token == "" {
		return DraftRecord{}, false, nil
	}
	return s.oneDraft(ctx, "token", token)
}

// Drafts returns the kept drafts, newest first.
func (s *Store) Drafts(ctx context.Context) ([]DraftRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+draftColumns+` FROM drafts ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("state: reading the outage drafts: %w", err)
	}
	defer rows.Close()
	var out []DraftRecord
	for rows.Next() {
		d, err := scanDraft(rows)
		if err != nil {
			return nil, fmt.Errorf("state: reading the outage drafts: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: reading the outage drafts: %w", err)
	}
	return out, nil
}
