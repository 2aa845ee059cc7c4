"""A projector process killed with SIGKILL, between batches and inside one, leaves views equal
to a clean rebuild once another runner has caught up."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from events import EventStore, NewEvent
from events.connect import connect
from projections.runner import ProjectionRunner, checkpoint_of
from tests.test_runner import Counter

if TYPE_CHECKING:
    import asyncpg

    from events import ConnectionOptions

ROOT = Path(__file__).resolve().parent.parent


async def _counts(pool: asyncpg.Pool, table: str) -> dict[str, int]:
    rows = await pool.fetch(f"SELECT stream_id, applied FROM projections.{table}")
    return {r["stream_id"]: r["applied"] for r in rows}


async def _run_to(
    store: EventStore,
    projection: Counter,
    options: ConnectionOptions,
    pool: asyncpg.Pool,
    total: int,
) -> None:
    runner = ProjectionRunner(store, projection, lambda: connect(options), batch_size=10)
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(60):
            while (await checkpoint_of(pool, projection.name, 1))[1] < total:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("where", ["IN_BATCH", "BATCH_DONE"])
async def test_a_killed_projector_leaves_views_equal_to_a_clean_rebuild(
    store: EventStore, pool: asyncpg.Pool, app_options: ConnectionOptions, where: str
) -> None:
    category = f"k{uuid.uuid4().hex[:10]}"
    total = 0
    for s in range(8):
        await store.append(
            f"{category}-{s}", [NewEvent(type="test.counted", data={"n": n}) for n in range(10)]
        )
        total += 10
    for kill in range(3):
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.projector_child",
            app_options.dsn,
            app_options.role or "",
            category,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert child.stdout is not None
        try:
            async with asyncio.timeout(60):
                seen = 0
                while True:
                    line = (await child.stdout.readline()).decode().strip()
                    assert line, "the projector exited before reaching the kill point"
                    if line == where:
                        seen += 1
                        if seen > kill:
                            break
            child.send_signal(signal.SIGKILL)
        finally:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
    survivor = Counter(category)
    await _run_to(store, survivor, app_options, pool, total)
    clean = Counter(f"{category}clean")
    clean.filter = survivor.filter
    await _run_to(store, clean, app_options, pool, total)
    assert await _counts(pool, survivor.table) == await _counts(pool, clean.table)
    assert set((await _counts(pool, survivor.table)).values()) == {1}
    assert len(await _counts(pool, survivor.table)) == total
