-- Messages for the message bus that wait for the broker, oldest first
-- (Store.Enqueue, Store.Outbox, Store.Sent).

-- +goose Up
CREATE TABLE outbox (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	payload TEXT NOT NULL,
	queued  INTEGER NOT NULL
);

-- +goose Down
DROP TABLE outbox;
