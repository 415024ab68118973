-- Messages for the message bus that wait for the broker, oldest first
-- (Store.Enqueue, Store.Outbox, Store.Sent).

-- +goose Up
CREATE TABLE outbox (
	id      BIGSERIAL PRIMARY KEY,
	payload TEXT NOT NULL,
	queued  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE outbox;
