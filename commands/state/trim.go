package state

import "context"

// trim deletes the rows of table that come after the first keep in order
// (the rows to keep first), each named by its key column, and says how
// many it deleted. table, key and order are the store's own SQL, never
// input.
func (s *Store) trim(ctx context.Context, q querier, table, key, order string, keep int) (int64, error) {
	// SQLite takes OFFSET only after a LIMIT (-1: none); PostgreSQL does
	// not take LIMIT -1.
	limit := " LIMIT -1"
	if s.db.pg {
		limit = ""
	}
	res, err := q.ExecContext(ctx, `DELETE FROM `+table+` WHERE `+key+` IN (SELECT `+key+` FROM `+table+` ORDER BY `+order+limit+` OFFSET ?)`, keep)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
