"""Fault drill: the projector is killed with SIGKILL in the middle of a rebuild, ten times in a
row, then one rebuild is let finish; the live views equal a clean rebuild's.

On a PostgreSQL of the test's own (``tests.own_postgres``): the seed article (through the
command handler) and a few thousand synthetic domain events (``bench.projections``' generator,
bulk-loaded with valid hash chains), version 1 of the roster and contacts projections built
and live. Then ``tests/rebuild_child.py`` runs ``projections.rebuild.rebuild`` for both, in
small batches, and is killed at a random moment once a rebuild's checkpoint has advanced part
of the way; more events are appended between kills, so each resumed rebuild also chases new
ones. The eleventh run finishes. The live pointer must have stayed put through the kills and
moved exactly once, to version 2; version 2's checkpoint must count every event of its filter
exactly once; and every view (rosters, contact histories, the graph, actors) must equal a
clean rebuild from scratch into tables of another name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from bench.projections import COPY_COLUMNS, WEIGHTS, Synth, _rows
from events import APP_ROLE, ConnectionOptions, Cursor, EventStore
from events.connect import connect, create_pool
from events.domain.handler import CommandHandler
from events.domain.seed import load_seed
from projections.contacts import ContactsProjection, contact_history, get_actor
from projections.graph import contact_graph
from projections.rebuild import live_version
from projections.roster import RosterProjection, get_roster
from projections.runner import ProjectionRunner, checkpoint_of, projection_lag
from service.projectors import PROJECTIONS
from tests.own_postgres import own_postgres
from tests.roster_oracle import every_meeting

if TYPE_CHECKING:
    from events.rows import StreamHead
    from projections.runner import Projection

ROOT = Path(__file__).resolve().parent.parent
KILLS = 10
SYNTHETIC = 4_000
BETWEEN_KILLS = 100
"""Synthetic events appended after each kill."""
BATCH = 25
NAMES = ("roster", "contacts")
SEED_ACTORS = ("hamas", "fatah", "russia", "rus_mfa", "pij", "pflp")

pytestmark = pytest.mark.timeout(180)


async def _copy(url: str, synth: Synth, heads: dict[str, StreamHead], n: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "events", records=_rows(synth, heads, n), columns=COPY_COLUMNS
        )
    finally:
        await conn.close()


async def _build(store: EventStore, projection: Projection, options: ConnectionOptions) -> None:
    """Run ``projection`` in this process until it has applied the whole feed."""
    runner = ProjectionRunner(store, projection, lambda: connect(options), batch_size=1_000)
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(60):
            while True:
                if runner.active and not (await projection_lag(store.pool, projection)).events:
                    return
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _totals(pool: asyncpg.Pool) -> dict[str, int]:
    """How many events of the log each projection's filter admits."""
    totals: dict[str, int] = {}
    for name in NAMES:
        flt = PROJECTIONS[name](1).filter
        assert flt is not None
        totals[name] = await pool.fetchval(
            "SELECT count(*) FROM events WHERE split_part(stream_id, '-', 1) = any($1::text[])",
            flt.category_list(),
        )
    return totals


async def _spawn(pg_url: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.rebuild_child", pg_url, APP_ROLE, str(BATCH),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


async def _progress(pool: asyncpg.Pool, totals: dict[str, int]) -> dict[str, float]:
    """How far each rebuild (version 2) has got, as a fraction of its events."""
    return {name: (await checkpoint_of(pool, name, 2))[1] / totals[name] for name in NAMES}


async def _kill_mid_build(
    pool: asyncpg.Pool, child: asyncio.subprocess.Process
) -> tuple[dict[str, float], dict[str, float]]:
    """SIGKILL ``child`` once its rebuilds have applied a random 2-6% more of their events
    (so it has really been building); the progress before it ran and when it was killed."""
    totals = await _totals(pool)
    before = await _progress(pool, totals)
    step = random.uniform(0.02, 0.06)
    async with asyncio.timeout(60):
        while True:
            progress = await _progress(pool, totals)
            if sum(progress.values()) - sum(before.values()) >= step * len(NAMES):
                break
            assert child.returncode is None, "the rebuild ended before it could be killed"
            await asyncio.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    await child.wait()
    return before, progress


async def _views(pool: asyncpg.Pool, roster: dict[str, Any], contacts: dict[str, Any],
                 actors: list[str]) -> dict[str, Any]:  # fmt: skip
    head = await pool.fetchrow(
        "SELECT transaction_id, position FROM events ORDER BY transaction_id DESC, position DESC "
        "LIMIT 1"
    )
    assert head is not None
    at = Cursor(head["transaction_id"], head["position"])
    meetings = await every_meeting(pool, at=at, **roster)
    return {
        "meetings": meetings,
        "rosters": [await get_roster(pool, m.meeting_id, at=at, **roster) for m in meetings[:20]],
        "histories": {a: await contact_history(pool, a, **contacts) for a in actors},
        "actors": {a: await get_actor(pool, a, **contacts) for a in actors},
        "graph": await contact_graph(pool, **contacts),
    }


async def test_rebuilds_killed_ten_times_then_finished_equal_a_clean_rebuild() -> None:
    started = time.monotonic()
    async with own_postgres() as pg:
        options = ConnectionOptions(dsn=pg.url, role=APP_ROLE, min_pool_size=1, max_pool_size=6)
        pool = await create_pool(options)
        child: asyncio.subprocess.Process | None = None
        try:
            store = EventStore(pool, poll_interval=0.05)
            seeded = await load_seed(CommandHandler(store))
            assert seeded.events > 0
            synth = Synth(20240228, "syn", WEIGHTS)
            heads: dict[str, StreamHead] = {}
            await _copy(pg.url, synth, heads, SYNTHETIC)
            for name in NAMES:  # version 1 is live (no pointer yet) and up to date
                await _build(store, PROJECTIONS[name](1), options)
            loaded = time.monotonic() - started

            kills: list[tuple[dict[str, float], dict[str, float]]] = []
            for _ in range(KILLS):
                child = await _spawn(pg.url)
                kills.append(await _kill_mid_build(pool, child))
                child = None
                assert all(p < 1 for p in kills[-1][1].values()), "killed after it was done"
                for name in NAMES:
                    assert await live_version(pool, name) is None, "a killed rebuild switched"
                await _copy(pg.url, synth, heads, BETWEEN_KILLS)
            killed = time.monotonic() - started - loaded

            before_final = {name: (await checkpoint_of(pool, name, 2))[1] for name in NAMES}
            child = await _spawn(pg.url)
            assert child.stdout is not None
            reports: dict[str, dict[str, Any]] = {}
            async with asyncio.timeout(90):
                while (line := (await child.stdout.readline()).decode().strip()) != "DONE":
                    assert line, "the last rebuild exited without finishing"
                    report = json.loads(line)
                    reports[report["name"]] = report
                assert await child.wait() == 0
            child = None

            # The pointer moved once, to the rebuilt version; the old tables are gone.
            for name in NAMES:
                assert await live_version(pool, name) == 2
                assert (reports[name]["old_version"], reports[name]["new_version"]) == (1, 2)
            leftovers = await pool.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'projections' "
                "AND tablename LIKE '%\\_v1'"
            )
            assert not leftovers, leftovers

            # Across eleven runs, every event was applied exactly once; the last run resumed.
            totals = await _totals(pool)
            for name in NAMES:
                assert (await checkpoint_of(pool, name, 2))[1] == totals[name]
                assert reports[name]["events"] == totals[name] - before_final[name]
            assert any(before_final.values()), "the last kill left nothing to resume"

            clean_roster = RosterProjection(name="roster_clean", table_prefix="rosterclean")
            clean_contacts = ContactsProjection(name="contacts_clean", prefix="clean_")
            await _build(store, clean_roster, options)
            await _build(store, clean_contacts, options)
            actors = [*SEED_ACTORS, *synth.persons[:6], *synth.orgs[:4]]
            live = await _views(pool, {"version": 2}, {"version": 2}, actors)
            clean = await _views(
                pool, {"table_prefix": "rosterclean"}, {"prefix": "clean_"}, actors
            )
        finally:
            if child is not None and child.returncode is None:
                child.kill()
                await child.wait()
            await pool.close()

    assert live["meetings"], "no meeting was projected"
    assert any(live["histories"].values()), "no contact history was projected"
    assert live["graph"], "no contact graph was projected"
    assert live["meetings"] == clean["meetings"]
    assert live["rosters"] == clean["rosters"]
    for actor in actors:
        assert live["histories"][actor] == clean["histories"][actor], actor
        assert live["actors"][actor] == clean["actors"][actor], actor
    assert live["graph"] == clean["graph"]
    print(
        f"\nrebuild drill: {seeded.events} seed + {SYNTHETIC + KILLS * BETWEEN_KILLS} synthetic "
        f"events; loaded in {loaded:.1f}s, {KILLS} kills in {killed:.1f}s at (roster/contacts) "
        + ", ".join("/".join(f"{k[1][n]:.0%}" for n in NAMES) for k in kills)
        + f"; last run applied { ({n: r['events'] for n, r in reports.items()}) } of {totals}"
        f" in {max(r['seconds'] for r in reports.values()):.1f}s; "
        f"total {time.monotonic() - started:.1f}s"
    )
