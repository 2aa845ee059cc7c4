-- Two things that must not wait for what they cannot see: a command naming an actor another
-- process registered, and a retry of a write whose process died.

-- The actor events, in feed order, as soon as they commit (events/committed.py): the command
-- handler's directory reads what committed since its last read, which is both the
-- transactions past its last snapshot and those that snapshot saw in progress, along this key
-- rather than the feed's horizon, which a long transaction anywhere on the server holds back.
-- Partial, so a read walks actor events only (a first read all of them, not the whole log),
-- and an append of any other event writes nothing to it. The predicate is the feed's category
-- test, written identically in the queries for the planner to match it.
CREATE INDEX events_actor_streams ON events (transaction_id, position)
    WHERE split_part(stream_id, '-', 1) = 'actor';

-- The process holding a pending Idempotency-Key claim (service/idempotency.py): the key of an
-- advisory lock that process holds on a connection of its own for as long as it lives
-- (service/liveness.py). Once the lock is free its owner is gone, and the claim may be taken
-- over at once instead of when its lease runs out; a claim without an owner keeps the lease.
ALTER TABLE idempotency_keys ADD COLUMN owner integer;
