-- The event log. Rows are only ever inserted: triggers below reject every UPDATE, DELETE and
-- TRUNCATE, for every role including the owner, and the application role is granted nothing
-- but SELECT and INSERT.

DO $$
BEGIN
    -- Roles are cluster-wide, so two databases migrating at once may race to create it.
    CREATE ROLE diplofeed_app NOLOGIN;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

CREATE TABLE events (
    -- Assigned at INSERT, before commit: positions may commit out of order. Feed readers
    -- therefore order by (transaction_id, position) below the snapshot horizon; see
    -- events/store.py for the full argument.
    position        bigint GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text NOT NULL,
    stream_version  bigint NOT NULL,
    event_id        uuid NOT NULL,
    type            text NOT NULL,
    schema_version  integer NOT NULL,
    data            jsonb NOT NULL,
    metadata        jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- sha256(previous hash of the stream || version || digest of the content); events/hashing.py.
    hash            bytea NOT NULL,
    -- The feed's total order is the key. position needs no index of its own: the identity
    -- column alone assigns it, and readers only ever seek by the pair.
    CONSTRAINT events_pkey PRIMARY KEY (transaction_id, position),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_check CHECK (stream_version >= 1),
    CONSTRAINT events_schema_version_check CHECK (schema_version >= 1),
    CONSTRAINT events_hash_check CHECK (octet_length(hash) = 32),
    CONSTRAINT events_data_check CHECK (jsonb_typeof(data) = 'object'),
    CONSTRAINT events_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);

CREATE FUNCTION events_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the events table is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Record a correction or retraction event instead.';
END
$$;

-- Statement-level, so that even a statement matching no row is refused.
CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

REVOKE ALL ON events FROM PUBLIC;
GRANT SELECT, INSERT ON events TO diplofeed_app;
GRANT SELECT ON schema_migrations TO diplofeed_app;
