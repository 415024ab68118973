-- Koji hub schema in its pre-1.16 shape (capacity, arches and enabled live in
-- host and are edited in place; host has no update_time, the last check-in is
-- the newest sessions.update_time of the host's user), reduced to the tables
-- kojibot reads and writes. buildroot/standard_buildroot follow 1.11-1.15.
-- Written for kojibot's tests from the facts in reference/koji.md; it is not
-- Koji's own schema file. Timestamps are TIMESTAMP without time zone, as they
-- were then. Run as the database owner (the hub's role).

CREATE TABLE events (
    id SERIAL NOT NULL PRIMARY KEY,
    time TIMESTAMP NOT NULL DEFAULT NOW()
);

CREATE FUNCTION get_event() RETURNS INTEGER AS $$
    INSERT INTO events (time) VALUES (clock_timestamp()) RETURNING id;
$$ LANGUAGE SQL VOLATILE;

-- usertype: 0 normal, 1 host, 2 group. status: 0 normal, 1 blocked.
CREATE TABLE users (
    id SERIAL NOT NULL PRIMARY KEY,
    name VARCHAR(255) UNIQUE NOT NULL,
    password VARCHAR(255),
    status INTEGER NOT NULL DEFAULT 0,
    usertype INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE host (
    id SERIAL NOT NULL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    name VARCHAR(128) UNIQUE NOT NULL,
    arches TEXT,
    task_load FLOAT CHECK (NOT task_load < 0) NOT NULL DEFAULT 0.0,
    capacity FLOAT CHECK (capacity > 1) NOT NULL DEFAULT 2.0,
    description TEXT,
    comment TEXT,
    ready BOOLEAN NOT NULL DEFAULT FALSE,
    enabled BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE sessions (
    id SERIAL NOT NULL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    expired BOOLEAN NOT NULL DEFAULT FALSE,
    master INTEGER REFERENCES sessions (id),
    key VARCHAR(255),
    authtype INTEGER,
    hostip VARCHAR(255),
    callnum INTEGER,
    start_time TIMESTAMP NOT NULL DEFAULT NOW(),
    update_time TIMESTAMP NOT NULL DEFAULT NOW(),
    exclusive BOOLEAN CHECK (exclusive)
);

CREATE TABLE tag (
    id SERIAL NOT NULL PRIMARY KEY,
    name VARCHAR(50) UNIQUE NOT NULL
);

CREATE TABLE repo (
    id SERIAL NOT NULL PRIMARY KEY,
    create_event INTEGER NOT NULL REFERENCES events (id) DEFAULT get_event(),
    tag_id INTEGER NOT NULL REFERENCES tag (id),
    state INTEGER
);

CREATE TABLE buildroot (
    id SERIAL NOT NULL PRIMARY KEY,
    br_type INTEGER NOT NULL DEFAULT 0,
    cg_id INTEGER,
    container_arch TEXT,
    container_type TEXT,
    host_os TEXT,
    host_arch TEXT,
    extra TEXT
);

-- state: 0 INIT, 1 WAITING, 2 BUILDING, 3 EXPIRED.
CREATE TABLE standard_buildroot (
    buildroot_id INTEGER NOT NULL PRIMARY KEY REFERENCES buildroot (id),
    host_id INTEGER NOT NULL REFERENCES host (id),
    repo_id INTEGER NOT NULL REFERENCES repo (id),
    task_id INTEGER NOT NULL,
    create_event INTEGER NOT NULL REFERENCES events (id) DEFAULT get_event(),
    retire_event INTEGER,
    state INTEGER
);
