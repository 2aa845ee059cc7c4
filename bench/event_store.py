"""Event store benchmark: appends and feed reads against a raw-asyncpg floor, same run, same DB.

    python -m bench.event_store            # full run: 10k and 1M events already stored
    python -m bench.event_store --quick    # smaller, for a smoke check

The floor is a plain INSERT of the same rows (same unnest statement shape, same payloads, same
uniqueness constraints: position, (stream, version), event id) into a bare table, with no
ordering guarantee, no hash chain, no expected-version check. Each workload alternates floor and
store rounds after an unmeasured warm-up round of each, and keeps each side's best round, so a
noisy neighbour hurts both alike.
Set BENCH_DATABASE_URL to a server where a scratch database may be created (default: local).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec

from events import NO_STREAM, ConnectionOptions, EventStore, NewEvent, Notifier, migrate
from events.connect import create_pool
from events.records import START, Metadata

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

WRITERS = 8
STREAMS_PER_WRITER = 50

FLOOR_TABLE_SQL = """
CREATE TABLE floor_events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id       text NOT NULL,
    stream_version  bigint NOT NULL,
    event_id        uuid NOT NULL UNIQUE,
    type            text NOT NULL,
    schema_version  integer NOT NULL,
    data            jsonb NOT NULL,
    metadata        jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, stream_version)
)
"""
FLOOR_INSERT_SQL = """
INSERT INTO floor_events (stream_id, stream_version, event_id, type, schema_version, data,
                          metadata)
SELECT $1, v, e, t, s, d::jsonb, m::jsonb
FROM unnest($2::bigint[], $3::uuid[], $4::text[], $5::integer[], $6::text[], $7::text[])
    AS u(v, e, t, s, d, m)
"""
FLOOR_READ_SQL = """
SELECT position, stream_id, stream_version, event_id, type, schema_version, data::text,
       metadata::text, recorded_at
FROM floor_events WHERE position > $1 ORDER BY position LIMIT $2
"""
# Backfill used to grow both logs to the "already stored" size quickly; the rows need not
# chain correctly, only weigh like real ones in the indexes.
BULK_EVENTS_SQL = """
INSERT INTO events (stream_id, stream_version, event_id, type, schema_version, data, metadata,
                    recorded_at, hash)
SELECT 'bulk-' || (g / 10), g % 10 + 1, gen_random_uuid(), 'meeting.held', 1, $2::jsonb,
       '{}'::jsonb, now(), sha256(int8send(g))
FROM generate_series($1::bigint * 10, $1::bigint * 10 + $3 - 1) AS g
"""
BULK_FLOOR_SQL = """
INSERT INTO floor_events (stream_id, stream_version, event_id, type, schema_version, data,
                          metadata)
SELECT 'bulk-' || (g / 10), g % 10 + 1, gen_random_uuid(), 'meeting.held', 1, $2::jsonb,
       '{}'::jsonb
FROM generate_series($1::bigint * 10, $1::bigint * 10 + $3 - 1) AS g
"""
COUNT_SQL = "SELECT count(*) FROM {table}"

PAYLOAD: dict[str, Any] = {
    "meeting_id": "moscow-2024",
    "participants": [
        {"actor_id": "hamas", "role": "invitee", "name_as_reported": "Hamas"},
        {
            "actor_id": "ios-ras",
            "role": "host",
            "name_as_reported": "Institute of Oriental Studies",
        },
    ],
    "valid_time": {
        "edtf": "2024-02-28/2024-02-29",
        "lower": "2024-02-28",
        "upper": "2024-02-29",
        "raw": "February 28-29",
    },
    "place": "Moscow",
    "modality": "reported",
    "coding": {"cameo": "036", "goldstein": 4.0, "quad": 1, "plover": "AGREE"},
    "sources": [{"url": "https://example.org/article", "quote": "Moscow will host..."}],
}
META = Metadata(recorded_by="bench", correlation_id="bench-run")


@dataclass
class Writer:
    """One writer's streams and the versions it has written to them."""

    index: int
    run: str
    versions: dict[str, int]

    def next_stream(self, n: int) -> str:
        return f"w{self.index}{self.run}-{n % STREAMS_PER_WRITER}"


async def _timed(workers: list[Callable[[], Awaitable[int]]]) -> float:
    start = time.perf_counter()
    counts = await asyncio.gather(*(w() for w in workers))
    return sum(counts) / (time.perf_counter() - start)


async def append_round(store: EventStore, per_tx: int, transactions: int) -> float:
    run = uuid.uuid4().hex[:8]

    def worker(index: int) -> Callable[[], Awaitable[int]]:
        writer = Writer(index, run, {})

        async def go() -> int:
            for n in range(transactions):
                stream = writer.next_stream(n)
                version = writer.versions.get(stream, NO_STREAM)
                batch = [
                    NewEvent(type="meeting.held", data=PAYLOAD, metadata=META)
                    for _ in range(per_tx)
                ]
                result = await store.append(stream, batch, version)
                writer.versions[stream] = result.last_version
            return transactions * per_tx

        return go

    return await _timed([worker(i) for i in range(WRITERS)])


async def floor_round(pool: asyncpg.Pool, per_tx: int, transactions: int) -> float:
    run = uuid.uuid4().hex[:8]

    def worker(index: int) -> Callable[[], Awaitable[int]]:
        writer = Writer(index, run, {})

        async def go() -> int:
            for n in range(transactions):
                stream = writer.next_stream(n)
                version = writer.versions.get(stream, 0)
                # Any writer encodes each event's JSON; the floor pays that much too.
                await pool.execute(
                    FLOOR_INSERT_SQL,
                    stream,
                    list(range(version + 1, version + per_tx + 1)),
                    [uuid.uuid4() for _ in range(per_tx)],
                    ["meeting.held"] * per_tx,
                    [1] * per_tx,
                    [asyncpg_json(PAYLOAD) for _ in range(per_tx)],
                    [asyncpg_json(META) for _ in range(per_tx)],
                )
                writer.versions[stream] = version + per_tx
            return transactions * per_tx

        return go

    return await _timed([worker(i) for i in range(WRITERS)])


def asyncpg_json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


async def read_store(store: EventStore) -> float:
    start = time.perf_counter()
    cursor, total = START, 0
    while True:
        page = await store.read_all(cursor, limit=1_000)
        total += len(page.events)
        cursor = page.next_cursor
        if not page.full:
            break
    return total / (time.perf_counter() - start)


async def read_floor(pool: asyncpg.Pool) -> float:
    start = time.perf_counter()
    position, total = 0, 0
    while True:
        rows = await pool.fetch(FLOOR_READ_SQL, position, 1_000)
        total += len(rows)
        if len(rows) < 1_000:
            break
        position = rows[-1]["position"]
    return total / (time.perf_counter() - start)


async def best_of(
    rounds: int, floor: Callable[[], Awaitable[float]], ours: Callable[[], Awaitable[float]]
) -> tuple[float, float]:
    # One unmeasured round each first: the first rounds after a change of workload paid for
    # the server's plan and buffer warm-up and the pools' statement preparation, and decided
    # more than the code did (the same build measured 0.83x at 10k stored and 1.11x at 1M).
    await floor()
    await ours()
    best_floor = best_ours = 0.0
    for _ in range(rounds):
        best_floor = max(best_floor, await floor())
        best_ours = max(best_ours, await ours())
    return best_floor, best_ours


def report(name: str, floor: float, ours: float, goal: float) -> None:
    ratio = ours / floor
    verdict = "meets" if ratio >= goal else "BELOW"
    print(
        f"{name:<44} floor {floor:>10,.0f} ev/s   store {ours:>10,.0f} ev/s   "
        f"ratio {ratio:4.2f}x  (goal >= {goal}x: {verdict})"
    )


async def grow(owner: asyncpg.Connection, target: int) -> None:
    payload = asyncpg_json(PAYLOAD)
    for table, sql in (("events", BULK_EVENTS_SQL), ("floor_events", BULK_FLOOR_SQL)):
        have = int(await owner.fetchval(COUNT_SQL.format(table=table)))
        chunk = 100_000
        batch = 1_000_000  # offsets the generated stream ids away from earlier backfills
        while have < target:
            n = min(chunk, target - have)
            await owner.execute(sql, batch + have, payload, n)
            have += n
        await owner.execute(f"VACUUM ANALYZE {table}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller volumes")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"diplofeed_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = server.rsplit("/", 1)[0] + "/" + name
    owner = await asyncpg.connect(dsn)
    try:
        await migrate(owner)
        await owner.execute(FLOOR_TABLE_SQL)
        options = ConnectionOptions(dsn=dsn, role="diplofeed_app", max_pool_size=WRITERS + 2)
        pool = await create_pool(options)
        # The floor borrows from a pool configured exactly like the store's, one connection
        # per INSERT, as a service would.
        floor_pool = await create_pool(msgspec.structs.replace(options, role=None))
        notifier = Notifier(pool)
        store = EventStore(pool, notifier=notifier if not os.environ.get("NO_NOTIFY") else None)
        tx1, tx10 = (400, 100) if args.quick else (1_000, 400)
        sizes = [10_000] if args.quick else [10_000, 1_000_000]
        print(
            f"PostgreSQL {await owner.fetchval('SHOW server_version')}, {WRITERS} writers, "
            f"best of {args.rounds} alternating rounds"
        )
        for size in sizes:
            await grow(owner, size)
            print(f"-- {size:,} events already stored")
            f, o = await best_of(
                args.rounds,
                lambda: floor_round(floor_pool, 1, tx1),
                lambda: append_round(store, 1, tx1),
            )
            report(f"append, {WRITERS} writers x 1 event/tx", f, o, 0.9)
            f, o = await best_of(
                args.rounds,
                lambda: floor_round(floor_pool, 10, tx10),
                lambda: append_round(store, 10, tx10),
            )
            report(f"append, {WRITERS} writers x 10 events/tx", f, o, 0.9)
        total = int(await owner.fetchval(COUNT_SQL.format(table="events")))
        f, o = await best_of(args.rounds, lambda: read_floor(floor_pool), lambda: read_store(store))
        report(f"feed read, pages of 1,000 ({total:,} events)", f, o, 0.5)
        await notifier.close()
        await pool.close()
        await floor_pool.close()
    finally:
        await owner.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
