"""Rebuilds of the roster and contacts projections in a process of their own, for the drill
that kills it with SIGKILL (tests/test_drill_rebuild_killed.py).

    python -m tests.rebuild_child DSN ROLE BATCH_SIZE

Both rebuilds run at once, through ``projections.rebuild.rebuild`` exactly as an operator's
would; each prints its report as one JSON line when it has switched, then ``DONE``.
"""

from __future__ import annotations

import asyncio
import sys

import msgspec

from events import ConnectionOptions, EventStore
from events.connect import connect, create_pool
from projections.rebuild import rebuild
from service.projectors import PROJECTIONS


async def main(dsn: str, role: str, batch_size: int) -> None:
    options = ConnectionOptions(dsn=dsn, role=role or None, min_pool_size=1, max_pool_size=4)
    pool = await create_pool(options)
    store = EventStore(pool, poll_interval=0.05)

    async def one(name: str) -> None:
        report = await rebuild(
            store, PROJECTIONS[name], lambda: connect(options), name, batch_size=batch_size,
            poll=0.05, retire_after=0,
        )  # fmt: skip
        print(msgspec.json.encode(report).decode(), flush=True)

    try:
        await asyncio.gather(one("roster"), one("contacts"))
    finally:
        await pool.close()
    print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
