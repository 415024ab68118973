-- kojibot's own state. Times are Unix nanoseconds, as in the SQLite store.

-- +goose Up
CREATE TABLE procs (
	id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	pid     BIGINT NOT NULL,
	started BIGINT NOT NULL
);
CREATE TABLE journal (
	id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	host   TEXT NOT NULL,
	kind   TEXT NOT NULL,
	name   TEXT NOT NULL,
	job    TEXT NOT NULL,
	owner  TEXT NOT NULL,
	opened BIGINT NOT NULL,
	closed BIGINT,
	proc   BIGINT NOT NULL,
	pid    BIGINT NOT NULL
);
CREATE INDEX journal_open ON journal (closed, proc);
CREATE TABLE jobs (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	owner      TEXT NOT NULL,
	command    TEXT NOT NULL,
	place      TEXT NOT NULL,
	result     TEXT NOT NULL DEFAULT '',
	started    BIGINT NOT NULL,
	finished   BIGINT,
	proc       BIGINT NOT NULL,
	pid        BIGINT NOT NULL,
	place_name TEXT NOT NULL DEFAULT ''
);
CREATE TABLE kv (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
CREATE TABLE cancels (
	job       BIGINT PRIMARY KEY,
	requester TEXT NOT NULL,
	place     TEXT NOT NULL,
	requested BIGINT NOT NULL,
	taken     BIGINT
);

-- +goose Down
DROP TABLE cancels;
DROP TABLE kv;
DROP TABLE jobs;
DROP TABLE journal;
DROP TABLE procs;
