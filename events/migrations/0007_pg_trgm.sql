-- The trigram operator class behind the actor search's index (projections/contacts/search.py).
-- Only a role that may create objects in the database can install an extension: the
-- migration's owner can, the projections' application role cannot. Installed where the server
-- ships it (PostgreSQL's contrib, which the official images and Debian's packages include);
-- on a server without it the search still answers, by filtering every actor, and the
-- projection's setup logs a warning saying so.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    END IF;
END
$$;
