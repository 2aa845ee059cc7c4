"""Rebuilding a projection without downtime: the old version serves until the new one has
caught up, the switch is one transaction, the old tables go afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING

import asyncpg

from events import EventStore, NewEvent
from events.connect import connect
from projections.rebuild import LiveRunner, live_version, rebuild
from projections.runner import checkpoint_of
from tests.test_runner import Counter

if TYPE_CHECKING:
    from events import ConnectionOptions


async def _counts(pool: asyncpg.Pool, table: str) -> dict[str, int]:
    rows = await pool.fetch(f"SELECT stream_id, applied FROM projections.{table}")
    return {r["stream_id"]: r["applied"] for r in rows}


async def _exists(pool: asyncpg.Pool, table: str) -> bool:
    return bool(await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", f"projections.{table}"))


async def test_a_rebuild_builds_beside_the_live_version_and_takes_over(
    store: EventStore, pool: asyncpg.Pool, app_options: ConnectionOptions
) -> None:
    category = f"rb{uuid.uuid4().hex[:10]}"
    for s in range(6):
        await store.append(
            f"{category}-{s}", [NewEvent(type="test.counted", data={"n": n}) for n in range(5)]
        )
    name = f"counter_{category}"

    def make(version: int) -> Counter:
        return Counter(category, version=version)

    async def connector() -> asyncpg.Connection:
        return await connect(app_options)

    live = LiveRunner(store, make, connector, name, check_interval=0.1)
    live_task = asyncio.create_task(live.run())
    try:
        async with asyncio.timeout(30):
            while (await checkpoint_of(pool, name, 1))[1] < 30:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert await live_version(pool, name) is None  # version 1 serves by default
        v1 = await _counts(pool, make(1).table)

        progress: list[int] = []
        rebuilding = asyncio.create_task(
            rebuild(
                store,
                make,
                connector,
                name,
                batch_size=4,
                retire_after=0,
                on_progress=progress.append,
            )
        )
        # v1 keeps serving, and keeps up with writes, while v2 builds.
        await store.append(f"{category}-late", [NewEvent(type="test.counted", data={})])
        report = await rebuilding
        assert (report.old_version, report.new_version) == (1, 2)
        assert report.events >= 30
        assert progress
        assert await live_version(pool, name) == 2
        assert not await _exists(pool, make(1).table)
        v2 = await _counts(pool, make(2).table)
        assert {k: v for k, v in v2.items() if k in v1} == v1
        assert set(v2.values()) == {1}

        # The live runner follows the switch: v2 keeps up with new writes.
        await store.append(f"{category}-after", [NewEvent(type="test.counted", data={})])
        async with asyncio.timeout(30):
            while f"{category}-after/1" not in await _counts(pool, make(2).table):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert live.runner is not None
        assert live.runner.active
    finally:
        live_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await live_task
    counts = await _counts(pool, make(2).table)
    assert len(counts) == 32
    assert set(counts.values()) == {1}


async def _counts_if_any(pool: asyncpg.Pool, table: str) -> dict[str, int]:
    """``_counts``, or nothing while the runner has not created the table yet."""
    return await _counts(pool, table) if await _exists(pool, table) else {}


async def test_the_live_runner_outlives_its_own_connection(
    store: EventStore, pool: asyncpg.Pool, app_options: ConnectionOptions, owner_dsn: str
) -> None:
    """A database restart kills the connection the live runner checks the pointer on; it used
    to end the live runner (and the live version's runner with it) for good."""
    category = f"lr{uuid.uuid4().hex[:10]}"
    name = f"counter_{category}"
    opened: list[asyncpg.Connection] = []

    def make(version: int) -> Counter:
        return Counter(category, version=version)

    async def connector() -> asyncpg.Connection:
        conn = await connect(app_options)
        opened.append(conn)
        return conn

    live = LiveRunner(store, make, connector, name, check_interval=0.1)
    live_task = asyncio.create_task(live.run())
    try:
        await store.append(f"{category}-1", [NewEvent(type="test.counted", data={})])
        async with asyncio.timeout(30):
            while f"{category}-1/1" not in await _counts_if_any(pool, make(1).table):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        # The first connection opened is the pointer's: the server ends it.
        admin = await asyncpg.connect(owner_dsn)
        try:
            assert await admin.fetchval(
                "SELECT pg_terminate_backend($1)", opened[0].get_server_pid()
            )
        finally:
            await admin.close()
        await asyncio.sleep(0.5)  # several pointer checks
        assert not live_task.done()
        # Still following the feed, and still following switches of the pointer.
        await pool.execute("INSERT INTO projection_live (name, version) VALUES ($1, 2)", name)
        await store.append(f"{category}-2", [NewEvent(type="test.counted", data={})])
        async with asyncio.timeout(30):
            while f"{category}-2/1" not in await _counts_if_any(pool, make(2).table):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert not live_task.done()
    finally:
        live_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await live_task
    for version in (1, 2):
        await pool.execute(f"DROP TABLE IF EXISTS projections.{make(version).table}")
