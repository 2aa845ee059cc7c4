-- Two lookups that scanned the whole log, made index lookups.
--
-- A time to a feed cursor (EventStore.cursor_at, for "as of <time>" reads): the last visible
-- event recorded at or before the time, ties broken by feed order. The index holds the feed
-- key too, so the lookup is one backward step along it (an index-only scan where the
-- visibility map allows), whatever the log's size.
CREATE INDEX events_recorded_at ON events (recorded_at, transaction_id, position);

-- The feed's actor filter: an event is about an actor when any string value anywhere in its
-- data equals the actor id (or it is in the actor's own stream, which the (stream_id,
-- stream_version) key already finds). The index holds every string value of the data, hashed
-- (jsonb_path_ops), and is queried with
--     jsonb_path_query_array(data, 'strict $.** ? (@.type() == "string")') @> jsonb_build_array($id)
-- which is exactly "some string value equals the id" (containment of a string in an array of
-- strings is equality with one of them). The expression must be written identically in the
-- query (events/store.py, _DATA_STRINGS) for the planner to match it. A rare or unknown actor
-- is then a bitmap of its own events, sorted and cut to the page, instead of a walk of the
-- whole log; for a frequent one the planner keeps walking the feed key, which finds a page
-- within a few thousand rows. fastupdate (the default) queues new entries in the index's
-- pending list, so an append adds one small write instead of one per distinct string.
CREATE INDEX events_data_strings ON events USING gin (
    jsonb_path_query_array(data, 'strict $.** ? (@.type() == "string")') jsonb_path_ops
);

-- Statistics on the new expression (ANALYZE samples the index expression), which let the
-- planner tell a rare actor from a frequent one.
ANALYZE events;
