"""The audit view lists what was reported about an item, corrected and retracted, when, by whom."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import TYPE_CHECKING, Any

from events import EventStore, Metadata
from events.connect import connect
from events.domain.commands import (
    AddSource,
    CorrectEvent,
    ParticipantRef,
    RecordInteraction,
    RegisterActor,
    RetractEvent,
)
from events.domain.handler import CommandHandler
from events.domain.vocabulary import Source
from projections.audit import TRAIL_SQL, AuditEntry, AuditProjection, audit_trail
from projections.runner import ProjectionRunner, wait_for_cursor

if TYPE_CHECKING:
    import asyncpg

    from events import ConnectionOptions


async def test_the_audit_trail_of_an_interaction(
    store: EventStore, pool: asyncpg.Pool, app_options: ConnectionOptions
) -> None:
    handler = CommandHandler(store)
    tag = uuid.uuid4().hex[:10]
    a, b, call = f"a_{tag}", f"b_{tag}", f"call_{tag}"
    for actor in (a, b):
        await handler.handle(
            RegisterActor(actor_id=actor, kind="person", canonical_name=f"Person {actor}")
        )
    reporter = Metadata(recorded_by="key:reporter")
    editor = Metadata(recorded_by="key:editor")
    recorded = await handler.handle(
        RecordInteraction(
            kind="phone_call",
            interaction_id=call,
            participants=(
                ParticipantRef(actor=a, role="initiator"),
                ParticipantRef(actor=b, role="recipient"),
            ),
            valid_time="2024-02",
        ),
        metadata=reporter,
    )
    [fact] = recorded.event_ids
    stream = f"interaction-{call}"
    await handler.handle(
        AddSource(stream=stream, target_event_id=fact, source=Source(publisher="TASS")),
        metadata=editor,
    )
    await handler.handle(
        CorrectEvent(
            stream=stream,
            target_event_id=fact,
            changes={"valid_time": "2024-02-28"},
            reason="the ministry gave the day",
        ),
        metadata=editor,
    )
    last = await handler.handle(
        RetractEvent(stream=stream, target_event_id=fact, reason="the call never happened"),
        metadata=editor,
    )
    assert last.result is not None

    projection = AuditProjection(name=f"audit_{tag}")
    runner = ProjectionRunner(store, projection, lambda: connect(app_options), batch_size=500)
    task = asyncio.create_task(runner.run())
    try:
        assert await wait_for_cursor(pool, projection, last.result.cursor, within=30)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    trail = [e for _, e in await audit_trail(pool, stream, table=projection.table, limit=100)]
    assert [e.action for e in trail] == ["reported", "corroborated", "corrected", "retracted"]
    assert [e.recorded_by for e in trail] == ["key:reporter"] + ["key:editor"] * 3
    assert all(e.target_event_id == fact for e in trail[1:])
    assert trail[2].reason == "the ministry gave the day"
    assert trail[2].changes is not None
    assert trail[2].changes["valid_time"]["edtf"] == "2024-02-28"
    assert trail[3].reason == "the call never happened"
    assert [e.recorded_at for e in trail] == sorted(e.recorded_at for e in trail)
    # The same trail is found from the event id alone.
    of_fact = await audit_trail(pool, fact, table=projection.table, limit=100)
    assert [e for _, e in of_fact] == trail
    # Walked a page at a time, by stream and by event id, the trail is the same.
    for item in (stream, fact):
        for limit in (1, 2, 3):
            assert await _walk(pool, item, projection.table, limit) == trail


async def _walk(pool: asyncpg.Pool, item: str, table: str, limit: int) -> list[AuditEntry]:
    walked: list[AuditEntry] = []
    after = None
    while page := await audit_trail(pool, item, table=table, after=after, limit=limit):
        assert len(page) <= limit
        walked += [e for _, e in page]
        after = page[-1][0]
    return walked


# Many items' entries, a few amendments among them (each pointing at an earlier event).
_FILL_SQL = """
INSERT INTO projections.{table} (position, stream_id, event_id, target_event_id, action, type,
                                 recorded_at)
SELECT g, 'interaction-' || (g / 5), gen_random_uuid(),
       CASE WHEN g % 10 = 0 THEN gen_random_uuid() END,
       CASE WHEN g % 10 = 0 THEN 'corrected' ELSE 'reported' END, 'test.fill', now()
FROM generate_series(1, $1::bigint) AS g
"""


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_nodes(child))
    return found


async def test_a_page_of_a_trail_is_found_by_index(app_options: ConnectionOptions) -> None:
    projection = AuditProjection(name=f"audit_{uuid.uuid4().hex[:10]}")
    table = projection.table
    conn = await connect(app_options)
    try:
        await projection.setup(conn)
        try:
            await conn.execute(_FILL_SQL.format(table=table), 50_000)
            await conn.execute(f"ANALYZE projections.{table}")
            some_event = await conn.fetchval(
                f"SELECT event_id FROM projections.{table} WHERE position = 25001"
            )
            for item, event_id, indexes in (
                (
                    str(some_event),
                    some_event,
                    {f"{table}_event_position_idx", f"{table}_target_position_idx"},
                ),
                ("interaction-5000", None, {f"{table}_stream_idx"}),
            ):
                for after in (0, 24_000):
                    text = await conn.fetchval(
                        f"EXPLAIN (FORMAT JSON) {TRAIL_SQL.format(table=table)}",
                        item,
                        event_id,
                        after,
                        101,
                    )
                    nodes = _nodes(json.loads(text)[0]["Plan"])
                    assert "Seq Scan" not in {n["Node Type"] for n in nodes}, nodes
                    used = {n.get("Index Name") for n in nodes}
                    assert indexes <= used, nodes
                    # Never the whole table in position order, filtered to the item.
                    assert f"{table}_pkey" not in used, nodes
            [(position, entry)] = await audit_trail(conn, str(some_event), table=table, limit=10)
            assert (position, entry.event_id) == (25001, str(some_event))
        finally:
            await projection.drop(conn)
    finally:
        await conn.close()
