-- Where each projection (or any other follower of the feed) has got to, written in the same
-- transaction as the projection's own tables, and the schema those tables live in. Unlike the
-- event log, checkpoints change: the application role may update them.

CREATE TABLE projection_checkpoints (
    name            text NOT NULL,
    version         integer NOT NULL CHECK (version >= 1),
    transaction_id  xid8 NOT NULL DEFAULT '0',
    position        bigint NOT NULL DEFAULT 0,
    events          bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projection_checkpoints_pkey PRIMARY KEY (name, version)
);

GRANT SELECT, INSERT, UPDATE ON projection_checkpoints TO diplofeed_app;

CREATE SCHEMA projections;
GRANT USAGE, CREATE ON SCHEMA projections TO diplofeed_app;

-- Which version of each projection serves reads. A rebuild fills a new version's tables while
-- the old version keeps serving, then moves this pointer in one transaction.
CREATE TABLE projection_live (
    name        text PRIMARY KEY,
    version     integer NOT NULL CHECK (version >= 1),
    switched_at timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE ON projection_live TO diplofeed_app;
