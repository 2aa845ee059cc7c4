"""The benchmarks' log: the seed article through the command handler, then synthetic domain
events (``bench.projections.Synth``) bulk-loaded with COPY, grown in steps on one database.

``bench.http`` fills once; ``bench.views`` grows the same log from one size to the next (100k,
then 1M), so the generator's state (registered actors, open meetings, stream heads) is kept
between steps and the larger log extends the smaller one.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Final

from bench.projections import COPY_COLUMNS, WEIGHTS, Synth, _rows
from events import APP_ROLE, ConnectionOptions, EventStore
from events.connect import create_pool
from events.domain.handler import CommandHandler
from events.domain.seed import load_seed

if TYPE_CHECKING:
    import asyncpg

    from events.rows import StreamHead

__all__ = ("COPY_CHUNK", "Filler")

COPY_CHUNK: Final = 10_000
SEED: Final = 20240228
CATEGORY_COUNTS_SQL: Final = """
SELECT split_part(stream_id, '-', 1) AS category, count(*) AS n FROM events GROUP BY 1
"""


class Filler:
    """Grows one database's log: the seed article first, then synthetic events."""

    def __init__(self, dsn: str, owner: asyncpg.Connection) -> None:
        self._dsn = dsn
        self._owner = owner
        self._synth = Synth(SEED, "", WEIGHTS)
        self._heads: dict[str, StreamHead] = {}
        self._seeded = False
        self.loaded = 0
        """Events in the log (the seed's and the synthetic ones)."""

    async def grow(self, target: int, *, chunk: int = COPY_CHUNK) -> None:
        """Append synthetic events until the log holds ``target`` events, then analyse it."""
        if not self._seeded:
            pool = await create_pool(ConnectionOptions(dsn=self._dsn, role=APP_ROLE))
            try:
                report = await load_seed(CommandHandler(EventStore(pool)))
            finally:
                await pool.close()
            self._seeded = True
            self.loaded = report.events
        while self.loaded < target:
            rows = _rows(self._synth, self._heads, min(chunk, target - self.loaded))
            await self._owner.copy_records_to_table("events", records=rows, columns=COPY_COLUMNS)
            self.loaded += len(rows)
        await self._owner.execute("VACUUM ANALYZE events")

    async def mix(self) -> tuple[int, str]:
        """The log's size and its share of each stream category, for the report."""
        counts = Counter(
            {r["category"]: r["n"] for r in await self._owner.fetch(CATEGORY_COUNTS_SQL)}
        )
        total = sum(counts.values())
        mix = ", ".join(f"{c} {n / total:.0%}" for c, n in sorted(counts.items()))
        return total, mix
