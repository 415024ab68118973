-- The watcher's readings of the mounts it checks, kept so that a restart
-- (or a replica taking over) still predicts when a mount fills
-- (Store.AddSample, Store.Samples). Bounded: each write prunes what is
-- older than the watcher keeps.

-- +goose Up
CREATE TABLE samples (
	check_name TEXT NOT NULL,
	at         INTEGER NOT NULL,
	percent    REAL NOT NULL,
	size       INTEGER NOT NULL,
	PRIMARY KEY (check_name, at)
);

-- +goose Down
DROP TABLE samples;
