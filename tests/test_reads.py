"""Reads: one stream forward and backward, the global feed in pages, filters and cursors."""

from __future__ import annotations

import asyncio
import json
from uuid import uuid4

import asyncpg
import pytest

from events import (
    START,
    Cursor,
    EventStore,
    FeedFilter,
    InvalidCursorError,
    InvalidReadError,
    NewEvent,
    RecordedEvent,
    category_of,
)
from events.store import MAX_PAGE, READ_FEED_NARROW_SQL, READ_FEED_SQL


def new_category() -> str:
    """A category no other test uses."""
    return f"t{uuid4().hex[:10]}"


def events(n: int, type: str = "Thing.Happened") -> list[NewEvent]:
    return [NewEvent(type=type, data={"i": i}) for i in range(n)]


def ids(recorded: list[RecordedEvent]) -> list[str]:
    return [str(e.event_id) for e in recorded]


async def settled(store: EventStore, category: str, count: int) -> None:
    """Wait until ``count`` events of ``category`` are visible in the feed.

    The horizon is cluster-wide: a transaction elsewhere on the server (another test run) may
    briefly hold back events that were just committed. Once they are visible, the horizon has
    passed them (and everything committed before them) for good, so the reads that follow are
    deterministic.
    """
    async with asyncio.timeout(20):
        while True:
            page = await store.read_all(limit=MAX_PAGE, filter=FeedFilter(category=category))
            if len(page.events) >= count:
                return
            await asyncio.sleep(0.01)


async def read_whole_feed(
    store: EventStore, after: Cursor, *, limit: int, filter: FeedFilter | None = None
) -> tuple[list[RecordedEvent], int]:
    """Page through the feed to its visible end; returns the events and the page count."""
    seen: list[RecordedEvent] = []
    pages = 0
    cursor = after
    while True:
        page = await store.read_all(cursor, limit=limit, filter=filter)
        pages += 1
        assert len(page.events) <= limit
        assert page.full == (len(page.events) == limit)
        if page.events:
            assert page.next_cursor >= page.events[-1].cursor
        assert page.next_cursor >= cursor
        seen.extend(page.events)
        cursor = page.next_cursor
        if not page.full:
            return seen, pages
        assert pages < 1_000


# -- read_stream --------------------------------------------------------------------------------


async def test_read_stream_forward(store: EventStore, stream: str) -> None:
    batch = events(5)
    await store.append(stream, batch)

    whole = await store.read_stream(stream)
    assert whole.stream_id == stream
    assert [e.stream_version for e in whole.events] == [1, 2, 3, 4, 5]
    assert ids(whole.events) == [str(e.event_id) for e in batch]
    assert whole.current_version == 5
    assert whole.next_version is None

    middle = await store.read_stream(stream, from_version=2, limit=2)
    assert [e.stream_version for e in middle.events] == [2, 3]
    assert middle.next_version == 4
    assert middle.current_version == 5

    rest = await store.read_stream(stream, from_version=middle.next_version, limit=2)
    assert [e.stream_version for e in rest.events] == [4, 5]
    assert rest.next_version is None

    beyond = await store.read_stream(stream, from_version=6)
    assert beyond.events == []
    assert beyond.next_version is None
    assert beyond.current_version == 5


async def test_read_stream_forward_pages_cover_the_stream(store: EventStore, stream: str) -> None:
    await store.append(stream, events(7))
    versions: list[int] = []
    start: int | None = 1
    while start is not None:
        part = await store.read_stream(stream, from_version=start, limit=3)
        versions.extend(e.stream_version for e in part.events)
        start = part.next_version
    assert versions == list(range(1, 8))


async def test_read_stream_backward(store: EventStore, stream: str) -> None:
    await store.append(stream, events(5))

    from_end = await store.read_stream(stream, backward=True)
    assert [e.stream_version for e in from_end.events] == [5, 4, 3, 2, 1]
    assert from_end.current_version == 5
    assert from_end.next_version is None

    last_two = await store.read_stream(stream, backward=True, limit=2)
    assert [e.stream_version for e in last_two.events] == [5, 4]
    assert last_two.next_version == 3

    from_three = await store.read_stream(stream, backward=True, from_version=3, limit=2)
    assert [e.stream_version for e in from_three.events] == [3, 2]
    assert from_three.next_version == 1

    tail = await store.read_stream(stream, backward=True, from_version=1, limit=2)
    assert [e.stream_version for e in tail.events] == [1]
    assert tail.next_version is None


async def test_read_empty_stream(store: EventStore, stream: str) -> None:
    for backward in (False, True):
        empty = await store.read_stream(stream, backward=backward)
        assert empty.events == []
        assert empty.current_version == 0
        assert empty.next_version is None
    assert await store.stream_version(stream) == 0


async def test_read_stream_only_returns_its_own_stream(store: EventStore, stream: str) -> None:
    # A stream whose id extends this one's must not leak into it.
    await store.append(stream, events(2))
    await store.append(f"{stream}-child", events(3))
    assert len((await store.read_stream(stream)).events) == 2
    assert (await store.read_stream(stream)).current_version == 2


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE + 1])
async def test_read_limit_out_of_range(store: EventStore, stream: str, limit: int) -> None:
    with pytest.raises(InvalidReadError):
        await store.read_stream(stream, limit=limit)
    with pytest.raises(InvalidReadError):
        await store.read_all(limit=limit)


async def test_read_limit_bounds_are_inclusive(store: EventStore, stream: str) -> None:
    await store.append(stream, events(1))
    assert len((await store.read_stream(stream, limit=1)).events) == 1
    assert len((await store.read_stream(stream, limit=MAX_PAGE)).events) == 1
    page = await store.read_all(limit=MAX_PAGE, filter=FeedFilter(category=new_category()))
    assert page.events == []


# -- read_all -----------------------------------------------------------------------------------


async def test_read_all_pages_in_order(store: EventStore) -> None:
    category = new_category()
    start = (await store.read_all(limit=1, filter=FeedFilter(category=new_category()))).next_cursor
    appended: list[str] = []
    for n in range(4):
        stream_id = f"{category}-s{n % 2}"
        batch = events(n + 1)
        await store.append(stream_id, batch)
        appended.extend(str(e.event_id) for e in batch)
    await settled(store, category, len(appended))

    flt = FeedFilter(category=category)
    first = await store.read_all(start, limit=4, filter=flt)
    assert first.full
    assert ids(first.events) == appended[:4]
    assert first.next_cursor == first.events[-1].cursor

    seen, pages = await read_whole_feed(store, start, limit=4, filter=flt)
    assert ids(seen) == appended
    assert pages == 3  # 4 + 4 + 2 events
    cursors = [e.cursor for e in seen]
    assert cursors == sorted(cursors)
    assert len(set(cursors)) == len(cursors)

    # The same read, unfiltered from the start cursor, holds these events in the same order.
    everything, _ = await read_whole_feed(store, start, limit=500)
    mine = [e for e in everything if e.stream_id.startswith(category + "-")]
    assert ids(mine) == appended


async def test_read_all_exact_multiple_of_limit(store: EventStore) -> None:
    category = new_category()
    await store.append(f"{category}-a", events(4))
    await settled(store, category, 4)
    flt = FeedFilter(category=category)
    first = await store.read_all(limit=2, filter=flt)
    second = await store.read_all(first.next_cursor, limit=2, filter=flt)
    assert first.full
    assert second.full
    third = await store.read_all(second.next_cursor, limit=2, filter=flt)
    assert third.events == []
    assert not third.full
    assert third.next_cursor >= second.next_cursor


async def test_read_all_end_cursor_resumes_with_new_events_only(store: EventStore) -> None:
    category = new_category()
    flt = FeedFilter(category=category)
    await store.append(f"{category}-a", events(3))
    await settled(store, category, 3)
    seen, _ = await read_whole_feed(store, START, limit=100, filter=flt)
    assert len(seen) == 3
    end = (await store.read_all(seen[-1].cursor, filter=flt)).next_cursor

    later = events(2)
    await store.append(f"{category}-b", later)
    await settled(store, category, 5)
    resumed, _ = await read_whole_feed(store, end, limit=100, filter=flt)
    assert ids(resumed) == [str(e.event_id) for e in later]


async def test_read_all_from_a_cursor_excludes_earlier_events(store: EventStore) -> None:
    category = new_category()
    batch = events(5)
    result = await store.append(f"{category}-a", batch)
    await settled(store, category, 5)
    flt = FeedFilter(category=category)
    page = await store.read_all(filter=flt)
    assert ids(page.events) == [str(e.event_id) for e in batch]
    assert page.events[-1].cursor == result.cursor

    after_second = await store.read_all(page.events[1].cursor, filter=flt)
    assert ids(after_second.events) == [str(e.event_id) for e in batch[2:]]
    after_last = await store.read_all(result.cursor, filter=flt)
    assert after_last.events == []


async def test_filter_by_category(store: EventStore) -> None:
    category = new_category()
    other = new_category()
    mine = events(2)
    await store.append(f"{category}-one", mine[:1])
    await store.append(f"{other}-one", events(2))
    # Only the part before the first '-' is the category.
    await store.append(f"{category}x-one", events(1))
    await store.append(f"{category}-two-parts", mine[1:])
    await settled(store, category, 2)

    page = await store.read_all(filter=FeedFilter(category=category))
    assert ids(page.events) == [str(e.event_id) for e in mine]
    assert {e.stream_id for e in page.events} == {f"{category}-one", f"{category}-two-parts"}


async def test_filter_by_type_prefix(store: EventStore) -> None:
    category = new_category()
    prefix = f"T{uuid4().hex[:8]}"
    wanted = [
        NewEvent(type=f"{prefix}.Scheduled", data={}),
        NewEvent(type=f"{prefix}.Cancelled", data={}),
    ]
    others = [
        NewEvent(type=f"X{prefix}.Scheduled", data={}),
        NewEvent(type="Unrelated", data={}),
    ]
    await store.append(f"{category}-a", [wanted[0], others[0]])
    await store.append(f"{category}-b", [others[1], wanted[1]])
    await settled(store, category, 4)

    page = await store.read_all(filter=FeedFilter(type_prefix=prefix))
    assert ids(page.events) == [str(e.event_id) for e in wanted]

    both = await store.read_all(
        filter=FeedFilter(type_prefix=f"{prefix}.Cancelled", category=category)
    )
    assert ids(both.events) == [str(wanted[1].event_id)]
    none = await store.read_all(filter=FeedFilter(type_prefix=prefix, category=new_category()))
    assert none.events == []


async def test_filtered_page_moves_cursor_past_skipped_events(store: EventStore) -> None:
    category = new_category()
    result = await store.append(f"{category}-a", events(3))
    await settled(store, category, 3)
    unrelated = FeedFilter(category=new_category())
    page = await store.read_all(limit=10, filter=unrelated)
    assert page.events == []
    assert not page.full
    assert page.next_cursor > result.cursor
    # The cursor moved up to the horizon, past the events that were filtered out.
    assert (
        await store.read_all(page.next_cursor, filter=FeedFilter(category=category))
    ).events == []


# -- cursors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cursor", [START, Cursor(1, 1), Cursor(12345, 678), Cursor(2**64 - 1, 2**63 - 1)]
)
def test_cursor_round_trip(cursor: Cursor) -> None:
    text = cursor.encode()
    assert isinstance(text, str)
    assert text.isascii()
    assert "=" not in text
    assert Cursor.decode(text) == cursor


def test_empty_cursor_is_start() -> None:
    assert Cursor.decode(None) == START
    assert Cursor.decode("") == START


@pytest.mark.parametrize(
    "garbage", ["garbage!", "abc", "é", "AAAA", START.encode() + "A", START.encode() + "==", "%%%"]
)
def test_garbage_cursor_is_rejected(garbage: str) -> None:
    with pytest.raises(InvalidCursorError):
        Cursor.decode(garbage)


def test_cursor_orders_by_transaction_then_position() -> None:
    assert Cursor(1, 100) < Cursor(2, 1)
    assert Cursor(2, 1) < Cursor(2, 2)


async def test_read_all_accepts_decoded_cursor(store: EventStore) -> None:
    category = new_category()
    batch = events(3)
    await store.append(f"{category}-a", batch)
    await settled(store, category, 3)
    flt = FeedFilter(category=category)
    first = await store.read_all(limit=1, filter=flt)
    resumed = await store.read_all(Cursor.decode(first.next_cursor.encode()), filter=flt)
    assert ids(first.events + resumed.events) == [str(e.event_id) for e in batch]


async def test_several_categories_at_once(store: EventStore) -> None:
    first, second, other = (f"c{uuid4().hex[:10]}" for _ in range(3))
    for category in (first, second, other):
        await store.append(f"{category}-1", [NewEvent(type="test.multi", data={"c": category})])
    wanted = FeedFilter(categories=(first, second))
    page = await store.read_all(filter=wanted)
    assert sorted(category_of(e.stream_id) for e in page.events) == sorted([first, second])
    both = FeedFilter(category=other, categories=(first,))
    page = await store.read_all(filter=both)
    assert sorted(category_of(e.stream_id) for e in page.events) == sorted([first, other])


async def test_reading_a_malformed_stream_id_is_a_read_error(store: EventStore) -> None:
    with pytest.raises(InvalidReadError, match="stream id"):
        await store.read_stream("bad stream")


async def test_plain_pages_carry_no_stream_or_actor_clause(pool: asyncpg.Pool) -> None:
    # Those clauses made the planner choose parallel scans and JIT for every plain page.
    assert "jsonb_path" not in READ_FEED_SQL and "stream_id = $6" not in READ_FEED_SQL
    assert "stream_id = $6" in READ_FEED_NARROW_SQL
    assert await pool.fetchval("SHOW jit") == "off"


# Two thirds of the rows in the categories asked for, a third elsewhere, like a projection's
# read of the real log.
_FILL_SQL = """
INSERT INTO events (stream_id, stream_version, event_id, type, schema_version, data, metadata,
                    hash)
SELECT (CASE WHEN g % 3 = 0 THEN 'meeting-' WHEN g % 3 = 1 THEN 'interaction-' ELSE 'actor-' END)
       || g, 1, gen_random_uuid(), 'test.fill', 1, '{}', '{}', sha256(int8send(g))
FROM generate_series(1, $1::bigint) AS g
"""


def _nodes(plan: dict[str, object]) -> list[dict[str, object]]:
    found = [plan]
    for child in plan.get("Plans", []):  # type: ignore[attr-defined]
        found.extend(_nodes(child))
    return found


async def test_a_category_page_walks_the_feed_index(own_dsn: str) -> None:
    # Without statistics on the category expression, the planner took the filter to keep half
    # a percent of the rows, and read each page of a two-category projection with a parallel
    # scan and sort of the whole table (seconds a page over a million events).
    conn = await asyncpg.connect(own_dsn)
    try:
        await conn.execute(_FILL_SQL, 200_000)
        await conn.execute("ANALYZE events")
        plan = await conn.fetchval(
            f"EXPLAIN (FORMAT JSON) {READ_FEED_SQL}", 0, 0, 5_000, None, ["interaction", "actor"]
        )
    finally:
        await conn.close()
    nodes = _nodes(json.loads(plan)[0]["Plan"])
    kinds = {str(n["Node Type"]) for n in nodes}
    assert "Seq Scan" not in kinds and "Gather Merge" not in kinds and "Sort" not in kinds, kinds
    scan = next(n for n in nodes if str(n["Node Type"]).startswith("Index"))
    # Two thirds of 200k: the estimate is the categories' real share, not a guess.
    assert 100_000 < float(scan["Plan Rows"]) < 170_000  # type: ignore[arg-type]
