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
