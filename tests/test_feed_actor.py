"""The feed's actor filter: an index lookup with exactly the old meaning (the actor's own stream,
or any string value anywhere in the data equal to the id), the same whether the events were
indexed yet or not, the in-memory filter agreeing with it, values that cannot be an actor id
refused, and a rare or unknown actor's page planned as a lookup, never a walk of the log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import (
    APP_ROLE,
    START,
    ConnectionOptions,
    Cursor,
    EventStore,
    FeedFilter,
    InvalidReadError,
    NewEvent,
    create_pool,
    horizon_lag,
)
from events.actor_refs import keep_actor_refs_indexed
from events.domain.commands import Id
from events.records import ACTOR_ID_PATTERN
from events.store import READ_FEED_ACTOR_SQL, READ_FEED_NARROW_SQL, READ_FEED_SQL
from tests.database import scratch_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from events import RecordedEvent

# The filter as it was before the index (a walk of the log): the reference semantics.
_OLD_ACTOR_SQL = """
SELECT event_id FROM events
WHERE event_id = any($1::uuid[])
  AND (stream_id = 'actor-' || $2
       OR jsonb_path_exists(data, '$.** ? (@ == $actor)', jsonb_build_object('actor', $2)))
ORDER BY transaction_id, position
"""


@pytest.fixture(scope="module")
async def own_store(server_url: str) -> AsyncIterator[EventStore]:
    """A store over a database of the module's own: the tests write events of a test type into
    actor streams, which the shared database's domain tests would try to decode."""
    async with scratch_database(server_url, migrated=True) as dsn:
        pool = await create_pool(ConnectionOptions(dsn=dsn, role=APP_ROLE, max_pool_size=4))
        try:
            yield EventStore(pool)
        finally:
            await pool.close()


async def _visible(store: EventStore) -> None:
    """Wait until nothing committed is held back behind the cluster-wide horizon."""
    async with asyncio.timeout(30):
        while (await horizon_lag(store.pool)).events_held_back:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def _walk(store: EventStore, flt: FeedFilter, *, limit: int) -> list[str]:
    """Every event the filtered feed returns, page by page, as event ids in feed order."""
    found: list[str] = []
    cursor = START
    while True:
        page = await store.read_all(cursor, limit=limit, filter=flt)
        found += [str(e.event_id) for e in page.events]
        cursor = page.next_cursor
        if not page.full:
            return found


async def _old_semantics(store: EventStore, ours: list[RecordedEvent], actor: str) -> list[str]:
    rows = await store.pool.fetch(_OLD_ACTOR_SQL, [e.event_id for e in ours], actor)
    return [str(r["event_id"]) for r in rows]


def _in_memory(ours: list[RecordedEvent], actor: str) -> list[str]:
    flt = FeedFilter(actor=actor)
    return [str(e.event_id) for e in sorted(ours, key=lambda e: e.cursor) if flt.matches(e)]


async def _append_all(store: EventStore, appends: list[tuple[str, Any]]) -> list[RecordedEvent]:
    event_ids = []
    for stream_id, data in appends:
        event = NewEvent(type="test.about", data=data)
        await store.append(stream_id, [event])
        event_ids.append(event.event_id)
    await _visible(store)
    return await store.read_events(event_ids)


async def test_the_actor_filter_keeps_its_meaning(own_store: EventStore) -> None:
    store = own_store
    run = uuid4().hex[:8]
    actor = f"putin{run}"
    category = f"t{run}"
    appends: list[tuple[str, Any]] = [
        (f"actor-{actor}", {"name": "Vladimir Putin"}),  # its own stream, id nowhere in data
        (f"{category}-1", {"participants": [{"actor_id": actor, "role": "host"}]}),
        (f"{category}-2", {"a": {"b": [[{"c": actor}]], "d": 1}}),  # nested deep
        (f"{category}-3", {"place": actor}),  # equal to the id in a field about no actor
        (f"{category}-4", {"participants": [{"actor_id": f"{actor}_jr"}]}),  # longer id
        (f"{category}-5", {"participants": [{"actor_id": actor[:-1]}]}),  # shorter id
        (f"{category}-6", {"quote": f"{actor} said so"}),  # inside a longer string
        (f"{category}-7", {actor: "a key, not a value"}),
        (f"{category}-8", {"x": actor.upper()}),
        (f"actor-{actor}x", {"other": "stream"}),  # another actor's stream
        (f"{category}-9", {"number": 7, "flag": True, "none": None}),
    ]
    ours = await _append_all(store, appends)
    by_stream = {e.stream_id: str(e.event_id) for e in ours}
    expected = [by_stream[s] for s in (f"actor-{actor}", *(f"{category}-{i}" for i in (1, 2, 3)))]

    assert await _old_semantics(store, ours, actor) == expected
    assert _in_memory(ours, actor) == expected
    for limit in (1, 2, 100):
        assert await _walk(store, FeedFilter(actor=actor), limit=limit) == expected
    # Combined with the other filters, and with a stream (its own statement).
    in_category = FeedFilter(categories=(category,), actor=actor)
    assert await _walk(store, in_category, limit=2) == expected[1:]
    one_stream = FeedFilter(stream_id=f"{category}-2", actor=actor)
    assert await _walk(store, one_stream, limit=10) == [by_stream[f"{category}-2"]]
    other_stream = FeedFilter(stream_id=f"{category}-4", actor=actor)
    assert await _walk(store, other_stream, limit=10) == []
    # Numbers are not strings: an id that reads like one finds only string values.
    number = f"7{run}"
    assert await _walk(store, FeedFilter(actor=number), limit=10) == []


# Few, short strings over an alphabet with the characters JSON escapes, so that values collide,
# contain one another and need escaping.
_fragments = st.text(alphabet='ab."\\\n\u00e9', min_size=1, max_size=3)


def _json(strings: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), strings)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(strings, inner, max_size=3),
        max_leaves=8,
    )


_scenario = st.tuples(
    st.lists(
        st.tuples(
            st.one_of(st.none(), _fragments),  # None: a stream of the test's category
            st.dictionaries(_fragments, _json(_fragments), max_size=4),
        ),
        min_size=1,
        max_size=6,
    ),
    st.lists(_fragments, min_size=1, max_size=4),
)


def _prefixed(value: Any, run: str) -> Any:
    """``value`` with every string (keys too) given the example's own prefix, so that no other
    test's events can match the example's actors."""
    if isinstance(value, str):
        return run + value
    if isinstance(value, dict):
        return {run + k: _prefixed(v, run) for k, v in value.items()}
    if isinstance(value, list):
        return [_prefixed(v, run) for v in value]
    return value


@settings(max_examples=40, deadline=None)
@given(scenario=_scenario)
async def test_the_indexed_filter_selects_what_the_in_memory_one_does(
    own_store: EventStore, scenario: tuple[list[tuple[str | None, dict[str, Any]]], list[str]]
) -> None:
    store = own_store
    events, extra_actors = scenario
    run = f"r{uuid4().hex[:8]}"
    appends: list[tuple[str, Any]] = []
    for i, (owner, data) in enumerate(events):
        # A stream id has no control characters or spaces: such an owner gets a plain stream.
        own = owner is not None and owner.isprintable() and " " not in owner
        stream_id = f"actor-{run}{owner}" if own else f"t{run}-{i}"
        appends.append((stream_id, _prefixed(data, run)))
    ours = await _append_all(store, appends)
    # Every string the events hold, every owner, and more: ids that are parts of other ones.
    candidates = {run + f for f in extra_actors} | {run}
    candidates |= {run + owner for owner, _ in events if owner is not None}
    for e in ours:
        candidates |= _strings(json.loads(e.data))
    for actor in sorted(candidates):
        if not re.fullmatch(ACTOR_ID_PATTERN, actor):
            with pytest.raises(InvalidReadError):
                await store.read_all(START, filter=FeedFilter(actor=actor))
            continue
        reference = await _old_semantics(store, ours, actor)
        assert _in_memory(ours, actor) == reference, actor
        assert await _walk(store, FeedFilter(actor=actor), limit=2) == reference, actor


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_strings(v) for v in value))
    return set()


def test_only_filtered_pages_carry_the_actor_clause() -> None:
    # Those clauses made the planner choose parallel scans and JIT for every plain page.
    assert "jsonb_path_exists" not in READ_FEED_SQL
    assert "event_actor_refs" not in READ_FEED_SQL
    assert "event_actor_refs" in READ_FEED_ACTOR_SQL
    assert "jsonb_path_exists" in READ_FEED_NARROW_SQL
    # No optional clause around the actor's: it would keep the planner off the indexes.
    assert "IS NULL OR stream_id = 'actor-'" not in READ_FEED_ACTOR_SQL


def test_the_actor_pattern_is_the_domain_id() -> None:
    # The filter refuses what the domain cannot name, and indexes only what it can.
    assert f"^{ACTOR_ID_PATTERN}$" in repr(Id)


@pytest.mark.parametrize(
    "actor", ["Hamas", "abu marzook", "a-b", "_x", "é", "a" * 101, 'a"b', "a\n", "x\n"]
)
async def test_a_value_that_cannot_be_an_actor_id_is_refused(
    own_store: EventStore, actor: str
) -> None:
    with pytest.raises(InvalidReadError, match="not an actor id"):
        await own_store.read_all(START, filter=FeedFilter(actor=actor))


async def test_a_page_is_the_same_before_and_after_the_events_are_indexed(
    own_store: EventStore,
) -> None:
    store = own_store
    await store.index_actor_refs()
    run = uuid4().hex[:8]
    actor = f"k{run}"
    appends: list[tuple[str, Any]] = [
        (f"t{run}-{i}", {"participants": [{"actor_id": actor if i % 3 == 0 else f"o{i}"}]})
        for i in range(30)
    ]
    appends.append((f"actor-{actor}", {"name": "Kay"}))
    ours = await _append_all(store, appends)
    expected = await _old_semantics(store, ours, actor)
    assert len(expected) == 11

    async def walk_unindexed(limit: int) -> list[str]:
        # The page statement alone, as a reader sees the log before any catch-up: the events
        # past the checkpoint are tested one by one.
        found: list[str] = []
        cursor = START
        while True:
            rows = await store.pool.fetch(
                READ_FEED_ACTOR_SQL,
                cursor.transaction_id,
                cursor.position,
                limit,
                None,
                None,
                actor,
            )
            page = [r for r in rows if r["position"] is not None]
            found += [str(r["event_id"]) for r in page]
            if len(page) < limit:
                return found
            cursor = Cursor(page[-1]["transaction_id"], page[-1]["position"])

    unindexed = await store.pool.fetchval(
        "SELECT count(*) FROM event_actor_refs WHERE $1 = any(actor_ids)", actor
    )
    assert unindexed == 0
    assert await walk_unindexed(4) == expected
    assert await store.index_actor_refs() >= len(appends)
    indexed = await store.pool.fetchval(
        "SELECT count(*) FROM event_actor_refs WHERE $1 = any(actor_ids)", actor
    )
    assert indexed == 10  # the actor's own stream's event does not name it
    assert await walk_unindexed(4) == expected
    assert await store.index_actor_refs() == 0
    assert await _walk(store, FeedFilter(actor=actor), limit=3) == expected


async def test_the_background_indexer_keeps_up_without_readers(own_store: EventStore) -> None:
    store = own_store
    await store.index_actor_refs()
    run = uuid4().hex[:8]
    actor = f"b{run}"
    ours = await _append_all(
        store, [(f"t{run}-{i}", {"participants": [{"actor_id": actor}]}) for i in range(5)]
    )
    task = asyncio.get_running_loop().create_task(keep_actor_refs_indexed(store, idle=0.05))
    try:
        async with asyncio.timeout(30):
            while True:
                indexed = await store.pool.fetchval(
                    "SELECT count(*) FROM event_actor_refs WHERE $1 = any(actor_ids)", actor
                )
                if indexed == len(ours):
                    break
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # Nothing was left for a reader to index.
    assert await store.index_actor_refs() == 0


async def test_a_follower_misses_nothing_while_appends_land(own_store: EventStore) -> None:
    # Appends and filtered reads interleaved: each read indexes what came before it, events
    # keep landing past the checkpoint, and the follower sees each of its events once.
    store = own_store
    run = uuid4().hex[:8]
    actor = f"f{run}"
    appended: list[str] = []
    seen: list[str] = []
    cursor = START

    async def writer() -> None:
        for i in range(60):
            event = NewEvent(type="test.about", data={"who": [actor, f"x{i}"], "i": i})
            await store.append(f"t{run}-{i % 7}", [event])
            appended.append(str(event.event_id))
            await asyncio.sleep(0)

    task = asyncio.create_task(writer())
    try:
        async with asyncio.timeout(60):
            while not task.done() or len(seen) < len(appended):
                page = await store.read_all(cursor, limit=5, filter=FeedFilter(actor=actor))
                seen += [str(e.event_id) for e in page.events]
                cursor = page.next_cursor
                if not page.full:
                    await asyncio.sleep(0.01)
    finally:
        await task
    assert sorted(seen) == sorted(appended)
    assert len(set(seen)) == len(seen)


# -- plans over a log of some size ----------------------------------------------------------------


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_nodes(child))
    return found


async def _plan(conn: asyncpg.Connection, sql: str, *args: object) -> list[dict[str, Any]]:
    text = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    return _nodes(json.loads(text)[0]["Plan"])


async def _rows_read(conn: asyncpg.Connection, sql: str, limit: int, actor: str) -> int:
    text = await conn.fetchval(
        f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", 0, 0, limit, None, None, actor
    )
    return sum(
        (
            n.get("Actual Rows", 0)
            + n.get("Rows Removed by Filter", 0)
            + n.get("Rows Removed by Index Recheck", 0)
        )
        * n.get("Actual Loops", 1)
        for n in _nodes(json.loads(text)[0]["Plan"])
        if n.get("Relation Name") in {"events", "event_actor_refs"}
    )


async def test_a_rare_or_unknown_actor_costs_a_lookup_not_a_scan(large_log_dsn: str) -> None:
    conn = await asyncpg.connect(large_log_dsn)
    try:
        frequency = {
            r["actor"]: r["n"]
            for r in await conn.fetch(
                "SELECT p->>'actor_id' AS actor, count(*) AS n FROM events, "
                "jsonb_array_elements(data->'participants') AS p GROUP BY 1"
            )
        }
        rare = min(frequency, key=lambda a: (frequency[a], a))
        assert frequency[rare] < 20
        for actor in (rare, "nobody_at_all"):
            for limit in (1, 100):
                nodes = await _plan(conn, READ_FEED_ACTOR_SQL, 0, 0, limit, None, None, actor)
                # The checkpoint is one row: reading it whole is no walk of the log.
                kinds = {
                    n["Node Type"]
                    for n in nodes
                    if n.get("Relation Name") != "event_actor_refs_checkpoint"
                }
                used = {n.get("Index Name") for n in nodes}
                assert "Seq Scan" not in kinds, (actor, kinds)
                # A lookup of a few index pages never waits for parallel workers to start.
                assert not kinds & {"Gather", "Gather Merge"}, (actor, kinds)
                # Both halves of the meaning by their index, not a walk along the feed key.
                assert {"event_actor_refs_ids", "events_stream_version_key"} <= used, used
                # Run, it reads rows in proportion to the page, not to the log: the actor's
                # own few, the indexed ones naming it, each joined back by its key, and the
                # events past the checkpoint (none here).
                assert await _rows_read(conn, READ_FEED_ACTOR_SQL, limit, actor) < 100
        # Whatever the statistics say (they lag behind the catch-up's inserts), the index table
        # is never read by parallel workers.
        options = await conn.fetchval(
            "SELECT reloptions FROM pg_class WHERE relname = 'event_actor_refs'"
        )
        assert "parallel_workers=0" in options
        # A frequent actor's page is found at once along the feed key: no scan either.
        frequent = max(frequency, key=lambda a: (frequency[a], a))
        nodes = await _plan(conn, READ_FEED_ACTOR_SQL, 0, 0, 100, None, None, frequent)
        scanned = {n.get("Relation Name") for n in nodes if n["Node Type"] == "Seq Scan"}
        assert scanned <= {"event_actor_refs_checkpoint"}, scanned

        # asyncpg keeps its statements prepared; PostgreSQL could switch one to a generic plan,
        # which would walk the feed for every actor. It costs far more than the custom ones, so
        # it is never chosen.
        for actor in [rare, "nobody_at_all", frequent] * 4:
            await conn.fetch(READ_FEED_ACTOR_SQL, 0, 0, 100, None, None, actor)
        plans = await conn.fetchrow(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
            READ_FEED_ACTOR_SQL,
        )
        assert plans is not None
        assert plans["generic_plans"] == 0
        assert plans["custom_plans"] >= 12
    finally:
        await conn.close()
