"""The projection runner against a real PostgreSQL: exactly once across crashes, one active
runner among several, takeover when the active one dies."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING, Final

import pytest

from events import ConnectionOptions, EventStore, FeedFilter, NewEvent
from events.connect import connect
from projections.runner import ProjectionRunner, checkpoint_of, projection_lag, wait_for_cursor

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

    import asyncpg

    from events import RecordedEvent

CREATE_SQL: Final = """
CREATE TABLE IF NOT EXISTS projections.{table} (
    stream_id text PRIMARY KEY,
    applied   integer NOT NULL
)
"""
BUMP_SQL: Final = """
INSERT INTO projections.{table} (stream_id, applied) VALUES ($1, 1)
ON CONFLICT (stream_id) DO UPDATE SET applied = {table}.applied + 1
"""


class Counter:
    """Counts how often each event's stream was applied: any double application shows."""

    def __init__(
        self, category: str, *, pause: asyncio.Event | None = None, version: int = 1
    ) -> None:
        self.name = f"counter_{category}"
        self.version = version
        self.table = f"counter_{category}_v{version}"
        self.tables = (self.table,)
        self.filter: FeedFilter | None = FeedFilter(category=category)
        self.pause = pause
        self.entered = asyncio.Event()

    async def setup(self, conn: asyncpg.Connection) -> None:
        await conn.execute(CREATE_SQL.format(table=self.table))

    async def drop(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"DROP TABLE IF EXISTS projections.{self.table}")

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        for n, event in enumerate(events):
            await conn.execute(
                BUMP_SQL.format(table=self.table), f"{event.stream_id}/{event.stream_version}"
            )
            if n == len(events) // 2 and self.pause is not None:
                # Half the batch is written; a crash now must leave none of it.
                self.entered.set()
                await self.pause.wait()


async def _counts(pool: asyncpg.Pool, table: str) -> dict[str, int]:
    rows = await pool.fetch(f"SELECT stream_id, applied FROM projections.{table}")
    return {r["stream_id"]: r["applied"] for r in rows}


async def _append(store: EventStore, category: str, streams: int, each: int) -> None:
    for s in range(streams):
        await store.append(
            f"{category}-{s}", [NewEvent(type="test.counted", data={"n": n}) for n in range(each)]
        )


async def _until(condition: Callable[[], Awaitable[bool]], *, seconds: float = 20.0) -> None:
    """Poll the database until ``condition`` holds (bounded: a bug fails, it does not hang)."""
    async with asyncio.timeout(seconds):
        while not await condition():  # noqa: ASYNC110 (the state lives in the database)
            await asyncio.sleep(0.05)


def _applied(
    pool: asyncpg.Pool, projection: Counter, expected: int
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await checkpoint_of(pool, projection.name, 1))[1] == expected

    return check


@contextlib.asynccontextmanager
async def _running(runner: ProjectionRunner) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(runner.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
def category() -> str:
    return f"r{uuid.uuid4().hex[:10]}"


def _runner(store: EventStore, projection: Counter, options: ConnectionOptions) -> ProjectionRunner:
    return ProjectionRunner(
        store, projection, lambda: connect(options), batch_size=7, standby_interval=0.1
    )


async def test_applies_every_event_once_and_resumes_from_its_checkpoint(
    store: EventStore, pool: asyncpg.Pool, app_options: ConnectionOptions, category: str
) -> None:
    projection = Counter(category)
    await _append(store, category, streams=5, each=4)

    async with _running(_runner(store, projection, app_options)):
        await _until(_applied(pool, projection, 20))
    await _append(store, category, streams=5, each=3)
    async with _running(_runner(store, projection, app_options)):
        await _until(_applied(pool, projection, 35))
    counts = await _counts(pool, projection.table)
    assert len(counts) == 35
    assert set(counts.values()) == {1}


async def test_a_runner_cancelled_inside_a_batch_leaves_no_trace_of_it(
    store: EventStore, pool: asyncpg.Pool, app_options: ConnectionOptions, category: str
) -> None:
    pause = asyncio.Event()
    stuck = Counter(category, pause=pause)
    await _append(store, category, streams=3, each=5)
    async with _running(_runner(store, stuck, app_options)):
        async with asyncio.timeout(20):
            await stuck.entered.wait()
    # Killed mid-batch: half the batch was written in a transaction that never committed.
    assert await _counts(pool, stuck.table) == {}
    assert (await checkpoint_of(pool, stuck.name, 1))[1] == 0
    fresh = Counter(category)
    async with _running(_runner(store, fresh, app_options)):
        await _until(_applied(pool, fresh, 15))
    counts = await _counts(pool, fresh.table)
    assert len(counts) == 15
    assert set(counts.values()) == {1}


async def test_one_runner_is_active_and_another_takes_over_when_it_dies(
    store: EventStore, pool: asyncpg.Pool, app_options: ConnectionOptions, category: str
) -> None:
    projection = Counter(category)
    runners = [_runner(store, projection, app_options) for _ in range(3)]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        await _append(store, category, streams=4, each=5)
        await _until(_settled(runners))
        assert sum(r.active for r in runners) == 1
        leader = next(i for i, r in enumerate(runners) if r.active)
        tasks[leader].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[leader]
        await _append(store, category, streams=4, each=5)
        await _until(_settled([r for i, r in enumerate(runners) if i != leader]))
        assert sum(r.active for r in runners) == 1
        assert not runners[leader].active
        await _until(_applied(pool, projection, 40))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    counts = await _counts(pool, projection.table)
    assert len(counts) == 40
    assert set(counts.values()) == {1}


def _settled(runners: list[ProjectionRunner]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return sum(r.active for r in runners) == 1

    return check


async def test_lag_counts_what_is_not_applied_yet(
    store: EventStore, pool: asyncpg.Pool, app_options: ConnectionOptions, category: str
) -> None:
    projection = Counter(category)
    await _append(store, category, streams=2, each=3)
    lag = await projection_lag(pool, projection)
    assert lag.events == 6
    assert lag.seconds >= 0.0
    async with _running(_runner(store, projection, app_options)):
        await _until(_applied(pool, projection, 6))
    lag = await projection_lag(pool, projection)
    assert (lag.events, lag.seconds) == (0, 0.0)


async def test_read_your_writes_waits_for_the_cursor_or_says_it_could_not(
    store: EventStore, pool: asyncpg.Pool, app_options: ConnectionOptions, category: str
) -> None:
    projection = Counter(category)
    written = await store.append(f"{category}-1", [NewEvent(type="test.counted", data={})])
    # No runner: the projection cannot reflect the write, and says so once the bound is over.
    assert not await wait_for_cursor(pool, projection, written.cursor, within=0.2)
    async with _running(_runner(store, projection, app_options)):
        assert await wait_for_cursor(pool, projection, written.cursor, within=20)
    assert await _counts(pool, projection.table) == {f"{category}-1/1": 1}
