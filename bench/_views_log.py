"""The database side of ``bench.views``: projections caught up before measuring, and what each
workload asks for, picked from the log itself (the busiest organisation, a rare actor, the
cursors at the head and halfway), so that the requests depend on the HTTP contract and the
event log only, never on a projection's tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from events import APP_ROLE, ConnectionOptions, Cursor, EventStore, connect
from events.connect import create_pool
from projections.rebuild import live_version
from projections.runner import ProjectionRunner, projection_lag
from service.projectors import PROJECTIONS

if TYPE_CHECKING:
    import asyncpg

__all__ = ("Targets", "catch_up", "floor_starts", "pick_targets")

BATCH: Final = 5_000
ACTORS_SQL: Final = """
WITH registered AS (
    SELECT data->>'actor_id' AS actor_id, data->>'kind' AS kind,
           data->>'canonical_name' AS name
    FROM events WHERE type = 'actor.registered.v1'
), named AS (
    SELECT p->>'actor_id' AS actor_id, count(*) AS n
    FROM events, jsonb_array_elements(data->'participants') AS p
    WHERE stream_id LIKE 'interaction-%' AND jsonb_typeof(data->'participants') = 'array'
    GROUP BY 1
)
SELECT r.actor_id, r.kind, r.name, coalesce(n.n, 0) AS n
FROM registered AS r LEFT JOIN named AS n USING (actor_id)
ORDER BY n DESC, r.actor_id
"""
MEETING_SQL: Final = """
SELECT stream_id, count(*) AS n FROM events WHERE stream_id LIKE 'meeting-%'
GROUP BY stream_id ORDER BY n DESC, stream_id LIMIT 1
"""
FIRST_EVENT_SQL: Final = """
SELECT event_id FROM events WHERE stream_id = $1 ORDER BY stream_version LIMIT 1
"""
COUNT_SQL: Final = "SELECT count(*) FROM events"
NTH_SQL: Final = """
SELECT transaction_id, position FROM events ORDER BY transaction_id, position OFFSET $1 LIMIT 1
"""
HEAD_SQL: Final = """
SELECT transaction_id, position FROM events ORDER BY transaction_id DESC, position DESC LIMIT 1
"""
HEAD_VISIBLE_SQL: Final = """
SELECT coalesce(
    (SELECT transaction_id FROM events ORDER BY transaction_id DESC, position DESC LIMIT 1)
        < pg_snapshot_xmin(pg_current_snapshot()),
    true)
"""
HORIZON_BOUND_S: Final = 900.0
FLOOR_STARTS_SQL: Final = """
SELECT transaction_id, position FROM (
    SELECT transaction_id, position, row_number() OVER (ORDER BY transaction_id, position) AS n
    FROM events
) AS numbered WHERE n % $1 = 1 ORDER BY n
"""


@dataclass(frozen=True)
class Targets:
    """What the workloads of one log size ask for."""

    events: int
    organisation: str
    """The organisation named in the most interactions."""
    person: str
    """The person named in the most interactions."""
    rare_actor: str
    """A registered actor named in the fewest interactions (often none)."""
    unknown_actor: str
    meeting: str
    """The meeting with the most events."""
    event_id: str
    """The first event of that meeting (its audit trail)."""
    surname: str
    """The most common last word of persons' names (an actor search with many answers)."""
    head: Cursor
    halfway: Cursor


async def pick_targets(owner: asyncpg.Connection) -> Targets:
    """Read the workloads' targets from the log."""
    actors = await owner.fetch(ACTORS_SQL)
    persons = [r for r in actors if r["kind"] == "person"]
    organisations = [r for r in actors if r["kind"] == "organisation"]
    if not persons or not organisations:
        raise RuntimeError("the log registers no person or no organisation")
    surnames: dict[str, int] = {}
    for r in persons:
        last = (r["name"] or "").rsplit(maxsplit=1)[-1]
        surnames[last] = surnames.get(last, 0) + 1
    meeting = await owner.fetchrow(MEETING_SQL)
    if meeting is None:
        raise RuntimeError("the log holds no meeting")
    event_id = await owner.fetchval(FIRST_EVENT_SQL, meeting["stream_id"])
    total: int = await owner.fetchval(COUNT_SQL)
    head = await owner.fetchrow(HEAD_SQL)
    half = await owner.fetchrow(NTH_SQL, total // 2)
    assert head is not None and half is not None  # noqa: S101 (the log is not empty)
    return Targets(
        events=total,
        organisation=organisations[0]["actor_id"],
        person=persons[0]["actor_id"],
        rare_actor=actors[-1]["actor_id"],
        unknown_actor=f"nobody_{uuid.uuid4().hex[:8]}",
        meeting=meeting["stream_id"].removeprefix("meeting-"),
        event_id=str(event_id),
        surname=max(surnames, key=lambda s: (surnames[s], s)),
        head=Cursor(head["transaction_id"], head["position"]),
        halfway=Cursor(half["transaction_id"], half["position"]),
    )


async def floor_starts(owner: asyncpg.Connection, every: int) -> list[Cursor]:
    """Where a page of the floor starts, every ``every`` events of the log."""
    rows = await owner.fetch(FLOOR_STARTS_SQL, every)
    return [Cursor(r["transaction_id"], r["position"]) for r in rows]


async def catch_up(dsn: str, *, poll: float = 0.5) -> float:
    """Run every projection the service registers (its live version) until none lags behind
    the log; the seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    options = ConnectionOptions(dsn=dsn, role=APP_ROLE, max_pool_size=4)
    pool = await create_pool(options)
    tasks: list[asyncio.Task[None]] = []
    try:
        store = EventStore(pool)
        projections = [
            make(await live_version(pool, name) or 1) for name, make in PROJECTIONS.items()
        ]

        async def opener() -> asyncpg.Connection:
            return await connect(options)

        for projection in projections:
            runner = ProjectionRunner(store, projection, opener, batch_size=BATCH)
            tasks.append(loop.create_task(runner.run()))
        # The feed (and so a projection's lag) only shows transactions below the cluster's
        # oldest running one: on a shared server another database's open transaction hides
        # the last COPY until it ends, and a lag of 0 would not mean caught up.
        while not await pool.fetchval(HEAD_VISIBLE_SQL):
            if loop.time() - started > HORIZON_BOUND_S:
                raise RuntimeError("the feed's horizon has not reached the log's head")
            await asyncio.sleep(poll)
        for projection in projections:
            while (await projection_lag(pool, projection)).events > 0:
                for task in tasks:
                    if task.done():
                        task.result()  # a runner that failed says why
                await asyncio.sleep(poll)
        return loop.time() - started
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await pool.close()
