-- koji-db-grants.sql: the least the kojibot database role needs on the Koji
-- database. kojibot's tests apply this very file to their databases.
--
-- With koji.hub.url (the recommended way: hosts through the hub's API) none
-- of this is needed: `connections` asks only
--   GRANT pg_read_all_stats, pg_signal_backend TO kojibot;
-- This file is for the database path (no koji.hub.url).
--
-- Run it in the Koji database as a superuser (the role memberships at the end
-- need one), after creating the role:
--   CREATE ROLE kojibot LOGIN PASSWORD '...';
--   psql -v ON_ERROR_STOP=1 -d koji -f koji-db-grants.sql
-- The role is called kojibot here: if yours differs, replace every kojibot
-- in this file (sed 's/kojibot/myrole/g'). It is safe to run again, and again
-- after a Koji schema upgrade (the generation is detected below).
--
-- The Koji user the bot acts as (koji.user) is another thing: a row of
-- Koji's users table, which must be a person (usertype 0), not blocked
-- (status 0), with the admin permission, or host on Koji 1.19 and later
-- (on Koji 1.34 and later, also through a group it belongs to):
--   koji grant-permission host kojibot
-- `kojibot check-config --probe` checks both.

DO $grants$
DECLARE
    bot CONSTANT text := 'kojibot';
BEGIN
    -- Every generation. Read: hosts, their users (koji.user's status, type
    -- and permissions), sessions (check-ins before Koji 1.33).
    EXECUTE format('GRANT SELECT ON host, users, sessions, permissions, user_perms TO %I', bot);
    -- get_event() inserts into events and returns its id.
    EXECUTE format('GRANT SELECT, INSERT ON events TO %I', bot);
    EXECUTE format('GRANT USAGE ON SEQUENCE events_id_seq TO %I', bot);

    -- Group memberships: from Koji 1.34 on, koji.user may hold host or
    -- admin through a group.
    IF to_regclass('user_groups') IS NOT NULL THEN
        EXECUTE format('GRANT SELECT ON user_groups TO %I', bot);
    END IF;

    -- Buildroots, for cleanup: standard_buildroot from Koji 1.11; before
    -- that, host_id and state live in buildroot itself.
    IF to_regclass('standard_buildroot') IS NOT NULL THEN
        EXECUTE format('GRANT SELECT ON standard_buildroot TO %I', bot);
    END IF;
    IF to_regclass('buildroot') IS NOT NULL THEN
        EXECUTE format('GRANT SELECT ON buildroot TO %I', bot);
    END IF;

    IF to_regclass('host_config') IS NOT NULL THEN
        -- Koji 1.16 and later: host_config is versioned. capacity, enable
        -- and disable revoke the active row and insert a new one, as the
        -- hub's editHost does.
        EXECUTE format('GRANT SELECT, INSERT ON host_config TO %I', bot);
        EXECUTE format('GRANT UPDATE (active, revoke_event, revoker_id) ON host_config TO %I', bot);
    ELSE
        -- Koji before 1.16: capacity, enabled and comment are edited in
        -- place in host.
        EXECUTE format('GRANT UPDATE (capacity, enabled, comment) ON host TO %I', bot);
    END IF;
END
$grants$;

-- `connections` lists the hub role's backends: without this, pg_stat_activity
-- hides other roles' queries. pg_monitor (which includes it) also does.
GRANT pg_read_all_stats TO kojibot;
-- `connections kill` terminates them with pg_terminate_backend (never a
-- superuser's backend).
GRANT pg_signal_backend TO kojibot;
