"""The process's one feed follower fanned out to subscribers: a subscriber sees exactly the
feed (with its filter) whether it starts inside the window, before it (catching up from the
database), or falls behind a window that moved on; the in-process filter agrees with SQL."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import asyncpg

from events import START, EventStore, FeedFilter, NewEvent, horizon_lag
from events.store import MAX_PAGE
from service.fanout import FeedHub

if TYPE_CHECKING:
    from events import Cursor, RecordedEvent
    from events.records import FeedPage


def _category() -> str:
    return f"t{uuid4().hex[:10]}"


async def _append(store: EventStore, category: str, n: int, *, about: str = "") -> None:
    for i in range(n):
        await store.append(
            f"{category}-{i % 3}",
            [NewEvent(type="Fanout.Probe", data={"i": i, "about": about, "nested": [{"x": i}]})],
        )


async def _feed(store: EventStore, flt: FeedFilter, after: Cursor = START) -> list[RecordedEvent]:
    """The same feed read straight from the database, to its end once nothing committed is
    held back behind the cluster-wide horizon by another transaction."""
    async with asyncio.timeout(30):
        while (await horizon_lag(store.pool)).events_held_back:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    events: list[RecordedEvent] = []
    while True:
        page = await store.read_all(after, limit=MAX_PAGE, filter=flt)
        events.extend(page.events)
        after = page.next_cursor
        if not page.full:
            return events


async def _take(
    hub: FeedHub, after: Cursor, flt: FeedFilter, n: int, *, chunk: int = 3
) -> list[RecordedEvent]:
    taken: list[RecordedEvent] = []
    async with asyncio.timeout(20):
        async for events in hub.subscribe(after, filter=flt, heartbeat=0.2, chunk=chunk):
            assert len(events) <= chunk
            taken.extend(events)
            if len(taken) >= n:
                assert len(taken) == n
                return taken
    raise AssertionError("unreachable")  # pragma: no cover


async def test_subscribers_before_inside_and_behind_the_window_see_the_same_feed(
    store: EventStore,
) -> None:
    category = _category()
    flt = FeedFilter(category=category)
    await _append(store, category, 5)  # before the hub starts: only in the database
    hub = FeedHub(store, capacity=4)
    await hub.start()
    try:
        await hub.wait_beyond(START, 0.1)  # let it take its starting point
        await _append(store, category, 20)  # more than twice the window: it gets trimmed
        expected = await _feed(store, flt)
        assert len(expected) == 25
        from_start = await _take(hub, START, flt, 25)
        from_middle = await _take(hub, expected[11].cursor, flt, 13)
        from_near_end = await _take(hub, expected[22].cursor, flt, 2)
    finally:
        await hub.close()
    assert [e.event_id for e in from_start] == [e.event_id for e in expected]
    assert [e.event_id for e in from_middle] == [e.event_id for e in expected[12:]]
    assert [e.event_id for e in from_near_end] == [e.event_id for e in expected[23:]]
    assert hub.subscribers == 0


async def test_live_events_reach_every_subscriber_once(store: EventStore) -> None:
    category = _category()
    flt = FeedFilter(category=category)
    hub = FeedHub(store)
    await hub.start()
    try:
        start = await store.horizon()
        readers = [asyncio.create_task(_take(hub, start, flt, 12)) for _ in range(20)]
        await asyncio.sleep(0.1)
        assert hub.subscribers == 20
        await _append(store, category, 12)
        results = await asyncio.gather(*readers)
    finally:
        await hub.close()
    expected = [e.event_id for e in await _feed(store, flt, start)]
    assert all([e.event_id for e in got] == expected for got in results)


async def test_the_in_process_filter_agrees_with_the_database(own_dsn: str) -> None:
    # A database of its own: an actor stream of probe events would trouble the domain's tests.
    pool = await asyncpg.create_pool(own_dsn, min_size=1, max_size=2)
    assert pool is not None
    try:
        await _filters_agree(EventStore(pool))
    finally:
        await pool.close()


async def _filters_agree(store: EventStore) -> None:
    category = _category()
    actor = f"a{uuid4().hex[:8]}"
    await _append(store, category, 6, about=actor)
    await _append(store, category, 3, about="someone_else")
    await store.append(f"actor-{actor}", [NewEvent(type="Fanout.Actor", data={"n": 1})])
    everything = await _feed(store, FeedFilter(categories=(category, "actor")))
    filters = [
        FeedFilter(category=category),
        FeedFilter(category=category, actor=actor),
        FeedFilter(actor=actor),
        FeedFilter(stream_id=f"{category}-1"),
        FeedFilter(type_prefix="Fanout.A"),
        FeedFilter(categories=(category,), type_prefix="Fanout.P", actor="someone_else"),
    ]
    for flt in filters:
        in_sql = {e.event_id for e in await _feed(store, flt)}
        in_process = {e.event_id for e in everything if flt.matches(e)}
        assert in_process == in_sql & {e.event_id for e in everything}, flt
    assert len({e.event_id for e in everything if FeedFilter(actor=actor).matches(e)}) == 7


class _FailsOnce(EventStore):
    """A store whose reads fail once, with an error no follower expects, when told to."""

    fail = False

    async def read_all(self, *args: Any, **kwargs: Any) -> FeedPage:
        if self.fail:
            self.fail = False
            raise RuntimeError("an unexpected failure while reading the feed")
        return await super().read_all(*args, **kwargs)


async def test_the_hub_outlives_an_unexpected_error_of_its_follower(pool: asyncpg.Pool) -> None:
    store = _FailsOnce(pool, poll_interval=0.05)
    category = _category()
    flt = FeedFilter(category=category)
    hub = FeedHub(store)
    await hub.start()
    try:
        await hub.wait_beyond(START, 0.1)  # let it take its starting point
        start = await store.horizon()
        await _append(store, category, 2)
        first = await _take(hub, start, flt, 2)
        store.fail = True
        await _append(store, category, 3)
        rest = await _take(hub, first[-1].cursor, flt, 3)
    finally:
        await hub.close()
    assert not store.fail
    assert [e.event_id for e in first + rest] == [
        e.event_id for e in await _feed(store, flt, start)
    ]
