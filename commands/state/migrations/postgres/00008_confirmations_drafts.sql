-- The confirmations waiting for "confirm <token>" (Store.AddConfirmation,
-- Store.Confirmation, Store.TakeConfirmation) and the outage drafts
-- (Store.NewDraft, Store.Draft, Store.DraftByToken, Store.Drafts), kept so
-- that a restart, or a replica taking over, still sees them. Both are
-- bounded: each write prunes expired confirmations and old drafts.

-- +goose Up
CREATE TABLE confirmations (
	token     TEXT PRIMARY KEY,
	identity  TEXT NOT NULL,
	place     TEXT NOT NULL,
	transport TEXT NOT NULL,
	command   TEXT NOT NULL,
	digest    TEXT NOT NULL,
	expires   BIGINT NOT NULL,
	created   BIGINT NOT NULL
);

CREATE TABLE drafts (
	id      BIGSERIAL PRIMARY KEY,
	token   TEXT NOT NULL UNIQUE,
	created BIGINT NOT NULL,
	payload TEXT NOT NULL
);

-- +goose Down
DROP TABLE drafts;
DROP TABLE confirmations;
