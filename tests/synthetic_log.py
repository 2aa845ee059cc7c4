"""A synthetic log of valid domain events (the benchmark's generator) in a database of the
test's own, for tests that compare projections built over it in different ways."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import asyncpg

from bench.projections import COPY_COLUMNS, Synth, _rows
from events import APP_ROLE, START, ConnectionOptions, EventStore, RecordedEvent, horizon_lag
from events.connect import connect, create_pool
from events.store import MAX_PAGE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from events.records import FeedFilter
    from events.rows import StreamHead
    from projections.runner import Projection

# More amendments and declarations than the benchmark's mix: amendments are the point here.
WEIGHTS = (0.02, 0.40, 0.35, 0.08, 0.15)


class SyntheticLog:
    """``events`` synthetic events written in several transactions, read back in feed order."""

    def __init__(self, pool: asyncpg.Pool, options: ConnectionOptions) -> None:
        self.pool, self.options = pool, options
        self.store = EventStore(pool)

    @classmethod
    async def create(cls, dsn: str, events: int, *, seed: int = 20261202) -> SyntheticLog:
        owner = await asyncpg.connect(dsn)
        synth = Synth(seed, "", WEIGHTS)
        heads: dict[str, StreamHead] = {}
        try:
            # Several transactions, so that the feed order has more than one transaction id.
            for _ in range(5):
                rows = _rows(synth, heads, events // 5)
                await owner.copy_records_to_table("events", records=rows, columns=COPY_COLUMNS)
        finally:
            await owner.close()
        options = ConnectionOptions(dsn=dsn, role=APP_ROLE, min_pool_size=1, max_pool_size=4)
        return cls(await create_pool(options), options)

    async def read(self, feed: FeedFilter | None) -> list[RecordedEvent]:
        """Every event of ``feed``, once no other transaction of the cluster holds any of
        them back behind the feed's horizon."""
        async with asyncio.timeout(30):
            while (await horizon_lag(self.pool)).events_held_back:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        events: list[RecordedEvent] = []
        cursor = START
        while True:
            page = await self.store.read_all(cursor, limit=MAX_PAGE, filter=feed)
            events.extend(page.events)
            cursor = page.next_cursor
            if not page.full:
                return events

    async def apply(
        self, projection: Projection, events: Sequence[RecordedEvent], batch: int
    ) -> None:
        """``events`` applied in batches of ``batch``, each in a transaction of its own, as
        the runner applies them."""
        conn = await connect(self.options)
        try:
            await projection.setup(conn)
            for start in range(0, len(events), batch):
                async with conn.transaction():
                    await projection.apply(conn, events[start : start + batch])
        finally:
            await conn.close()

    async def close(self) -> None:
        await self.pool.close()
