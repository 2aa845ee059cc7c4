"""The feed's ordering guarantee (see events/store.py): every follower sees every committed
event exactly once, in one shared order, never a rolled-back one, even when transactions commit
in another order than the one in which they took their positions."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import TYPE_CHECKING, cast
from uuid import UUID, uuid4

import pytest

from events import (
    START,
    Cursor,
    EventStore,
    FeedFilter,
    NewEvent,
    RecordedEvent,
    TransactionOrderError,
    category_of,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator

    import asyncpg


def new_category() -> str:
    """A category no other test uses."""
    return f"t{uuid4().hex[:10]}"


def new_event(label: str = "") -> NewEvent:
    return NewEvent(type="Order.Probe", data={"label": label, "marker": uuid4().hex})


class Rollback(Exception):
    """Raised inside a transaction to roll it back."""


async def read_to_end(
    store: EventStore, after: Cursor, flt: FeedFilter, *, limit: int = 1_000
) -> tuple[list[RecordedEvent], Cursor]:
    """Everything visible after ``after`` now, and the cursor to continue from."""
    seen: list[RecordedEvent] = []
    cursor = after
    while True:
        page = await store.read_all(cursor, limit=limit, filter=flt)
        seen.extend(page.events)
        cursor = page.next_cursor
        if not page.full:
            return seen, cursor


async def read_until(
    store: EventStore, after: Cursor, flt: FeedFilter, count: int
) -> tuple[list[RecordedEvent], Cursor]:
    """Follow by cursor until at least ``count`` events arrived (bounded by the caller)."""
    seen: list[RecordedEvent] = []
    cursor = after
    while len(seen) < count:
        more, cursor = await read_to_end(store, cursor, flt, limit=3)
        seen.extend(more)
        if len(seen) < count:
            await asyncio.sleep(0.01)
    return seen, cursor


async def follow_until(
    store: EventStore, flt: FeedFilter, sentinel: UUID, out: list[RecordedEvent]
) -> None:
    """Collect what ``store.follow`` yields into ``out`` until the sentinel event."""
    feed = cast("AsyncGenerator[RecordedEvent, None]", store.follow(filter=flt, batch_size=4))
    async with contextlib.aclosing(feed):
        async for event in feed:
            if event.event_id == sentinel:
                return
            out.append(event)


async def poll_until(
    store: EventStore, after: Cursor, category: str, sentinel: UUID, out: list[RecordedEvent]
) -> None:
    """Page the unfiltered feed with small pages, keeping ``category``, until the sentinel."""
    cursor = after
    while True:
        page = await store.read_all(cursor, limit=7)
        for event in page.events:
            if event.event_id == sentinel:
                return
            if category_of(event.stream_id) == category:
                out.append(event)
        cursor = page.next_cursor
        if not page.full:
            await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def background(task: asyncio.Task[None]) -> AsyncIterator[asyncio.Task[None]]:
    """Cancel ``task`` when the block fails before it finished."""
    try:
        yield task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def ids(events: list[RecordedEvent]) -> list[UUID]:
    return [e.event_id for e in events]


def assert_feed_order(events: list[RecordedEvent]) -> None:
    cursors = [e.cursor for e in events]
    assert cursors == sorted(cursors)
    assert len(set(cursors)) == len(cursors)


async def test_later_position_committing_first_is_held_behind_the_horizon(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    category = new_category()
    flt = FeedFilter(category=category)
    start = (await store.read_all(filter=flt)).next_cursor
    early, late, sentinel = new_event("early"), new_event("late"), new_event("sentinel")
    live: list[RecordedEvent] = []
    live_task = asyncio.create_task(follow_until(store, flt, sentinel.event_id, live))

    async with (
        background(live_task),
        asyncio.timeout(20),
        pool.acquire() as first,
        pool.acquire() as second,
    ):
        tx1 = first.transaction()
        tx2 = second.transaction()
        await tx1.start()
        await tx2.start()
        try:
            r_early = await store.append(f"{category}-a", [early], connection=first)
            r_late = await store.append(f"{category}-b", [late], connection=second)
            assert r_early.positions[0] < r_late.positions[0]

            await tx2.commit()  # the later position commits first
            store.notify_committed()

            # A follower reading now must see neither: the later event sits above the
            # horizon the still-open earlier transaction holds.
            between = await store.read_all(start, filter=flt)
            assert between.events == []
            unfiltered = await store.read_all(start, limit=10_000)
            assert late.event_id not in ids(unfiltered.events)
            assert early.event_id not in ids(unfiltered.events)
            # Directly visible to SQL, so the feed really is holding it back.
            assert (
                await pool.fetchval(
                    "SELECT count(*) FROM events WHERE event_id = $1", late.event_id
                )
                == 1
            )

            await tx1.commit()
            store.notify_committed()
        finally:
            for conn, tx in ((first, tx1), (second, tx2)):
                if conn.is_in_transaction():
                    await tx.rollback()

        # The follower that read in between continues from its cursor and gets both.
        continued, _ = await read_until(store, between.next_cursor, flt, 2)
        fresh, _ = await read_until(store, start, flt, 2)
        await store.append(f"{category}-z", [sentinel])
        await live_task

    assert sorted(ids(continued)) == sorted([early.event_id, late.event_id])
    assert ids(continued) == ids(fresh) == ids(live)
    assert_feed_order(continued)
    # Nothing more arrives.
    rest, _ = await read_to_end(store, continued[-1].cursor, flt)
    assert ids(rest) == [sentinel.event_id]


async def test_cursor_does_not_skip_a_lower_position_committing_later(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    """The case that loses events with position cursors: a follower moves past a later
    position while an earlier one is still uncommitted."""
    category = new_category()
    flt = FeedFilter(category=category)
    start = (await store.read_all(filter=flt)).next_cursor
    early, late = new_event("early-position"), new_event("late-position")

    async with asyncio.timeout(20), pool.acquire() as first, pool.acquire() as second:
        tx1 = first.transaction()
        tx2 = second.transaction()
        await tx1.start()
        await tx2.start()
        try:
            # The second transaction takes its id first, so it sorts first in the feed...
            xid_second = await second.fetchval("SELECT pg_current_xact_id()::text::bigint")
            # ...but takes the later position.
            r_early = await store.append(f"{category}-a", [early], connection=first)
            r_late = await store.append(f"{category}-b", [late], connection=second)
            assert r_early.positions[0] < r_late.positions[0]
            assert r_late.cursor.transaction_id == xid_second
            assert r_early.cursor.transaction_id > xid_second

            await tx2.commit()
            # The follower sees the later position first (its transaction is below the
            # horizon the first transaction holds) and moves its cursor past it.
            seen, cursor = await read_until(store, start, flt, 1)
            assert ids(seen) == [late.event_id]
            assert cursor >= seen[0].cursor

            await tx1.commit()
        finally:
            for conn, tx in ((first, tx1), (second, tx2)):
                if conn.is_in_transaction():
                    await tx.rollback()

        # The lower position committed after the cursor passed its position: still delivered.
        more, _ = await read_until(store, cursor, flt, 1)
        assert ids(more) == [early.event_id]
        everything, _ = await read_to_end(store, start, flt)
    assert ids(everything) == [late.event_id, early.event_id]
    assert_feed_order(everything)


async def test_rolled_back_events_are_never_seen(store: EventStore, pool: asyncpg.Pool) -> None:
    category = new_category()
    flt = FeedFilter(category=category)
    start = (await store.read_all(filter=flt)).next_cursor
    doomed = [new_event("doomed"), new_event("doomed")]
    kept, sentinel = new_event("kept"), new_event("sentinel")
    live: list[RecordedEvent] = []
    live_task = asyncio.create_task(follow_until(store, flt, sentinel.event_id, live))

    async with background(live_task), asyncio.timeout(20):
        async with pool.acquire() as first, pool.acquire() as second:
            tx1 = first.transaction()
            await tx1.start()
            try:
                await store.append(f"{category}-a", doomed, connection=first)
                async with second.transaction():
                    await store.append(f"{category}-b", [kept], connection=second)
                store.notify_committed()
                between = await store.read_all(start, filter=flt)
                assert between.events == []
            finally:
                await tx1.rollback()
        seen, cursor = await read_until(store, start, flt, 1)
        # The stream's version 1 is free again after the rollback.
        assert (await store.append(f"{category}-a", [sentinel])).first_version == 1
        tail, _ = await read_until(store, cursor, flt, 1)
        await live_task

    assert ids(seen) == [kept.event_id]
    assert ids(tail) == [sentinel.event_id]
    assert ids(live) == [kept.event_id]
    everything, _ = await read_to_end(store, START, flt)
    assert ids(everything) == [kept.event_id, sentinel.event_id]


@pytest.mark.slow
async def test_concurrent_writers_and_followers_agree(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    writers, transactions = 8, 25
    category = new_category()
    flt = FeedFilter(category=category)
    start = (await store.read_all(filter=flt)).next_cursor
    shared = f"{category}-shared"
    sentinel = new_event("sentinel")
    seed = random.randrange(2**32)

    committed: list[UUID] = []
    rolled_back: list[UUID] = []
    by_stream: dict[str, list[UUID]] = {}

    async def writer(w: int) -> None:
        rng = random.Random(seed + w)
        async with pool.acquire() as conn:
            for t in range(transactions):
                written: list[tuple[str, UUID]] = []
                try:
                    async with conn.transaction():
                        count = rng.randint(1, 3)
                        batches: list[list[NewEvent]]
                        if rng.random() < 0.3:
                            batches = [[new_event(f"{w}/{t}") for _ in range(count)]]
                        else:
                            batches = [[new_event(f"{w}/{t}")] for _ in range(count)]
                        to_shared = rng.random() < 0.3
                        for k, batch in enumerate(batches):
                            await asyncio.sleep(rng.uniform(0, 0.02))
                            # Only a transaction's last append may touch the shared stream, and
                            # it commits right after: writers wait on each other there, briefly,
                            # but never deadlock (ANY retries are bounded, so a stream held
                            # across long sleeps by 8 writers could starve one of them).
                            if to_shared and k == len(batches) - 1:
                                stream_id = shared
                            else:
                                stream_id = f"{category}-w{w}-{rng.randint(0, 2)}"
                            await store.append(stream_id, batch, connection=conn)
                            written.extend((stream_id, e.event_id) for e in batch)
                        if (t + w) % 10 == 3:
                            raise Rollback
                except (Rollback, TransactionOrderError):
                    # A TransactionOrderError means another writer, younger than this
                    # transaction, wrote the shared stream first: the store refused, and the
                    # transaction rolled back like any other.
                    rolled_back.extend(event_id for _, event_id in written)
                    continue
                committed.extend(event_id for _, event_id in written)
                for stream_id, event_id in written:
                    by_stream.setdefault(stream_id, []).append(event_id)
                store.notify_committed()

    followed: list[list[RecordedEvent]] = [[], []]
    polled: list[list[RecordedEvent]] = [[], []]
    async with asyncio.timeout(60):
        followers = [
            asyncio.create_task(follow_until(store, flt, sentinel.event_id, out))
            for out in followed
        ] + [
            asyncio.create_task(poll_until(store, start, category, sentinel.event_id, out))
            for out in polled
        ]
        try:
            await asyncio.gather(*(writer(w) for w in range(writers)))
            await store.append(f"{category}-end", [sentinel])
            await asyncio.gather(*followers)
        finally:
            for task in followers:
                task.cancel()
            await asyncio.gather(*followers, return_exceptions=True)

    final, _ = await read_to_end(store, start, flt, limit=50)
    assert ids(final)[-1] == sentinel.event_id
    final = final[:-1]
    assert_feed_order(final)
    # Within each stream, the feed order is the version order.
    seen_versions: dict[str, int] = {}
    for event in final:
        assert event.stream_version == seen_versions.get(event.stream_id, 0) + 1, f"seed {seed}"
        seen_versions[event.stream_id] = event.stream_version

    assert rolled_back, f"seed {seed}"
    assert len(committed) == len(set(committed))
    assert sorted(ids(final)) == sorted(committed), f"seed {seed}"
    assert not set(rolled_back) & set(ids(final))
    for out in (*followed, *polled):
        assert ids(out) == ids(final), f"seed {seed}"

    # Every stream holds exactly its committed events, versions 1..N without gaps.
    assert by_stream.get(shared), f"seed {seed}"
    for stream_id, expected in by_stream.items():
        stored = (await store.read_stream(stream_id, limit=10_000)).events
        assert [e.stream_version for e in stored] == list(range(1, len(expected) + 1))
        if stream_id == shared:
            assert sorted(ids(stored)) == sorted(expected)
        else:  # one writer's own stream: in the order that writer committed
            assert ids(stored) == expected


async def test_older_transaction_cannot_append_after_a_younger_one(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    """A transaction that took its id before a stream's last writer must not append to it:
    its events would reach the feed before that writer's, out of version order."""
    category = new_category()
    stream_id = f"{category}-s"
    other = f"{category}-other"
    async with pool.acquire() as old, pool.acquire() as young:
        old_tx = old.transaction()
        await old_tx.start()
        try:
            # The old transaction takes its transaction id first, by writing elsewhere.
            await store.append(other, [new_event("old")], connection=old)
            async with young.transaction():
                await store.append(stream_id, [new_event("young")], connection=young)
            with pytest.raises(TransactionOrderError) as caught:
                await store.append(stream_id, [new_event("late")], connection=old)
            assert caught.value.stream_id == stream_id
            assert caught.value.version == 1
            # The refusal left the caller's transaction usable.
            assert await old.fetchval("SELECT 1") == 1
        finally:
            await old_tx.rollback()
    stored = (await store.read_stream(stream_id)).events
    assert [e.stream_version for e in stored] == [1]
    # A new transaction appends fine, and the feed keeps the stream in version order.
    async with pool.acquire() as conn, conn.transaction():
        await store.append(stream_id, [new_event("retry")], connection=conn)
    page = await store.read_all(filter=FeedFilter(category=category))
    assert [e.stream_version for e in page.events if e.stream_id == stream_id] == [1, 2]
