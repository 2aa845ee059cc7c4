"""The roster folds each batch into the meetings' stored drafts and folds a meeting again from
the log when a batch amends it: whatever the batch boundaries, whichever batch an amendment
arrives in, every view equals ``roster_from`` over the whole log."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import asyncpg
import pytest

from bench.projections import COPY_COLUMNS, Synth, _rows
from events import APP_ROLE, START, ConnectionOptions, EventStore, RecordedEvent
from events.connect import connect, create_pool
from events.domain.catalogue import EventCorrected, EventRetracted
from events.store import MAX_PAGE
from projections.roster import Fact, RosterProjection, Routes, get_roster, roster_from

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from events.rows import StreamHead
    from projections.roster import RosterView

EVENTS = 2_500
# More amendments and declarations than the benchmark's mix: amendments are the point here.
WEIGHTS = (0.02, 0.40, 0.35, 0.08, 0.15)


class Log:
    """A synthetic log of valid domain events, each meeting's facts in it, and each meeting's
    roster folded from the whole log by ``roster_from``."""

    def __init__(self, pool: asyncpg.Pool, options: ConnectionOptions) -> None:
        self.pool, self.options = pool, options
        self.events: list[RecordedEvent] = []
        self.facts: dict[str, list[Fact]] = {}
        self.expected: dict[str, RosterView | None] = {}

    async def read(self) -> None:
        store, cursor = EventStore(self.pool), START
        while True:
            page = await store.read_all(cursor, limit=MAX_PAGE, filter=RosterProjection().filter)
            self.events.extend(page.events)
            cursor = page.next_cursor
            if not page.full:
                break
        routes = Routes()
        for event in self.events:
            fact = Fact.of(event)
            meeting_id = routes.route(fact)
            if meeting_id is not None:
                self.facts.setdefault(meeting_id, []).append(fact)
        self.expected = {m: roster_from(facts) for m, facts in self.facts.items()}

    async def apply(
        self, projection: RosterProjection, events: list[RecordedEvent], batch: int
    ) -> None:
        conn = await connect(self.options)
        try:
            await projection.setup(conn)
            for start in range(0, len(events), batch):
                async with conn.transaction():
                    await projection.apply(conn, events[start : start + batch])
        finally:
            await conn.close()

    async def views(self, prefix: str) -> dict[str, RosterView | None]:
        return {m: await get_roster(self.pool, m, table_prefix=prefix) for m in self.expected}

    def amended_in_a_later_batch(self, batch: int) -> int:
        """Amendments routed to a meeting whose target came in an earlier batch."""
        index = {str(e.event_id): n for n, e in enumerate(self.events)}
        count = 0
        for facts in self.facts.values():
            for fact in facts:
                if isinstance(fact.event, (EventCorrected, EventRetracted)):
                    target = index.get(fact.event.target_event_id)
                    if target is not None and target // batch < index[fact.event_id] // batch:
                        count += 1
        return count


@pytest.fixture
async def log(own_dsn: str) -> AsyncIterator[Log]:
    owner = await asyncpg.connect(own_dsn)
    synth = Synth(20261202, "", WEIGHTS)
    heads: dict[str, StreamHead] = {}
    try:
        # Several transactions, so that the feed order has more than one transaction id.
        for _ in range(5):
            rows = _rows(synth, heads, EVENTS // 5)
            await owner.copy_records_to_table("events", records=rows, columns=COPY_COLUMNS)
    finally:
        await owner.close()
    options = ConnectionOptions(dsn=own_dsn, role=APP_ROLE, min_pool_size=1, max_pool_size=4)
    pool = await create_pool(options)
    log = Log(pool, options)
    await log.read()
    yield log
    await pool.close()


def _fresh() -> tuple[RosterProjection, str]:
    prefix = f"r{uuid.uuid4().hex[:8]}"
    return RosterProjection(name=prefix, table_prefix=prefix), prefix


@pytest.mark.parametrize("batch", [3, 50, EVENTS])
async def test_views_folded_batch_by_batch_equal_the_fold_of_the_whole_log(
    log: Log, batch: int
) -> None:
    assert sum(v is not None for v in log.expected.values()) > 50
    if batch < EVENTS:
        # The amendments that make a meeting fold again from the log, not from its draft.
        assert log.amended_in_a_later_batch(batch) > 10
    projection, prefix = _fresh()
    await log.apply(projection, log.events, batch)
    assert await log.views(prefix) == log.expected


async def test_rows_without_a_draft_are_folded_again_from_the_log(log: Log) -> None:
    """A table from before drafts were kept (a ``facts`` column, no draft) is upgraded in place
    by ``setup``, and its meetings are folded from the log when a batch touches them."""
    projection, prefix = _fresh()
    half = len(log.events) // 2
    await log.apply(projection, log.events[:half], 40)
    async with log.pool.acquire() as conn:
        await conn.execute(
            f"ALTER TABLE projections.{prefix}_v1 ADD COLUMN facts jsonb NOT NULL DEFAULT '[]';"
            f"UPDATE projections.{prefix}_v1 SET draft = NULL"
        )
    await log.apply(projection, log.events[half:], 40)
    assert await log.views(prefix) == log.expected
    async with log.pool.acquire() as conn:
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1",
            f"{prefix}_v1",
        )
    assert "facts" not in {c["column_name"] for c in columns}
