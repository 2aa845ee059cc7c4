"""The append-only event log on PostgreSQL.

Ordering guarantee of the global feed
-------------------------------------
A follower paging with the cursors this module returns sees every committed event exactly once,
in one total order that every follower shares, and never sees an event whose transaction rolled
back. This holds even when transactions commit in another order than the one in which their
positions were assigned.

Technique: every row records the id of the transaction that wrote it
(``transaction_id xid8 DEFAULT pg_current_xact_id()``). The feed is ordered by the pair
``(transaction_id, position)`` and a read returns only rows whose transaction id is below
``pg_snapshot_xmin(pg_current_snapshot())``, the horizon below which every transaction in the
cluster has finished. Rows below the horizon can never change any more: no transaction that is
still running can add a row there, because its id is at or above the horizon; rolled-back rows
never become visible at all. So the ordered set of visible rows only ever grows at its end, and
a cursor (the pair of the last row seen) partitions the order into "delivered" and "to come".
Within one stream the feed order is also the version order: a version is only ever written
after its predecessor committed, and an autocommit append takes its transaction id after that,
hence a larger one. A caller's transaction may hold an id taken earlier, so appends inside one
check that the stream's last writer is older and refuse otherwise (``TransactionOrderError``).
Positions alone would not do: a position taken by a transaction that commits late lands behind
a cursor that has already moved past it (the bug that made Marten, Eventuous and others skip
events), and the cursor must be the pair, not the position (dba.stackexchange q/342896).

Why this technique: it keeps writers fully concurrent. Serialising appends through a table lock
(the ``eventsourcing`` library), one advisory lock, or a counter row (Commanded) also yields a
gap-free order, but measured 0.15x-0.45x of a raw INSERT's throughput here; time-based gap
skipping (Eventuous) can lose slow commits, and Marten's gap prover is complex and was the
source of repeated event-loss bugs. The price of the horizon is that a long transaction
anywhere in the cluster holds the feed back; the application's connections therefore run with
``statement_timeout`` and ``idle_in_transaction_session_timeout`` (``events.connect``) and
``events.horizon`` reports how far the horizon lags and which transaction holds it.

Appends insert every event of a call in one statement, so a call is atomic. The store checks the
expected version and extends the hash chain (``events.hashing``) against the stream's head,
which it reads, or takes from its cache of committed heads; either way the INSERT carries the
versions it computed, and ``UNIQUE (stream_id, stream_version)`` is what finally decides between
racing writers. Conflicts surface as unique violations on the version or on ``event_id`` and are
resolved explicitly (retry, replay or refuse), never swallowed by ``ON CONFLICT DO NOTHING``
(which silently dropped racing appends in Eventuous #553).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Final
from uuid import UUID

import asyncpg

from events.errors import (
    IdempotencyError,
    InvalidReadError,
    TransactionOrderError,
    WrongExpectedVersionError,
)
from events.expected import ANY, NO_STREAM, validate_expected
from events.follow import follow_feed
from events.group_commit import GroupCommit
from events.records import (
    START,
    AppendResult,
    Cursor,
    FeedFilter,
    FeedPage,
    NewEvent,
    RecordedEvent,
    StreamSlice,
    check_actor_id,
)
from events.rows import (
    EMPTY_HEAD,
    MAX_BATCH,
    AppendRequest,
    PendingAppend,
    PreparedEvent,
    StreamHead,
    append_result,
    check_stream_id,
    expectation_holds,
    extend_chain,
    insert_rows,
    prepare,
    same_content,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from datetime import datetime

    from events.notify import FeedListener, Notifier

__all__ = ("EVENT_COLUMNS", "MAX_BATCH", "MAX_PAGE", "Conn", "EventStore")

Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
"""A plain connection or one borrowed from a pool."""

MAX_PAGE: Final = 10_000
"""Most events one read may return."""
_MAX_CONFLICT_RETRIES: Final = 20


EVENT_COLUMNS: Final = (
    "position, transaction_id, stream_id, stream_version, event_id, type, schema_version, "
    "data::text, metadata::text, recorded_at, hash"
)
"""A stored event's columns, in ``RecordedEvent``'s field order."""

# One JSON array of rows (``events.rows.insert_rows``), each row an array read by position.
APPEND_SQL: Final = """
INSERT INTO events (stream_id, stream_version, event_id, type, schema_version, data, metadata,
                    hash)
SELECT r->>0, (r->>1)::bigint, (r->>2)::uuid, r->>3, (r->>4)::integer, r->5, r->6,
       decode(r->>7, 'base64')
FROM jsonb_array_elements($1::jsonb) AS input(r)
RETURNING stream_id, stream_version, position, transaction_id
"""

HEAD_SQL: Final = """
SELECT stream_version, hash FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1
"""

# In a caller's transaction, which may hold a transaction id taken before the stream's last
# writer took its own: appending then would put the new version before the old one in the feed.
HEAD_IN_TRANSACTION_SQL: Final = """
SELECT stream_version, hash, transaction_id > pg_current_xact_id() AS younger
FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1
"""

BY_EVENT_IDS_SQL: Final = f"""
SELECT {EVENT_COLUMNS} FROM events WHERE event_id = any($1::uuid[]) ORDER BY position
"""

# One statement, so one snapshot and one round trip: the stream's current version comes back
# with its events, and on a row of its own (nulls) when none lies in the range asked for.
# A NULL start means "from the last event" when reading backward.
_STREAM_HEAD: Final = """
WITH head AS (
    SELECT coalesce(max(stream_version), 0) AS current FROM events WHERE stream_id = $1
)
SELECT head.current, page.*
FROM head
LEFT JOIN LATERAL ("""

READ_STREAM_FORWARD_SQL: Final = f"""{_STREAM_HEAD}
    SELECT {EVENT_COLUMNS} FROM events
    WHERE stream_id = $1 AND stream_version >= $2
    ORDER BY stream_version
    LIMIT $3
) AS page ON true
"""

READ_STREAM_BACKWARD_SQL: Final = f"""{_STREAM_HEAD}
    SELECT {EVENT_COLUMNS} FROM events
    WHERE stream_id = $1 AND stream_version <= coalesce($2::bigint, head.current)
    ORDER BY stream_version DESC
    LIMIT $3
) AS page ON true
"""

# The horizon is taken once, in the statement's own snapshot, and returned even when no row is
# visible, so that a page that is not full can move the cursor up to the horizon and filtered
# followers never rescan what they have already skipped.
_FEED_PAGE: Final = """
WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
SELECT horizon.xmin AS horizon, page.*
FROM horizon
LEFT JOIN LATERAL (
    SELECT {columns} FROM events
    WHERE (transaction_id, position) > ($1::xid8, $2::bigint)
      AND transaction_id < horizon.xmin
      AND ($4::text IS NULL OR starts_with(type, $4))
      AND ($5::text[] IS NULL OR split_part(stream_id, '-', 1) = any($5::text[])){more}
    ORDER BY transaction_id, position
    LIMIT $3
) AS page ON true
"""

READ_FEED_SQL: Final = _FEED_PAGE.format(columns=EVENT_COLUMNS, more="")

# The feed's actor filter. An event is about actor X when it is in X's own stream or when a
# string value anywhere in its data equals X. Appends write nothing for the second half:
# migration 0006 keeps event_actor_refs, the strings of each event's data that can be an actor
# id, for every event up to a checkpoint, and readers of the filter bring it up to the horizon
# first (INDEX_ACTOR_REFS_SQL). A page is then the first ``limit``, in feed order, of three
# short lists, each cut to the page: the actor's own stream (its key), the indexed events
# naming it (a GIN lookup for a rare or unknown actor; a walk of event_actor_refs in feed order
# for a frequent one, which finds a page at once), and the events past the checkpoint tested
# one by one (a handful: the catch-up ran just before). One statement, so one snapshot: the
# checkpoint and the rows it covers are seen together, and no event falls between the lists.
_AFTER = "(transaction_id, position) > ($1::xid8, $2::bigint)"
_FILTERS = """($4::text IS NULL OR starts_with(type, $4))
              AND ($5::text[] IS NULL OR split_part(stream_id, '-', 1) = any($5::text[]))"""
# Exactly "some string value equals the actor" (a number or a key never does).
_NAMES_ACTOR = """jsonb_path_exists(data, 'strict $.** ? (@ == $actor)',
                                   jsonb_build_object('actor', ${n}::text))"""

READ_FEED_ACTOR_SQL: Final = f"""
WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
tail AS (
    SELECT CASE WHEN (c.transaction_id, c.position) > ($1::xid8, $2::bigint)
                THEN c.transaction_id ELSE $1::xid8 END AS transaction_id,
           CASE WHEN (c.transaction_id, c.position) > ($1::xid8, $2::bigint)
                THEN c.position ELSE $2::bigint END AS position
    FROM (SELECT transaction_id, position FROM event_actor_refs_checkpoint LIMIT 1) AS c
)
SELECT horizon.xmin AS horizon, page.*
FROM horizon CROSS JOIN tail
LEFT JOIN LATERAL (
    SELECT {EVENT_COLUMNS} FROM events
    WHERE (transaction_id, position) IN (
        (SELECT transaction_id, position FROM events
         WHERE stream_id = 'actor-' || $6 AND {_AFTER} AND transaction_id < horizon.xmin
           AND {_FILTERS}
         ORDER BY transaction_id, position
         LIMIT $3)
        UNION ALL
        (SELECT r.transaction_id, r.position
         FROM event_actor_refs AS r JOIN events USING (transaction_id, position)
         WHERE r.actor_ids @> ARRAY[$6::text]
           AND (r.transaction_id, r.position) > ($1::xid8, $2::bigint)
           AND {_FILTERS}
         ORDER BY r.transaction_id, r.position
         LIMIT $3)
        UNION ALL
        (SELECT transaction_id, position FROM events
         WHERE (transaction_id, position) > (tail.transaction_id, tail.position)
           AND transaction_id < horizon.xmin
           AND {_FILTERS}
           AND {_NAMES_ACTOR.format(n=6)}
         ORDER BY transaction_id, position
         LIMIT $3)
    )
    ORDER BY transaction_id, position
    LIMIT $3
) AS page ON true
"""

# Only when a stream is asked for: its key finds the rows, and the actor (if any) is tested on
# each of them. (The stream and actor clauses, even with NULL parameters, made the planner
# expect so few rows that it chose parallel scans and JIT for plain pages, which cut the feed
# read, and every projection rebuild, to a fifth.)
READ_FEED_NARROW_SQL: Final = _FEED_PAGE.format(
    columns=EVENT_COLUMNS,
    more=f"""
      AND stream_id = $6
      AND ($7::text IS NULL OR stream_id = 'actor-' || $7 OR {_NAMES_ACTOR.format(n=7)})""",
)

# Whether any event below the horizon lies past the actor index's checkpoint: one step along
# the feed key, so a reader only takes the indexer's lock when there is work. (LATERAL, here
# and below, makes the checkpoint a parameter of the index scan: as a join clause, the row
# comparison is not used as an index bound and the whole log is read.)
# A hot standby cannot write: there the checkpoint is the primary's (replicated), and the
# events past it are tested one by one.
ACTOR_REFS_PENDING_SQL: Final = """
SELECT NOT pg_is_in_recovery() AND EXISTS (
    SELECT FROM (SELECT * FROM event_actor_refs_checkpoint LIMIT 1) AS c
    CROSS JOIN LATERAL (
        SELECT FROM events AS e
        WHERE (e.transaction_id, e.position) > (c.transaction_id, c.position)
          AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY e.transaction_id, e.position
        LIMIT 1
    ) AS past
)
"""

# One indexer at a time (a transaction-level advisory lock, taken before this statement, whose
# snapshot therefore sees the previous indexer's checkpoint): the next $1 events past the
# checkpoint below the horizon, their rows and the checkpoint moved past them, in one
# statement. Returns how many events it looked at.
ACTOR_REFS_LOCK_SQL: Final = "SELECT pg_advisory_xact_lock($1::bigint)"
INDEX_ACTOR_REFS_SQL: Final = """
WITH batch AS (
    SELECT e.transaction_id, e.position, event_actor_ids(e.data) AS ids
    FROM (SELECT * FROM event_actor_refs_checkpoint LIMIT 1) AS c
    CROSS JOIN LATERAL (
        SELECT transaction_id, position, data FROM events
        WHERE (transaction_id, position) > (c.transaction_id, c.position)
          AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY transaction_id, position
        LIMIT $1
    ) AS e
), stored AS (
    INSERT INTO event_actor_refs (transaction_id, position, actor_ids)
    SELECT transaction_id, position, ids FROM batch WHERE cardinality(ids) > 0
), moved AS (
    UPDATE event_actor_refs_checkpoint AS c
    SET transaction_id = last.transaction_id, position = last.position
    FROM (
        SELECT transaction_id, position FROM batch
        ORDER BY transaction_id DESC, position DESC
        LIMIT 1
    ) AS last
    WHERE c.single
)
SELECT count(*) FROM batch
"""
# pg_advisory_xact_lock's key: "diplofeed actor refs", any constant no other lock uses.
_ACTOR_REFS_LOCK_KEY: Final = 0x6469706C_61637472
_ACTOR_REFS_CHUNK: Final = 5_000
_ACTOR_REFS_MAX_CHUNKS: Final = 40

# The last visible event recorded at or before $1 (events_recorded_at, one backward step).
CURSOR_AT_SQL: Final = """
SELECT transaction_id, position FROM events
WHERE recorded_at <= $1 AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY recorded_at DESC, transaction_id DESC, position DESC
LIMIT 1
"""


HORIZON_SQL: Final = "SELECT pg_snapshot_xmin(pg_current_snapshot())"
# The first transaction id not yet assigned: no event, nor any page's end, lies past it. A
# standby knows only what it has replayed: the primary may have handed out later cursors.
FEED_HEAD_SQL: Final = """
SELECT pg_snapshot_xmax(pg_current_snapshot()) AS xmax, pg_is_in_recovery() AS standby
"""


def _row_to_event(row: asyncpg.Record, offset: int = 0) -> RecordedEvent:
    return RecordedEvent(*tuple(row)[offset:])


async def _insert(conn: Conn, pending: PendingAppend, *, autocommit: bool) -> list[asyncpg.Record]:
    payload = insert_rows([pending])
    if autocommit:
        return await conn.fetch(APPEND_SQL, payload)
    # Inside the caller's transaction a failed INSERT would abort it: keep the failure inside
    # its own savepoint so we can still look and retry.
    async with conn.transaction():
        return await conn.fetch(APPEND_SQL, payload)


class EventStore:
    """Appends to and reads from the event log through an asyncpg pool.

    ``notifier`` (optional) is poked after every append this store commits, so followers in
    other processes wake at once; ``listener`` (optional) wakes this process's followers.
    Without them followers poll. The store remembers the committed head (version and hash) of
    up to ``head_cache_size`` recently written streams, so an append is usually one INSERT; with
    ``group_commit`` (the number of INSERTs in flight at once, ``None`` to disable), concurrent
    appends to different streams share statements and commits (``events.group_commit``).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        notifier: Notifier | None = None,
        listener: FeedListener | None = None,
        poll_interval: float = 0.5,
        idle_poll_interval: float = 2.0,
        head_cache_size: int = 10_000,
        group_commit: int | None = 2,
    ) -> None:
        self._pool = pool
        self._heads: OrderedDict[str, StreamHead] = OrderedDict()
        self._head_cache_size = head_cache_size
        self._group: GroupCommit[Conn, AppendRequest, AppendResult | None] | None = None
        if group_commit:
            self._group = GroupCommit(
                self._flush_group,
                session=pool.acquire,
                key=lambda request: request.stream_id,
                weight=lambda request: len(request.prepared),
                max_inflight=group_commit,
                max_weight=MAX_BATCH,
            )
        self._notifier = notifier
        self._listener = listener
        self.poll_interval = poll_interval
        self.idle_poll_interval = idle_poll_interval

    @property
    def pool(self) -> asyncpg.Pool:
        """The pool this store reads and writes through."""
        return self._pool

    # -- append -----------------------------------------------------------------------------

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int = ANY,
        *,
        connection: Conn | None = None,
    ) -> AppendResult:
        """Append ``events`` to ``stream_id`` atomically, if the stream is at ``expected_version``.

        With ``connection``, the append joins that connection's transaction (its fate is the
        caller's: call ``notify_committed`` after committing to wake followers at once).

        Raises:
            WrongExpectedVersionError: the stream is elsewhere; carries the actual version.
            TransactionOrderError: (with ``connection``) the stream was last written by a
                transaction younger than the caller's; retry in a new transaction.
            IdempotencyError: an event id was appended before with other content.
            InvalidAppendError: the request is malformed.
        """
        check_stream_id(stream_id)
        validate_expected(expected_version)
        prepared = prepare(stream_id, events)
        if connection is not None:
            # A savepoint: a conflict must not abort the caller's transaction, and nothing this
            # transaction writes may reach the head cache, since it may still roll back.
            async with connection.transaction():
                return await self._append_on(
                    connection, stream_id, prepared, expected_version, use_cache=False
                )
        result: AppendResult | None = None
        if self._group is not None and (expected_version == NO_STREAM or stream_id in self._heads):
            result = await self._group.submit(AppendRequest(stream_id, prepared, expected_version))
        if result is None:
            async with self._pool.acquire() as conn:
                result = await self._append_on(
                    conn, stream_id, prepared, expected_version, use_cache=True
                )
        if self._notifier is not None and not result.replayed:
            self._notifier.poke()
        return result

    async def _flush_group(
        self, conn: Conn, batch: list[AppendRequest]
    ) -> list[AppendResult | None]:
        """Insert what it can of ``batch`` in one statement; ``None`` sends a request back to
        the single-append path (unknown head, expectation to re-check, or a conflict)."""
        results: list[AppendResult | None] = [None] * len(batch)
        ready: list[tuple[int, PendingAppend]] = []
        for i, request in enumerate(batch):
            # Computed here, not at submit: an earlier append to the same stream has committed
            # by now (group commit never flushes one stream twice at once).
            head = (
                EMPTY_HEAD if request.expected == NO_STREAM else self._heads.get(request.stream_id)
            )
            if head is None or not expectation_holds(request.expected, head.version):
                continue
            chain = extend_chain(head, request.prepared)
            ready.append((i, PendingAppend(request.stream_id, request.prepared, *chain)))
        if not ready:
            return results
        try:
            rows = await conn.fetch(APPEND_SQL, insert_rows([p for _, p in ready]))
        except asyncpg.PostgresError:
            # Nothing of the statement was written. Which request conflicts (or is refused) is
            # for the single-append path to find out, one by one.
            for _, pending in ready:
                self._heads.pop(pending.stream_id, None)
            return results
        by_key = {(r["stream_id"], r["stream_version"]): r for r in rows}
        for i, pending in ready:
            self._remember(pending.stream_id, StreamHead(pending.versions[-1], pending.hashes[-1]))
            results[i] = append_result(
                pending, [by_key[pending.stream_id, v] for v in pending.versions]
            )
        return results

    async def _head(self, conn: Conn, stream_id: str) -> StreamHead:
        row = await conn.fetchrow(HEAD_SQL, stream_id)
        return EMPTY_HEAD if row is None else StreamHead(row["stream_version"], row["hash"])

    async def _head_in_transaction(
        self, conn: Conn, stream_id: str, prepared: list[PreparedEvent]
    ) -> StreamHead | AppendResult:
        """The head as seen from a caller's transaction, or the replayed result."""
        row = await conn.fetchrow(HEAD_IN_TRANSACTION_SQL, stream_id)
        if row is None:
            return EMPTY_HEAD
        if row["younger"]:
            replay = await self._replay(conn, stream_id, prepared)
            if replay is not None:
                return replay
            raise TransactionOrderError(stream_id, row["stream_version"])
        return StreamHead(row["stream_version"], row["hash"])

    async def _read_head(
        self, conn: Conn, stream_id: str, prepared: list[PreparedEvent], *, use_cache: bool
    ) -> StreamHead | AppendResult:
        if use_cache:
            return await self._head(conn, stream_id)
        return await self._head_in_transaction(conn, stream_id, prepared)

    def _remember(self, stream_id: str, head: StreamHead) -> None:
        heads = self._heads
        heads[stream_id] = head
        heads.move_to_end(stream_id)
        if len(heads) > self._head_cache_size:
            heads.popitem(last=False)

    async def _append_on(
        self,
        conn: Conn,
        stream_id: str,
        prepared: list[PreparedEvent],
        expected: int,
        *,
        use_cache: bool,
    ) -> AppendResult:
        # The head comes from the cache of committed heads when it can: versions only grow, so
        # a stale entry can only be too low, and then the INSERT collides on
        # (stream_id, stream_version) and we re-read. A decision to refuse is only ever taken
        # on a fresh read.
        head: StreamHead | AppendResult | None = self._heads.get(stream_id) if use_cache else None
        fresh = head is None
        if expected == NO_STREAM:
            # A new stream needs no read: if it exists after all, version 1 collides.
            head, fresh = EMPTY_HEAD, False
        elif head is None:
            head = await self._read_head(conn, stream_id, prepared, use_cache=use_cache)
        for _ in range(_MAX_CONFLICT_RETRIES):
            if isinstance(head, AppendResult):
                return head
            if not expectation_holds(expected, head.version):
                if not fresh:
                    head = await self._read_head(conn, stream_id, prepared, use_cache=use_cache)
                    fresh = True
                    continue
                replay = await self._replay(conn, stream_id, prepared)
                if replay is not None:
                    return replay
                raise WrongExpectedVersionError(stream_id, expected, head.version)
            pending = PendingAppend(stream_id, prepared, *extend_chain(head, prepared))
            try:
                rows = await _insert(conn, pending, autocommit=use_cache)
            except asyncpg.UniqueViolationError:
                self._heads.pop(stream_id, None)
                replay = await self._replay(conn, stream_id, prepared)
                if replay is not None:
                    return replay
                # Another writer took the version (or an id clash rolled back): look again.
                head = await self._read_head(conn, stream_id, prepared, use_cache=use_cache)
                fresh = True
                continue
            if use_cache:
                self._remember(stream_id, StreamHead(pending.versions[-1], pending.hashes[-1]))
            return append_result(pending, rows)
        if isinstance(head, AppendResult):
            return head
        raise WrongExpectedVersionError(stream_id, expected, head.version)

    async def _replay(
        self, conn: Conn, stream_id: str, prepared: list[PreparedEvent]
    ) -> AppendResult | None:
        """The original result if these events were all appended before, else ``None``."""
        stored = [
            _row_to_event(r)
            for r in await conn.fetch(BY_EVENT_IDS_SQL, [p.event_id for p in prepared])
        ]
        if not stored:
            return None
        by_id = {e.event_id: e for e in stored}
        for new in prepared:
            old = by_id.get(new.event_id)
            if old is None:
                raise IdempotencyError(
                    stored[0].event_id,
                    "in an earlier append, but this append also carries new events; "
                    "retry exactly the original batch",
                )
            if not same_content(stream_id, new, old):
                raise IdempotencyError(
                    new.event_id,
                    f"to stream {old.stream_id!r} as {old.type!r} with different content",
                )
        ordered = [by_id[p.event_id] for p in prepared]
        last = max(ordered, key=lambda e: e.position)
        return AppendResult(
            stream_id=stream_id,
            first_version=min(e.stream_version for e in ordered),
            last_version=max(e.stream_version for e in ordered),
            positions=[e.position for e in ordered],
            cursor=last.cursor,
            replayed=True,
        )

    # -- reads ------------------------------------------------------------------------------

    async def stream_version(self, stream_id: str) -> int:
        """The stream's current version (0 when it has no event)."""
        async with self._pool.acquire() as conn:
            return (await self._head(conn, stream_id)).version

    async def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int | None = None,
        backward: bool = False,
        limit: int = 1_000,
    ) -> StreamSlice:
        """Read one stream forward from ``from_version`` (default 1) or backward from it
        (default: the last event)."""
        check_stream_id(stream_id, InvalidReadError)
        _check_limit(limit)
        if backward:
            rows = await self._pool.fetch(READ_STREAM_BACKWARD_SQL, stream_id, from_version, limit)
        else:
            start = 1 if from_version is None else from_version
            rows = await self._pool.fetch(READ_STREAM_FORWARD_SQL, stream_id, start, limit)
        current: int = rows[0]["current"]
        events = [] if rows[0]["position"] is None else [_row_to_event(r, 1) for r in rows]
        next_version: int | None
        if backward:
            next_version = events[-1].stream_version - 1 if events else None
            if next_version is not None and next_version < 1:
                next_version = None
        else:
            next_version = events[-1].stream_version + 1 if events else None
            if next_version is not None and next_version > current:
                next_version = None
        return StreamSlice(
            stream_id=stream_id, events=events, current_version=current, next_version=next_version
        )

    async def read_all(
        self,
        after: Cursor = START,
        *,
        limit: int = 1_000,
        filter: FeedFilter | None = None,
    ) -> FeedPage:
        """Read the global feed after ``after`` (see the module docstring for the guarantee)."""
        _check_limit(limit)
        if filter is not None and filter.actor is not None:
            check_actor_id(filter.actor)
        args: tuple[object, ...] = (
            after.transaction_id,
            after.position,
            limit,
            filter.type_prefix if filter else None,
            filter.category_list() if filter else None,
        )
        if filter is not None and filter.stream_id:
            rows = await self._pool.fetch(
                READ_FEED_NARROW_SQL, *args, filter.stream_id, filter.actor
            )
        elif filter is not None and filter.actor:
            await self.index_actor_refs()
            rows = await self._pool.fetch(READ_FEED_ACTOR_SQL, *args, filter.actor)
        else:
            rows = await self._pool.fetch(READ_FEED_SQL, *args)
        if rows[0]["position"] is None:
            events: list[RecordedEvent] = []
        else:
            events = [_row_to_event(r, 1) for r in rows]
        if len(events) == limit:
            return FeedPage(events=events, next_cursor=events[-1].cursor, full=True)
        # Everything below the horizon has been returned or filtered out, and no transaction
        # can still add an event there, so the next read may start at the horizon itself.
        horizon = Cursor(rows[0]["horizon"], 0)
        last = events[-1].cursor if events else after
        return FeedPage(events=events, next_cursor=max(last, horizon), full=False)

    @property
    def actor_refs_batch(self) -> int:
        """The most events one ``index_actor_refs`` call indexes (fewer: it reached the
        horizon)."""
        return _ACTOR_REFS_CHUNK * _ACTOR_REFS_MAX_CHUNKS

    async def index_actor_refs(self) -> int:
        """Bring the actor filter's index up to the feed's horizon; the number of events
        indexed. ``read_all`` calls it before every actor-filtered read, so the events it then
        tests one by one are only those appended since; a caller may also run it after bursts
        of appends, to take the work off the next reader."""
        async with self._pool.acquire() as conn:
            if not await conn.fetchval(ACTOR_REFS_PENDING_SQL):
                return 0
            indexed = 0
            for _ in range(_ACTOR_REFS_MAX_CHUNKS):
                async with conn.transaction():
                    await conn.execute(ACTOR_REFS_LOCK_SQL, _ACTOR_REFS_LOCK_KEY)
                    done: int = await conn.fetchval(INDEX_ACTOR_REFS_SQL, _ACTOR_REFS_CHUNK)
                indexed += done
                if done < _ACTOR_REFS_CHUNK:
                    break
            return indexed

    async def read_events(self, event_ids: Sequence[UUID | str]) -> list[RecordedEvent]:
        """The stored events with these ids (those that exist), in position order."""
        try:
            ids = [UUID(str(i)) for i in event_ids]
        except ValueError as exc:
            raise InvalidReadError(f"not an event id: {exc}") from exc
        rows = await self._pool.fetch(BY_EVENT_IDS_SQL, ids)
        return [_row_to_event(r) for r in rows]

    async def horizon(self) -> Cursor:
        """The feed's visible end now: every event a follower can read lies before it, and
        every event committed later comes after it."""
        xmin = await self._pool.fetchval(HORIZON_SQL)
        return Cursor(int(xmin), 0)

    async def feed_head(self) -> Cursor | None:
        """The end of everything the log has handed out now: every event's cursor, and every
        page's next cursor (at most the horizon), lies at or before it, so a cursor past it was
        never issued by this database. ``None`` on a standby, which cannot tell: the primary
        may have handed out cursors it has not replayed yet."""
        row = await self._pool.fetchrow(FEED_HEAD_SQL)
        if row is None or row["standby"]:
            return None
        return Cursor(int(row["xmax"]), 0)

    async def cursor_at(self, recorded_at: datetime, *, connection: Conn | None = None) -> Cursor:
        """The feed cursor at ``recorded_at``: the cursor of the last event recorded at or
        before that time, ties (a transaction's events share their time) broken by feed order;
        ``START`` when there is none. One backward step along an index, whatever the log's size.

        Only events the feed shows count (those below the horizon, as ``read_all`` sees them),
        so the cursor never points past what a reader can see.

        ``recorded_at`` is the database's clock when the event's transaction started
        (``now()``), not when it committed, while the feed orders by transaction id, which a
        transaction takes at its first write. Concurrent transactions can therefore interleave:
        an event recorded before the time may come after, in the feed, one recorded after it.
        Across such an overlap the cursor includes a few events recorded just after the time,
        or leaves out a few recorded before it by a transaction still writing, and a later time
        may map to an earlier cursor. Writes that do not overlap in time map exactly.

        With ``connection`` the lookup runs there (for instance inside a view's snapshot).

        Raises:
            InvalidReadError: ``recorded_at`` has no time zone.
        """
        if recorded_at.tzinfo is None or recorded_at.utcoffset() is None:
            raise InvalidReadError(f"the time {recorded_at.isoformat()} needs a time zone")
        runner: Conn | asyncpg.Pool = connection if connection is not None else self._pool
        row = await runner.fetchrow(CURSOR_AT_SQL, recorded_at)
        if row is None:
            return START
        return Cursor(int(row["transaction_id"]), row["position"])

    async def follow(
        self,
        after: Cursor = START,
        *,
        filter: FeedFilter | None = None,
        batch_size: int = 1_000,
    ) -> AsyncIterator[RecordedEvent]:
        """Yield every event after ``after``, then wait for more, forever.

        Woken by the feed listener when there is one; the notification is only a hint, and
        the follower always re-reads by cursor. Without a listener, or while its connection is
        down, it polls every ``poll_interval`` seconds; with one, it still re-reads every
        ``idle_poll_interval`` seconds to cover writers that do not notify. Database outages
        are waited out.
        """
        async for event in follow_feed(self, after, filter=filter, batch_size=batch_size):
            yield event

    def notify_committed(self) -> None:
        """Wake followers after the caller committed appends made with ``connection=``."""
        if self._notifier is not None:
            self._notifier.poke()

    @property
    def listener(self) -> FeedListener | None:
        """The listener that wakes followers, if any."""
        return self._listener


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidReadError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
