"""The audit view lists what was reported about an item, corrected and retracted, when, by whom."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import TYPE_CHECKING, Any, cast

import msgspec

from events import START, EventStore, Metadata
from events.connect import connect
from events.domain.amendments import Record, Stored, evolve_record
from events.domain.catalogue import CATALOGUE, EventCorrected
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
from projections.runner import ProjectionRunner, checkpoint_of, wait_for_cursor
from tests.database import scratch_database
from tests.synthetic_log import SyntheticLog

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
    await handler.handle(
        CorrectEvent(
            stream=stream,
            target_event_id=fact,
            changes={"valid_time": "2024-02-29", "topics": ["Gaza"]},
            reason="a later report",
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
    assert [e.action for e in trail] == [
        "reported",
        "corroborated",
        "corrected",
        "corrected",
        "retracted",
    ]
    assert [e.recorded_by for e in trail] == ["key:reporter"] + ["key:editor"] * 4
    assert all(e.target_event_id == fact for e in trail[1:])
    assert trail[2].reason == "the ministry gave the day"
    assert trail[2].changes is not None
    assert trail[2].changes["valid_time"]["edtf"] == "2024-02-28"
    # Each correction says what the fields were just before it: as recorded, then as corrected.
    assert trail[2].before is not None
    assert list(trail[2].before) == ["valid_time"]
    assert trail[2].before["valid_time"]["edtf"] == "2024-02"
    assert trail[3].before is not None
    assert trail[3].changes is not None
    assert (trail[3].before["valid_time"]["edtf"], trail[3].before["topics"]) == ("2024-02-28", [])
    assert (trail[3].changes["valid_time"]["edtf"], trail[3].changes["topics"]) == (
        "2024-02-29",
        ["Gaza"],
    )
    assert all(e.before is None for e in trail if e.action != "corrected")
    assert trail[4].reason == "the call never happened"
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


_ROWS_SQL = "SELECT * FROM projections.{table} ORDER BY position"


async def test_what_corrections_changed_is_the_log_folded_up_to_each(server_url: str) -> None:
    """Over a synthetic log with many corrections: the same rows whatever the batches, and each
    correction's ``before`` is its target folded from the stream's events before it (as the
    command rules fold a stream)."""
    async with scratch_database(server_url, migrated=True) as dsn:
        synthetic = await SyntheticLog.create(dsn, 2_000)
        try:
            events = await synthetic.read(AuditProjection.filter)
            tables = []
            for batch in (1, 7, 1_000):
                projection = AuditProjection(name=f"audit_b{batch}")
                await synthetic.apply(projection, events, batch)
                rows = await synthetic.pool.fetch(_ROWS_SQL.format(table=projection.table))
                tables.append([dict(r) for r in rows])
            assert tables[1] == tables[0]
            assert tables[2] == tables[0]
            corrected = [r for r in tables[0] if r["action"] == "corrected"]
            assert len(corrected) >= 20
            records: dict[str, Record] = {}
            expected: dict[str, dict[str, Any]] = {}
            for event in events:
                record = records.get(event.stream_id, Record())
                stored = Stored(str(event.event_id), cast("Any", CATALOGUE.decode(event)))
                if isinstance(stored.event, EventCorrected):
                    target = record.facts[stored.event.target_event_id]
                    expected[stored.event_id] = json.loads(
                        msgspec.json.encode(
                            {name: getattr(target, name) for name in stored.event.changes}
                        )
                    )
                records[event.stream_id] = evolve_record(record, stored)
            assert {str(r["event_id"]): json.loads(r["before"]) for r in corrected} == expected
            assert all(r["before"] is None for r in tables[0] if r["action"] != "corrected")
        finally:
            await synthetic.close()


async def test_setup_replaces_a_trail_table_of_an_older_layout(
    app_options: ConnectionOptions,
) -> None:
    """A trail table made before corrections said what they changed (no ``before``, no
    layout stamp) is replaced, and the checkpoint goes back to the start to fill it again."""
    projection = AuditProjection(name=f"audit_{uuid.uuid4().hex[:10]}")
    conn = await connect(app_options)
    try:
        await conn.execute(
            f"""CREATE TABLE projections.{projection.table} (
                position bigint PRIMARY KEY, stream_id text NOT NULL, event_id uuid NOT NULL,
                target_event_id uuid, action text NOT NULL, type text NOT NULL,
                recorded_at timestamptz NOT NULL, recorded_by text, reason text, changes jsonb);
            INSERT INTO projections.{projection.table} VALUES
                (1, 'interaction-x', gen_random_uuid(), NULL, 'reported', 't', now());
            INSERT INTO projection_checkpoints (name, version, transaction_id, position, events)
            VALUES ('{projection.name}', 1, '5', 1, 1)"""
        )
        try:
            for _ in range(2):  # idempotent once replaced
                await projection.setup(conn)
                assert await checkpoint_of(conn, projection.name, 1) == (START, 0)
                assert not await conn.fetch(f"SELECT * FROM projections.{projection.table}")
                columns = await conn.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = $1",
                    projection.table,
                )
                assert "before" in {r[0] for r in columns}
        finally:
            await projection.drop(conn)
    finally:
        await conn.close()
