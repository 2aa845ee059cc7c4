"""Actor events as soon as they commit (``events.committed``): each read returns exactly what
committed since the last one, above the feed's horizon too, and costs what is new, not the log."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from events import APP_ROLE, ConnectionOptions, EventStore, NewEvent
from events.committed import READ_ACTOR_EVENTS_SQL, CommittedActorEvents, Snapshot
from events.connect import create_pool

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from events import RecordedEvent


# These tests append events of a type no catalogue knows to actor streams: in a database of
# their own, so that no command handler of another test meets them in its directory.
@pytest.fixture
def owner_dsn(own_dsn: str) -> str:
    return own_dsn


@pytest.fixture
async def pool(own_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(ConnectionOptions(dsn=own_dsn, role=APP_ROLE, max_pool_size=4))
    yield pool
    await pool.close()


@pytest.fixture
def store(pool: asyncpg.Pool) -> EventStore:
    return EventStore(pool, poll_interval=0.2)


def _actor_stream() -> str:
    return f"actor-c{uuid.uuid4().hex[:12]}"


def _event(n: int = 0) -> NewEvent:
    return NewEvent(type="test.committed", data={"n": n})


async def _read(reader: CommittedActorEvents) -> list[RecordedEvent]:
    return [event async for page in reader.read_new() for event in page]


async def test_a_read_returns_what_committed_since_the_last_even_above_the_horizon(
    store: EventStore, pool: asyncpg.Pool, owner_dsn: str
) -> None:
    reader = CommittedActorEvents(pool)
    await _read(reader)
    older, younger = _actor_stream(), _actor_stream()
    conn = await asyncpg.connect(owner_dsn)
    try:
        transaction = conn.transaction()
        await transaction.start()
        # An older transaction appends first and commits last, holding the horizon meanwhile.
        await store.append(older, [_event()], connection=conn)
        await store.append(younger, [_event(1), _event(2)])
        await store.append(f"meeting-c{uuid.uuid4().hex[:12]}", [_event()])
        held_back = (await store.read_all(await store.horizon())).events
        assert younger not in {e.stream_id for e in held_back}
        seen = await _read(reader)
        assert [(e.stream_id, e.stream_version) for e in seen] == [(younger, 1), (younger, 2)]
        await transaction.commit()
    finally:
        await conn.close()
    seen = await _read(reader)
    assert [(e.stream_id, e.stream_version) for e in seen] == [(older, 1)]
    assert await _read(reader) == []


async def test_a_read_of_many_pages_returns_each_event_once_in_feed_order(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    reader = CommittedActorEvents(pool, page_size=3)
    await _read(reader)
    streams = [_actor_stream() for _ in range(4)]
    for n in range(10):
        await store.append(streams[n % 4], [_event(n)])
    seen = await _read(reader)
    assert [json.loads(e.data)["n"] for e in seen] == list(range(10))
    assert [e.cursor for e in seen] == sorted(e.cursor for e in seen)
    assert await _read(reader) == []


def test_a_snapshot_is_read_from_its_text_form() -> None:
    assert Snapshot.parse("10:20:") == Snapshot(20, ())
    assert Snapshot.parse("10:20:10,12,19") == Snapshot(20, (10, 12, 19))


def _objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object in ``text``: of an EXPLAIN's plan, every node."""
    found: list[dict[str, Any]] = []

    def keep(node: dict[str, Any]) -> dict[str, Any]:
        found.append(node)
        return node

    json.loads(text, object_hook=keep)
    return found


async def test_a_read_walks_the_actor_events_only(large_log_dsn: str) -> None:
    conn = await asyncpg.connect(large_log_dsn)
    try:
        xmax = int(await conn.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())::text"))
        steady = f"'{xmax}', 0, '0', 0, ARRAY['{xmax - 1}']::xid8[], 1000"  # since a recent read
        first = "'0', 0, '0', 0, ARRAY[]::xid8[], 1000"  # a first read: every actor event
        await conn.execute(
            f"PREPARE committed (xid8, bigint, xid8, bigint, xid8[], integer) AS "
            f"{READ_ACTOR_EVENTS_SQL}"
        )
        for mode in ("force_custom_plan", "force_generic_plan"):
            await conn.execute(f"SET plan_cache_mode = {mode}")
            for args in (steady, first):
                text = await conn.fetchval(
                    f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE committed ({args})"
                )
                nodes = [n for n in _objects(text) if n.get("Relation Name") == "events"]
                assert nodes
                # The large log holds no actor event: nothing of it is read.
                assert {n["Node Type"] for n in nodes} == {"Index Scan"}, (mode, args)
                assert {n["Index Name"] for n in nodes} == {"events_actor_streams"}
                assert sum(n.get("Rows Removed by Filter", 0) for n in nodes) == 0
    finally:
        await conn.close()
