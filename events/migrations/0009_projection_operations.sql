-- Projection tables are made by whoever runs a projection: the API's runners (as
-- diplofeed_app), or an operator's `diplofeed project` or `diplofeed rebuild` run as the owner.
-- Whatever the owner makes in the projections schema from now on, the application role may use;
-- a rebuild calls grant_projection_tables() for tables its role made, and tables an earlier
-- rebuild left to the owner alone are granted now.

ALTER DEFAULT PRIVILEGES IN SCHEMA projections
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO diplofeed_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA projections
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO diplofeed_app;

-- Grants diplofeed_app the use of every projection table and sequence the calling role owns
-- (only those: granting on another role's table is an error).
CREATE FUNCTION grant_projection_tables() RETURNS void
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS $$
DECLARE
    t record;
BEGIN
    IF current_user = 'diplofeed_app' THEN
        RETURN;
    END IF;
    FOR t IN
        SELECT c.oid::regclass AS name, c.relkind
        FROM pg_class AS c
        WHERE c.relnamespace = 'projections'::regnamespace
          AND c.relkind IN ('r', 'p', 'S')
          AND pg_get_userbyid(c.relowner) = current_user
    LOOP
        IF t.relkind = 'S' THEN
            EXECUTE format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %s TO diplofeed_app', t.name);
        ELSE
            EXECUTE format(
                'GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLE %s TO diplofeed_app',
                t.name
            );
        END IF;
    END LOOP;
END
$$;

SELECT grant_projection_tables();

-- Events a projection could not apply. A runner that fails on one event however often it
-- retries records it here and pauses before it (its other events, and every other projection,
-- go on); an operator releases it, to be tried again after a fix ('retry') or gone past
-- ('skip'), and the runner marks what it then did.
CREATE TABLE projection_quarantine (
    name            text NOT NULL,
    version         integer NOT NULL CHECK (version >= 1),
    transaction_id  xid8 NOT NULL,
    position        bigint NOT NULL,
    event_id        uuid NOT NULL,
    type            text NOT NULL,
    error           text NOT NULL,
    attempts        integer NOT NULL CHECK (attempts >= 1),
    status          text NOT NULL DEFAULT 'held'
                    CHECK (status IN ('held', 'retry', 'skip', 'applied', 'skipped')),
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    released_at     timestamptz,
    CONSTRAINT projection_quarantine_pkey PRIMARY KEY (name, version, transaction_id, position)
);

CREATE INDEX projection_quarantine_held ON projection_quarantine (name, version)
    WHERE status = 'held';

GRANT SELECT, INSERT, UPDATE ON projection_quarantine TO diplofeed_app;
