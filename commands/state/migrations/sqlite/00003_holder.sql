-- Which process runs each job, and what each registered process is, as
-- the operators name them: holder is host:pid; role is "leader" or
-- "standby" for a `kojibot run` that shares the store with others ("" for
-- exec and for a single run).

-- +goose Up
ALTER TABLE jobs ADD COLUMN holder TEXT NOT NULL DEFAULT '';
ALTER TABLE procs ADD COLUMN holder TEXT NOT NULL DEFAULT '';
ALTER TABLE procs ADD COLUMN role TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE procs DROP COLUMN role;
ALTER TABLE procs DROP COLUMN holder;
ALTER TABLE jobs DROP COLUMN holder;
