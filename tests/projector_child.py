"""A projection runner in a process of its own, for tests that kill it with SIGKILL.

    python -m tests.projector_child DSN ROLE CATEGORY PAUSE_EVERY

It prints ``IN_BATCH`` (flushed) whenever it is halfway through a batch, pausing there briefly
so the test can kill it mid-transaction, and ``BATCH_DONE`` after each committed batch.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from events import ConnectionOptions, EventStore
from events.connect import connect, create_pool
from projections.runner import ProjectionRunner
from tests.test_runner import Counter

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg

    from events import RecordedEvent


class Announcing(Counter):
    """A counter that says where it is, and lingers in the middle of each batch."""

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        half = len(events) // 2
        await super().apply(conn, events[:half])
        print("IN_BATCH", flush=True)
        await asyncio.sleep(0.2)
        await super().apply(conn, events[half:])


class Reporting(ProjectionRunner):
    async def _apply(self, *args: object, **kwargs: object) -> None:
        await super()._apply(*args, **kwargs)  # type: ignore[arg-type]
        print("BATCH_DONE", flush=True)


async def main(dsn: str, role: str, category: str) -> None:
    options = ConnectionOptions(dsn=dsn, role=role, min_pool_size=1, max_pool_size=2)
    pool = await create_pool(options)
    store = EventStore(pool, poll_interval=0.05)
    runner = Reporting(store, Announcing(category), lambda: connect(options), batch_size=10)
    await runner.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
