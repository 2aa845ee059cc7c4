"""The projection runner: follows the feed from a checkpoint and applies events in batches.

Exactly once: each batch is applied and the checkpoint advanced in one transaction, so a crash
at any point leaves both as they were before the batch or both after it. The checkpoint update
is also conditional on the checkpoint the batch started from, so a runner that lost its
leadership but still holds a batch cannot apply it a second time.

One active runner per projection: the runner holds a session-level advisory lock on a
dedicated connection and applies batches on that same connection. Any number of runners may
start; the others wait on the lock and one takes over within ``standby_interval`` seconds of
the active one's connection ending (PostgreSQL releases a session lock when its session dies).
The runner is woken by the event store's listener when there is one, and polls otherwise.

Throughput: the next page is read (on a pool connection) while the current batch is applied,
and a projection that is ``Preparing`` also decodes and computes the next batch meanwhile, so
the database and this process work at the same time rather than in turn.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import functools
import logging
from typing import TYPE_CHECKING, Final, Literal, Protocol, runtime_checkable

import msgspec

from events.follow import follow_pages
from events.notify import CONNECTION_ERRORS
from events.records import START, Cursor, FeedFilter, FeedPage, RecordedEvent
from projections.quarantine import QuarantinedEvent, entry_for, quarantine, settle
from projections.supervision import Backoff, describe

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence

    import asyncpg

    from events.store import EventStore

__all__ = (
    "Lag",
    "LostLeadershipError",
    "Preparing",
    "Projection",
    "ProjectionRunner",
    "RunnerState",
    "checkpoint_of",
    "projection_lag",
    "wait_for_cursor",
)

log = logging.getLogger(__name__)

RunnerState = Literal["starting", "standby", "active", "retrying", "paused"]

TRY_LOCK_SQL: Final = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))"
ENSURE_CHECKPOINT_SQL: Final = """
INSERT INTO projection_checkpoints (name, version) VALUES ($1, $2)
ON CONFLICT (name, version) DO NOTHING
"""
LOAD_CHECKPOINT_SQL: Final = """
SELECT transaction_id, position, events FROM projection_checkpoints
WHERE name = $1 AND version = $2
"""
SAVE_CHECKPOINT_SQL: Final = """
UPDATE projection_checkpoints
SET transaction_id = $3, position = $4, events = events + $5, updated_at = now()
WHERE name = $1 AND version = $2 AND transaction_id = $6 AND position = $7
"""


class Projection(Protocol):
    """A read model built from the feed."""

    name: str
    version: int
    filter: FeedFilter | None
    """Only these events are read (``None``: all of them)."""

    @property
    def tables(self) -> tuple[str, ...]:
        """This version's tables, in schema ``projections``."""

    async def setup(self, conn: asyncpg.Connection) -> None:
        """Create this version's tables if they do not exist (idempotent)."""

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        """Apply a batch, inside the runner's transaction."""

    async def drop(self, conn: asyncpg.Connection) -> None:
        """Drop this version's tables (after a newer version took over)."""


@runtime_checkable
class Preparing(Protocol):
    """A projection that can do a batch's work that reads none of its tables (decoding,
    reading the log, computing rows) before the batch's turn: the runner prepares the next
    batch while the database writes this one. ``apply`` must equal ``prepare`` followed by
    ``apply_prepared``."""

    async def prepare(
        self, conn: asyncpg.Connection | asyncpg.Pool, events: Sequence[RecordedEvent]
    ) -> object:
        """Compute, from ``events`` and the log only, what ``apply_prepared`` writes."""

    async def apply_prepared(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], prepared: object
    ) -> None:
        """Apply a batch prepared by ``prepare``, inside the runner's transaction."""


# Committed, visible events the projection has not applied yet, and the oldest one's age.
LAG_SQL: Final = """
WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
SELECT count(*) AS events, min(recorded_at) AS oldest, now() AS now
FROM events, horizon
WHERE (transaction_id, position) > ($1::xid8, $2::bigint)
  AND transaction_id < horizon.xmin
  AND ($3::text[] IS NULL OR split_part(stream_id, '-', 1) = any($3::text[]))
"""


class Lag(msgspec.Struct, frozen=True, kw_only=True):
    """How far a projection is behind the feed."""

    events: int
    seconds: float


class LostLeadershipError(RuntimeError):
    """The checkpoint moved under this runner: another runner applied the batch."""


async def checkpoint_of(
    conn: asyncpg.Connection | asyncpg.Pool, name: str, version: int
) -> tuple[Cursor, int]:
    """A projection's checkpoint and how many events it has applied (``START``, 0 if none)."""
    row = await conn.fetchrow(LOAD_CHECKPOINT_SQL, name, version)
    if row is None:
        return START, 0
    return Cursor(row["transaction_id"], row["position"]), row["events"]


async def projection_lag(conn: asyncpg.Connection | asyncpg.Pool, projection: Projection) -> Lag:
    """Events of the projection's filter that are committed and visible but not yet applied,
    and how long the oldest of them has been waiting."""
    cursor, _ = await checkpoint_of(conn, projection.name, projection.version)
    categories = projection.filter.category_list() if projection.filter else None
    row = await conn.fetchrow(LAG_SQL, cursor.transaction_id, cursor.position, categories)
    assert row is not None  # noqa: S101 (an aggregate always returns a row)
    oldest = row["oldest"]
    seconds = (row["now"] - oldest).total_seconds() if oldest is not None else 0.0
    return Lag(events=row["events"], seconds=max(seconds, 0.0))


async def wait_for_cursor(
    conn: asyncpg.Connection | asyncpg.Pool,
    projection: Projection,
    cursor: Cursor,
    *,
    within: float,
    interval: float = 0.05,
) -> bool:
    """Read your writes: wait, at most ``within`` seconds, until the projection has applied
    everything up to ``cursor``; ``False`` when it could not in time (a bounded wait that
    answers rather than raises, so a query can say it is stale)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        reached, _ = await checkpoint_of(conn, projection.name, projection.version)
        if reached >= cursor:
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(min(interval, max(deadline - loop.time(), 0.0)))


_NOTHING_PREPARED: Final = object()


async def _read_ahead(
    pages: AsyncIterator[FeedPage],
    prepare: Callable[[Sequence[RecordedEvent]], Awaitable[object]] | None,
) -> AsyncGenerator[tuple[FeedPage, object], None]:
    """``pages``, each read (and prepared, see ``Preparing``) while the caller applies the one
    before: the database serves the read, on a pool connection, while this process folds, and
    this process prepares while the database writes. At most two pages are held, so memory
    stays bounded; a page read ahead and never applied is read again from the checkpoint by
    whoever runs next."""

    async def next_batch() -> tuple[FeedPage, object]:
        page = await anext(pages)
        return page, await prepare(page.events) if prepare is not None else _NOTHING_PREPARED

    ahead: asyncio.Future[tuple[FeedPage, object]] = asyncio.ensure_future(next_batch())
    try:
        while True:
            batch = await ahead
            ahead = asyncio.ensure_future(next_batch())
            yield batch
    finally:
        ahead.cancel()
        # The read must have stopped before the generator can be closed.
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
            await ahead
        if isinstance(pages, collections.abc.AsyncGenerator):
            await pages.aclose()


class ProjectionRunner:
    """Runs one projection; see the module docstring."""

    def __init__(
        self,
        store: EventStore,
        projection: Projection,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        *,
        batch_size: int = 1_000,
        standby_interval: float = 1.0,
        backoff: Backoff | None = None,
        poison_after: int = 3,
    ) -> None:
        self._store = store
        self.projection = projection
        self._connect = connect
        self.batch_size = batch_size
        self._standby_interval = standby_interval
        self._backoff = backoff or Backoff()
        self.poison_after = poison_after
        """Attempts at one event, alone, before it is quarantined."""
        self.active = False
        """Whether this runner holds the projection's lock (it may be paused all the same)."""
        self.state: RunnerState = "starting"
        self.applied = 0
        self.failures = 0
        """Failures in a row (0 once a batch is applied again)."""
        self.restarts = 0
        self.last_error: str | None = None
        self.held: QuarantinedEvent | None = None
        """The quarantined event this runner is paused before."""
        self._saved = START
        self._lock_key = f"diplofeed.projection:{projection.name}:v{projection.version}"

    async def run(self) -> None:
        """Run until cancelled: wait for leadership, then follow the feed. Any failure ends
        the session (releasing the lock) and starts again, after ``standby_interval`` when the
        database went away or another runner took over, after a growing backoff otherwise."""
        while True:
            conn: asyncpg.Connection | None = None
            delay = self._standby_interval
            try:
                conn = await self._connect()
                self.state = "standby"
                # Standby: the lock lives in the database, so there is nothing to wait on here.
                while not await conn.fetchval(TRY_LOCK_SQL, self._lock_key):  # noqa: ASYNC110
                    await asyncio.sleep(self._standby_interval)
                self.active = True
                self.state = "active"
                await self._lead(conn)
            except (*CONNECTION_ERRORS, LostLeadershipError) as exc:
                log.warning("projection %s interrupted: %s", self.projection.name, exc)
            except Exception as exc:
                # Anything else (a table a rebuild dropped, a setup that failed, a bug) used
                # to end this task for good, silently: only the lag showed it.
                self.failures += 1
                self.restarts += 1
                self.last_error = describe(exc)
                self.state = "retrying"
                delay = self._backoff.delay(self.failures)
                log.error(
                    "projection %s failed; restarting in %.1fs",
                    self.projection.name,
                    delay,
                    exc_info=exc,
                )
            finally:
                self.active = False
                self.held = None
                if conn is not None and not conn.is_closed():
                    # Ending the session releases the advisory lock for a standby runner.
                    conn.terminate()
            await asyncio.sleep(delay)

    async def _lead(self, conn: asyncpg.Connection) -> None:
        projection = self.projection
        await projection.setup(conn)
        await conn.execute(ENSURE_CHECKPOINT_SQL, projection.name, projection.version)
        self._saved, _ = await checkpoint_of(conn, projection.name, projection.version)
        while True:
            try:
                await self._follow(conn)
            except (*CONNECTION_ERRORS, LostLeadershipError):
                raise
            except Exception as exc:
                # One event of the batch may be at fault (or none: a timeout, a transient
                # error): apply the batch's events one at a time, each in its own transaction.
                log.warning(
                    "projection %s: a batch failed (%s); applying it one event at a time",
                    projection.name,
                    describe(exc),
                )
                if not await self._one_by_one(conn):
                    raise  # no event to blame: the runner starts again, after a backoff

    async def _follow(self, conn: asyncpg.Connection) -> None:
        projection = self.projection
        pages = follow_pages(
            self._store, self._saved, filter=projection.filter, batch_size=self.batch_size
        )
        prepare = None
        if isinstance(projection, Preparing):
            pool = self._store.pool
            preparing = projection

            async def prepare(events: Sequence[RecordedEvent]) -> object:
                return await preparing.prepare(pool, events)

        # Closed at once when a batch fails: the page it read ahead is read again.
        async with contextlib.aclosing(_read_ahead(pages, prepare)) as batches:
            async for page, prepared in batches:
                await self._apply(conn, page.events, page.next_cursor, prepared)

    async def _one_by_one(self, conn: asyncpg.Connection) -> bool:
        """Apply the next page's events one at a time: an event that fails ``poison_after``
        times alone is quarantined, and the runner pauses before it until it is released
        (``projections.quarantine``). Whether there was any event to apply."""
        projection = self.projection
        page = await self._store.read_all(
            self._saved, limit=self.batch_size, filter=projection.filter
        )
        for event in page.events:
            await self._apply_alone(conn, event)
        if page.events:
            await self._apply(conn, [], page.next_cursor)
        return bool(page.events)

    async def _apply_alone(self, conn: asyncpg.Connection, event: RecordedEvent) -> None:
        projection = self.projection
        name, version = projection.name, projection.version
        attempts = 0
        while True:
            entry = await entry_for(conn, name, version, event)
            if entry is not None and entry.status == "held":
                await self._pause(conn, event, entry)
                attempts = 0  # released: it gets its full number of attempts again
                continue
            if entry is not None and entry.status == "skip":
                skipped = functools.partial(settle, conn, name, version, event, "skipped")
                await self._apply(conn, [], event.cursor, also=skipped)
                log.warning("projection %s went past event %s", name, event.event_id)
                return
            applied = functools.partial(settle, conn, name, version, event, "applied")
            try:
                await self._apply(
                    conn, [event], event.cursor, also=applied if entry is not None else None
                )
            except (*CONNECTION_ERRORS, LostLeadershipError):
                raise
            except Exception as exc:
                attempts += 1
                self.last_error = describe(exc)
                if attempts < self.poison_after:
                    await asyncio.sleep(self._backoff.delay(attempts))
                    continue
                await quarantine(
                    conn, event, name=name, version=version, error=self.last_error,
                    attempts=attempts,
                )  # fmt: skip
                log.error(
                    "projection %s: event %s (%s) quarantined after %d attempts",
                    name,
                    event.event_id,
                    event.type,
                    attempts,
                    exc_info=exc,
                )
            else:
                return

    async def _pause(
        self, conn: asyncpg.Connection, event: RecordedEvent, entry: QuarantinedEvent
    ) -> None:
        """Wait, holding the lead, until ``entry`` is released."""
        self.held, self.state = entry, "paused"
        name, version = entry.name, entry.version
        now: QuarantinedEvent | None = entry
        try:
            while now is not None and now.status == "held":
                await asyncio.sleep(self._standby_interval)
                now = await entry_for(conn, name, version, event)
        finally:
            self.held, self.state = None, "active"

    async def _apply(
        self,
        conn: asyncpg.Connection,
        events: Sequence[RecordedEvent],
        end: Cursor,
        prepared: object = _NOTHING_PREPARED,
        *,
        also: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Apply ``events`` (if any), run ``also``, and move the checkpoint to ``end``, in one
        transaction."""
        projection = self.projection
        start = self._saved
        async with conn.transaction():
            if events and prepared is not _NOTHING_PREPARED and isinstance(projection, Preparing):
                await projection.apply_prepared(conn, events, prepared)
            elif events:
                await projection.apply(conn, events)
            if also is not None:
                await also()
            status = await conn.execute(
                SAVE_CHECKPOINT_SQL,
                projection.name,
                projection.version,
                end.transaction_id,
                end.position,
                len(events),
                start.transaction_id,
                start.position,
            )
            if status != "UPDATE 1":
                raise LostLeadershipError(
                    f"checkpoint of {projection.name} v{projection.version} moved since "
                    f"{start.encode()}; batch rolled back"
                )
        self._saved = end
        self.applied += len(events)
        if events:
            self.failures = 0
            self.last_error = None
