-- The term of leadership among kojibot processes sharing this store: one
-- row, whose term only ever goes up (Store.TryLead).

-- +goose Up
CREATE TABLE leader (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	term   BIGINT NOT NULL CHECK (term > 0),
	holder TEXT NOT NULL,
	since  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE leader;
