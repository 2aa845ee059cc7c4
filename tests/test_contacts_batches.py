"""The contacts projection over a synthetic log with many amendments: the same tables whatever
the batch boundaries, whether batches are applied directly or prepared ahead by the runner,
and the same after an older table layout is upgraded in place."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from events.connect import connect
from events.domain.amendments import Stored
from events.domain.catalogue import CATALOGUE, INTERACTION_EVENTS
from projections.contacts import ContactsProjection, InteractionView, interaction_from
from projections.contacts import writer as contacts
from projections.runner import ProjectionRunner, checkpoint_of
from projections.single_fact import SingleFactRows
from tests.synthetic_log import SyntheticLog

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from events import RecordedEvent

EVENTS = 2_500
TABLES = {
    "interactions": "interaction_id",
    "interaction_actors": "interaction_id, actor_id, role",
    "actors": "actor_id",
    "actor_roles": "actor_id, organisation_id, title, lower, upper",
}


@pytest.fixture
async def log(own_dsn: str) -> AsyncIterator[tuple[SyntheticLog, list[RecordedEvent]]]:
    synthetic = await SyntheticLog.create(own_dsn, EVENTS)
    yield synthetic, await synthetic.read(ContactsProjection.filter)
    await synthetic.close()


def _fresh() -> tuple[ContactsProjection, str]:
    prefix = f"c{uuid.uuid4().hex[:8]}_"
    return ContactsProjection(name=prefix, prefix=prefix), prefix


async def _tables(synthetic: SyntheticLog, prefix: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of the projection's tables, views decoded (their text may differ in layout)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    async with synthetic.pool.acquire() as conn:
        for table, key in TABLES.items():
            rows = await conn.fetch(f"SELECT * FROM projections.{prefix}{table}_v1 ORDER BY {key}")
            tables[table] = [dict(r) for r in rows]
            for row in tables[table]:
                if isinstance(row.get("view"), str):
                    row["view"] = await conn.fetchval("SELECT $1::jsonb", row["view"])
    return tables


async def test_the_same_tables_whatever_the_batches_and_however_applied(
    log: tuple[SyntheticLog, list[RecordedEvent]],
) -> None:
    synthetic, events = log
    built: list[dict[str, list[dict[str, Any]]]] = []
    for batch in (EVENTS, 3, 50):
        projection, prefix = _fresh()
        await synthetic.apply(projection, events, batch)
        built.append(await _tables(synthetic, prefix))
    # The runner prepares each batch ahead, on another connection, and writes it afterwards.
    projection, prefix = _fresh()
    runner = ProjectionRunner(
        synthetic.store, projection, lambda: connect(synthetic.options), batch_size=40
    )
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(60):
            while (await checkpoint_of(synthetic.pool, projection.name, 1))[1] < len(events):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    built.append(await _tables(synthetic, prefix))
    whole = built[0]
    assert len(whole["interactions"]) > 500
    assert any(r["retracted"] for r in whole["interactions"])
    assert all(tables == whole for tables in built[1:])


async def test_a_table_whose_views_are_jsonb_is_upgraded_in_place(
    log: tuple[SyntheticLog, list[RecordedEvent]],
) -> None:
    synthetic, events = log
    reference, reference_prefix = _fresh()
    await synthetic.apply(reference, events, EVENTS)
    projection, prefix = _fresh()
    half = len(events) // 2
    await synthetic.apply(projection, events[:half], 40)
    async with synthetic.pool.acquire() as conn:
        await conn.execute(
            f"ALTER TABLE projections.{prefix}interactions_v1 "
            "ALTER COLUMN view TYPE jsonb USING view::jsonb"
        )
    await synthetic.apply(projection, events[half:], 40)
    assert await _tables(synthetic, prefix) == await _tables(synthetic, reference_prefix)


async def test_a_lone_interaction_event_gives_the_view_folding_gives(
    log: tuple[SyntheticLog, list[RecordedEvent]],
) -> None:
    # interaction_from takes a shortcut for a list of one interaction event; an iterator of
    # the same fact goes through the fold, which must agree with it.
    _, events = log
    lone = [
        Stored(str(e.event_id), CATALOGUE.decode(e))  # type: ignore[arg-type]
        for e in events
        if e.stream_id.startswith("interaction-")
    ]
    lone = [s for s in lone if isinstance(s.event, INTERACTION_EVENTS)]
    assert len(lone) > 100
    for stored in lone:
        assert interaction_from([stored]) == interaction_from(iter([stored]))


async def test_the_single_event_shortcut_builds_the_tables_the_full_path_builds(
    log: tuple[SyntheticLog, list[RecordedEvent]], monkeypatch: pytest.MonkeyPatch
) -> None:
    synthetic, events = log
    projection, prefix = _fresh()
    await synthetic.apply(projection, events, 500)
    shortcut = await _tables(synthetic, prefix)
    # A shortcut that covers no type: every interaction takes the full path.
    monkeypatch.setattr(contacts, "_SINGLE_FACT", SingleFactRows(CATALOGUE, {}, InteractionView))
    projection, prefix = _fresh()
    await synthetic.apply(projection, events, 500)
    assert shortcut == await _tables(synthetic, prefix)
