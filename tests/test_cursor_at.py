"""A time to a feed cursor: the last visible event recorded at or before it, ties in feed order,
found by one step along an index."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import asyncpg
import pytest

from events import START, EventStore, InvalidReadError, NewEvent, horizon_lag
from events.store import CURSOR_AT_SQL

if TYPE_CHECKING:
    from events import RecordedEvent

_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


async def _visible(store: EventStore) -> None:
    async with asyncio.timeout(30):
        while (await horizon_lag(store.pool)).events_held_back:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def _append(store: EventStore, n: int = 1) -> list[RecordedEvent]:
    batch = [NewEvent(type="test.timed", data={"i": i}) for i in range(n)]
    await store.append(f"t{uuid4().hex[:10]}-1", batch)
    return await store.read_events([e.event_id for e in batch])


async def test_nothing_recorded_yet_is_the_start(store: EventStore) -> None:
    assert await store.cursor_at(datetime(1970, 1, 1, tzinfo=UTC)) == START


async def test_the_last_event_at_or_before_the_time(store: EventStore) -> None:
    first = await _append(store, 3)
    second = await _append(store)
    await _visible(store)
    # One transaction's events share their time: the last of them in feed order counts.
    at = first[0].recorded_at
    assert {e.recorded_at for e in first} == {at}
    assert await store.cursor_at(at) == max(e.cursor for e in first)
    assert await store.cursor_at(at + timedelta(microseconds=1)) == max(e.cursor for e in first)
    assert await store.cursor_at(at - timedelta(microseconds=1)) < first[0].cursor
    assert await store.cursor_at(second[0].recorded_at) == second[0].cursor
    assert await store.cursor_at(_FAR_FUTURE) == second[0].cursor
    # Any zone: the same instant.
    elsewhere = at.astimezone(datetime.now().astimezone().tzinfo)
    assert await store.cursor_at(elsewhere) == max(e.cursor for e in first)


async def test_events_held_back_by_the_horizon_do_not_count(
    store: EventStore, owner_dsn: str
) -> None:
    before = await _append(store)
    await _visible(store)
    holder = await asyncpg.connect(owner_dsn)
    try:
        # An open transaction with an id keeps everything committed after it invisible.
        async with holder.transaction():
            await holder.execute("SELECT pg_current_xact_id()")
            held = await _append(store)
            assert await store.cursor_at(_FAR_FUTURE) == before[0].cursor
            assert await store.cursor_at(held[0].recorded_at) == before[0].cursor
    finally:
        await holder.close()
    await _visible(store)
    assert await store.cursor_at(_FAR_FUTURE) == held[0].cursor


async def test_interleaved_transactions_follow_the_writers_clock(
    store: EventStore, owner_dsn: str
) -> None:
    # A transaction's events carry its start time but take their place in the feed at their
    # first write: one that started earlier and wrote later comes after the other in the feed.
    early = await asyncpg.connect(owner_dsn)
    try:
        async with early.transaction():
            started: datetime = await early.fetchval("SELECT now()")
            meanwhile = await _append(store)
            late = NewEvent(type="test.timed", data={"late": True})
            await store.append(f"t{uuid4().hex[:10]}-1", [late], connection=early)
        [written] = await store.read_events([late.event_id])
    finally:
        await early.close()
    await _visible(store)
    assert written.recorded_at == started < meanwhile[0].recorded_at
    assert written.cursor > meanwhile[0].cursor
    assert await store.cursor_at(started) == written.cursor
    assert await store.cursor_at(meanwhile[0].recorded_at) == meanwhile[0].cursor


async def test_a_time_without_a_zone_is_refused(store: EventStore) -> None:
    with pytest.raises(InvalidReadError, match="time zone"):
        await store.cursor_at(datetime(2024, 1, 1))  # noqa: DTZ001 (the mistake under test)


async def test_inside_a_callers_snapshot(store: EventStore) -> None:
    async with store.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        seen = await store.cursor_at(_FAR_FUTURE, connection=conn)
        await _append(store)
        await _visible(store)
        # The caller's snapshot was taken before: the new event is not in it.
        assert await store.cursor_at(_FAR_FUTURE, connection=conn) == seen
    assert await store.cursor_at(_FAR_FUTURE) > seen


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_nodes(child))
    return found


async def test_the_lookup_is_one_step_along_the_index(large_log_dsn: str) -> None:
    conn = await asyncpg.connect(large_log_dsn)
    try:
        bounds = await conn.fetchrow("SELECT min(recorded_at), max(recorded_at) FROM events")
        assert bounds is not None
        first, last = bounds
        for when in (first, first + (last - first) / 2, last, _FAR_FUTURE):
            text = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {CURSOR_AT_SQL}", when)
            nodes = _nodes(json.loads(text)[0]["Plan"])
            kinds = {n["Node Type"] for n in nodes}
            assert "Seq Scan" not in kinds and "Sort" not in kinds, kinds
            [scan] = [n for n in nodes if n.get("Index Name") == "events_recorded_at"]
            assert scan["Node Type"] in {"Index Only Scan", "Index Scan"}
            assert scan["Scan Direction"] == "Backward"
            # One row read, not a walk: the first one it meets is visible.
            assert scan["Actual Rows"] == 1
    finally:
        await conn.close()
