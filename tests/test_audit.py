"""The audit view lists what was reported about an item, corrected and retracted, when, by whom."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING

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
from projections.audit import AuditProjection, audit_trail
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

    trail = await audit_trail(pool, stream, table=projection.table)
    assert [e.action for e in trail] == ["reported", "corroborated", "corrected", "retracted"]
    assert [e.recorded_by for e in trail] == ["key:reporter"] + ["key:editor"] * 3
    assert all(e.target_event_id == fact for e in trail[1:])
    assert trail[2].reason == "the ministry gave the day"
    assert trail[2].changes is not None
    assert trail[2].changes["valid_time"]["edtf"] == "2024-02-28"
    assert trail[3].reason == "the call never happened"
    assert [e.recorded_at for e in trail] == sorted(e.recorded_at for e in trail)
    # The same trail is found from the event id alone.
    assert await audit_trail(pool, fact, table=projection.table) == trail
