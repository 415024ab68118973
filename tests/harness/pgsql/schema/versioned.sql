-- Koji hub schema in its 1.33+ shape (host_config versioned, host.update_time
-- written by every kojid check-in), reduced to the tables kojibot reads and
-- writes. Written for kojibot's tests from the facts in reference/koji.md; it is
-- not Koji's own schema file. Run as the database owner (the hub's role).

CREATE TABLE events (
    id SERIAL NOT NULL PRIMARY KEY,
    time TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- get_event opens a new event and returns its id; the hub calls it once per
-- transaction and stamps every versioned row of that transaction with it.
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

-- The unversioned part of a build host: what kojid's updateHost writes.
CREATE TABLE host (
    id SERIAL NOT NULL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    name VARCHAR(128) UNIQUE NOT NULL,
    update_time TIMESTAMPTZ,
    task_load FLOAT CHECK (NOT task_load < 0) NOT NULL DEFAULT 0.0,
    ready BOOLEAN NOT NULL DEFAULT FALSE
);

-- The versioned part: exactly one row per host has active = TRUE; editing
-- revokes it (active NULL, revoke_event, revoker_id) and inserts a new one.
CREATE TABLE host_config (
    host_id INTEGER NOT NULL REFERENCES host (id),
    arches TEXT,
    capacity FLOAT CHECK (capacity > 1) NOT NULL DEFAULT 2.0,
    description TEXT,
    comment TEXT,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    create_event INTEGER NOT NULL REFERENCES events (id) DEFAULT get_event(),
    revoke_event INTEGER REFERENCES events (id),
    creator_id INTEGER NOT NULL REFERENCES users (id),
    revoker_id INTEGER REFERENCES users (id),
    active BOOLEAN DEFAULT TRUE CHECK (active),
    CONSTRAINT active_revoke_sane CHECK (
        (active IS NULL AND revoke_event IS NOT NULL AND revoker_id IS NOT NULL)
        OR (active IS NOT NULL AND revoke_event IS NULL AND revoker_id IS NULL)),
    PRIMARY KEY (create_event, host_id),
    UNIQUE (host_id, active)
);
CREATE INDEX host_config_by_active_and_enabled ON host_config (active, enabled);

CREATE TABLE sessions (
    id SERIAL NOT NULL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    expired BOOLEAN NOT NULL DEFAULT FALSE,
    closed BOOLEAN NOT NULL DEFAULT FALSE,
    master INTEGER REFERENCES sessions (id),
    key VARCHAR(255),
    authtype INTEGER,
    hostip VARCHAR(255),
    callnum INTEGER,
    start_time TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    update_time TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    renew_time TIMESTAMPTZ,
    exclusive BOOLEAN CHECK (exclusive)
);
CREATE INDEX sessions_active_and_recent ON sessions (expired, master, update_time);

CREATE TABLE tag (
    id SERIAL NOT NULL PRIMARY KEY,
    name VARCHAR(50) UNIQUE NOT NULL
);

CREATE TABLE repo (
    id SERIAL NOT NULL PRIMARY KEY,
    create_event INTEGER NOT NULL REFERENCES events (id) DEFAULT get_event(),
    tag_id INTEGER NOT NULL REFERENCES tag (id),
    state INTEGER,
    dist BOOLEAN DEFAULT FALSE
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
CREATE INDEX standard_buildroot_host ON standard_buildroot (host_id, state);
