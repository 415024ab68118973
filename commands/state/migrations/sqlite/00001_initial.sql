-- The store as kojibot made it before its schema was versioned. IF NOT
-- EXISTS: a store made then is adopted as it is. Version 2 (placeName, in
-- Go) adds jobs.place_name where it is missing.

-- +goose Up
CREATE TABLE IF NOT EXISTS procs (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	pid     INTEGER NOT NULL,
	started INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	host   TEXT NOT NULL,
	kind   TEXT NOT NULL,
	name   TEXT NOT NULL,
	job    TEXT NOT NULL,
	owner  TEXT NOT NULL,
	opened INTEGER NOT NULL,
	closed INTEGER,
	proc   INTEGER NOT NULL,
	pid    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_open ON journal (closed, proc);
CREATE TABLE IF NOT EXISTS jobs (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	owner      TEXT NOT NULL,
	command    TEXT NOT NULL,
	place      TEXT NOT NULL,
	result     TEXT NOT NULL DEFAULT '',
	started    INTEGER NOT NULL,
	finished   INTEGER,
	proc       INTEGER NOT NULL,
	pid        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cancels (
	job       INTEGER PRIMARY KEY,
	requester TEXT NOT NULL,
	place     TEXT NOT NULL,
	requested INTEGER NOT NULL,
	taken     INTEGER
);

-- +goose Down
DROP TABLE cancels;
DROP TABLE kv;
DROP TABLE jobs;
DROP TABLE journal;
DROP TABLE procs;
