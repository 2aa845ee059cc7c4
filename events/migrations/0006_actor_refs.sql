-- The feed's actor filter, indexed outside the append.
--
-- An event is about actor X when it is in X's own stream (actor-X, found by the
-- (stream_id, stream_version) key) or when some string value anywhere in its data equals X.
-- Migration 0005 answered the second half with a GIN index over every string of the data,
-- which every append had to evaluate (a jsonpath walk) and insert into (about 20 entries per
-- event) inside its own transaction. Appends now write nothing for it: event_actor_refs holds,
-- for every event up to a checkpoint in feed order, the string values of its data that can be
-- an actor id (events.domain.commands.Id; titles, quotes, URLs, dates and prose cannot, so
-- need no entry), and readers of the filter bring it up to the feed's horizon before they read
-- (EventStore.read_all, a few events at a time under continuous writes). Events past the
-- checkpoint are tested one by one, exactly, so a page is complete whatever the checkpoint.

DROP INDEX events_data_strings;

-- The strings of an event's data that can be an actor id, each once, sorted. The store's
-- catch-up (events/store.py, INDEX_ACTOR_REFS_SQL) and the backfill below both use it.
CREATE FUNCTION event_actor_ids(data jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT value ORDER BY value), '{}')
    FROM (
        SELECT item #>> '{}' AS value
        FROM jsonb_path_query(data, 'strict $.** ? (@.type() == "string")') AS item
    ) AS strings
    WHERE length(value) <= 100 AND value ~ '^[a-z0-9][a-z0-9_.]*$'
$$;

-- Only events that hold at least one such string have a row; the checkpoint says how far
-- every event has been looked at. Keyed like the log, so a page joins back by its key. Never
-- scanned in parallel: a lookup reads a few index pages, and with statistics not yet caught up
-- with the rows the catch-up adds, the planner started two workers for it (8 ms at 1M events
-- against 0.4 ms without, bench.views).
CREATE TABLE event_actor_refs (
    transaction_id  xid8 NOT NULL,
    position        bigint NOT NULL,
    actor_ids       text[] NOT NULL,
    CONSTRAINT event_actor_refs_pkey PRIMARY KEY (transaction_id, position)
) WITH (parallel_workers = 0);

-- One row: the feed cursor up to which event_actor_refs is complete. Moved in the same
-- transaction as the rows it covers, and only across events below the horizon, which can no
-- longer change (the feed's own argument, events/store.py).
CREATE TABLE event_actor_refs_checkpoint (
    single          boolean PRIMARY KEY DEFAULT true CHECK (single),
    transaction_id  xid8 NOT NULL,
    position        bigint NOT NULL
);

-- Every event below the horizon now, in one statement so that the rows and the checkpoint
-- cover exactly the same events.
WITH horizon AS (
    SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin
), refs AS (
    INSERT INTO event_actor_refs (transaction_id, position, actor_ids)
    SELECT transaction_id, position, ids
    FROM (
        SELECT transaction_id, position, event_actor_ids(data) AS ids
        FROM events, horizon
        WHERE transaction_id < horizon.xmin
    ) AS looked_at
    WHERE cardinality(ids) > 0
)
INSERT INTO event_actor_refs_checkpoint (transaction_id, position)
SELECT coalesce(last.transaction_id, '0'::xid8), coalesce(last.position, 0)
FROM horizon
LEFT JOIN LATERAL (
    SELECT transaction_id, position FROM events
    WHERE transaction_id < horizon.xmin
    ORDER BY transaction_id DESC, position DESC
    LIMIT 1
) AS last ON true;

-- Built after the backfill (one sort instead of a million insertions). New rows arrive in
-- batches from readers' catch-up, off the append path; they go through GIN's pending list,
-- which every lookup reads whole, so it is kept to the smallest size (64 kB: a few pages a
-- lookup) and merged into the tree in bulk whenever it fills. Without the pending list each
-- row's entries went into the tree one by one, 124 us an event against 13 us here, and with
-- the default 4 MB a lookup read up to 500 pages.
CREATE INDEX event_actor_refs_ids ON event_actor_refs USING gin (actor_ids)
    WITH (fastupdate = on, gin_pending_list_limit = 64);

REVOKE ALL ON event_actor_refs, event_actor_refs_checkpoint FROM PUBLIC;
GRANT SELECT, INSERT ON event_actor_refs TO diplofeed_app;
GRANT SELECT, UPDATE ON event_actor_refs_checkpoint TO diplofeed_app;

ANALYZE event_actor_refs;
