"""Group commit: batching concurrent appends without ever flushing one stream twice at once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING

import pytest

from events import NO_STREAM, EventStore, NewEvent, WrongExpectedVersionError
from events.group_commit import GroupCommit
from events.hashing import (
    GENESIS_HASH,
    canonical_json,
    chain_hash,
    content_digest,
    encode_canonical,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg


class Recorder:
    """A flush that records its batches and can be held open."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.in_flight: set[str] = set()
        self.overlaps: list[str] = []

    async def flush(self, session: None, batch: list[tuple[str, int]]) -> list[str]:
        for key, _ in batch:
            if key in self.in_flight:
                self.overlaps.append(key)
            self.in_flight.add(key)
        self.batches.append(batch)
        await self.gate.wait()
        await asyncio.sleep(0)
        for key, _ in batch:
            self.in_flight.discard(key)
        return [f"{key}:{n}" for key, n in batch]


def _group(recorder: Recorder, **kwargs: int) -> GroupCommit[None, tuple[str, int], str]:
    return GroupCommit(
        recorder.flush,
        session=contextlib.nullcontext,
        key=lambda item: item[0],
        weight=lambda item: item[1],
        **kwargs,
    )


async def test_a_lone_item_is_flushed_at_once_and_alone() -> None:
    recorder = Recorder()
    group = _group(recorder)
    assert await group.submit(("a", 1)) == "a:1"
    assert recorder.batches == [[("a", 1)]]


async def test_items_arriving_while_slots_are_busy_share_the_next_batch() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    group = _group(recorder, max_inflight=1)
    first = asyncio.create_task(group.submit(("a", 1)))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(group.submit((f"s{i}", 1))) for i in range(5)]
    await asyncio.sleep(0)
    assert len(recorder.batches) == 1
    recorder.gate.set()
    results = await asyncio.gather(first, *rest)
    assert results == ["a:1"] + [f"s{i}:1" for i in range(5)]
    assert recorder.batches[1] == [(f"s{i}", 1) for i in range(5)]


async def test_writers_woken_by_one_flush_share_the_next_batch() -> None:
    """Eight writers, each submitting again as soon as its last item is flushed: after the
    first round, every batch holds all eight (not one straggler, then the other seven)."""
    recorder = Recorder()
    group = _group(recorder, max_inflight=1)

    async def writer(name: str) -> None:
        for n in range(5):
            await group.submit((f"{name}-{n}", 1))

    await asyncio.gather(*(writer(f"w{i}") for i in range(8)))
    assert [len(batch) for batch in recorder.batches] == [8] * 5


async def test_a_free_slot_gets_a_fair_share_of_the_queue() -> None:
    recorder = Recorder()
    group = _group(recorder, max_inflight=2, min_share=10)
    items = [(f"s{i}", 10) for i in range(8)]
    assert await asyncio.gather(*(group.submit(item) for item in items)) == [
        f"s{i}:10" for i in range(8)
    ]
    # Both slots were free: each took half, to run on two backends at once.
    assert [len(batch) for batch in recorder.batches] == [4, 4]


async def test_small_work_is_not_split_below_the_minimum_share() -> None:
    recorder = Recorder()
    group = _group(recorder, max_inflight=2, min_share=10)
    await asyncio.gather(*(group.submit((f"s{i}", 1)) for i in range(8)))
    assert [len(batch) for batch in recorder.batches] == [8]


async def test_one_key_is_never_flushed_twice_at_once() -> None:
    recorder = Recorder()
    group = _group(recorder, max_inflight=4)
    items = [(f"k{i % 3}", 1) for i in range(30)]
    results = await asyncio.gather(*(group.submit(item) for item in items))
    assert results == [f"{k}:{n}" for k, n in items]
    assert recorder.overlaps == []
    for batch in recorder.batches:
        keys = [key for key, _ in batch]
        assert len(keys) == len(set(keys))


async def test_batches_respect_the_weight_limit() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    group = _group(recorder, max_inflight=1, max_weight=10)
    blocker = asyncio.create_task(group.submit(("x", 1)))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(group.submit((f"w{i}", 4))) for i in range(5)]
    await asyncio.sleep(0)
    recorder.gate.set()
    await asyncio.gather(blocker, *waiting)
    assert all(sum(n for _, n in batch) <= 10 for batch in recorder.batches)
    assert sorted(key for batch in recorder.batches for key, _ in batch) == sorted(
        ["x", *(f"w{i}" for i in range(5))]
    )


async def test_a_failing_flush_fails_every_item_of_its_batch_only() -> None:
    calls = 0

    async def flush(session: None, batch: list[tuple[str, int]]) -> list[str]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if any(key == "bad" for key, _ in batch):
            raise RuntimeError("boom")
        return [key for key, _ in batch]

    group: GroupCommit[None, tuple[str, int], str] = GroupCommit(
        flush,
        session=contextlib.nullcontext,
        key=lambda item: item[0],
        weight=lambda item: item[1],
        max_inflight=1,
    )
    bad = asyncio.create_task(group.submit(("bad", 1)))
    await asyncio.sleep(0)
    good = asyncio.create_task(group.submit(("good", 1)))
    with pytest.raises(RuntimeError, match="boom"):
        await bad
    assert await good == "good"


async def test_a_cancelled_caller_does_not_stop_its_flush() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    group = _group(recorder)
    task = asyncio.create_task(group.submit(("a", 1)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    recorder.gate.set()
    assert await group.submit(("b", 1)) == "b:1"
    assert [key for batch in recorder.batches for key, _ in batch] == ["a", "b"]


class Sessions:
    """Sessions that count how often they are opened, and can fail to open."""

    def __init__(self) -> None:
        self.opened = 0
        self.refuse = False

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[int]:
        if self.refuse:
            raise ConnectionError("database down")
        self.opened += 1
        yield self.opened


async def test_a_busy_slot_keeps_its_session_for_the_next_batch() -> None:
    sessions = Sessions()
    seen: list[int] = []

    async def flush(session: int, batch: list[tuple[str, int]]) -> list[str]:
        seen.append(session)
        await asyncio.sleep(0)
        return [key for key, _ in batch]

    group: GroupCommit[int, tuple[str, int], str] = GroupCommit(
        flush, session=sessions.open, key=lambda i: i[0], weight=lambda i: i[1], max_inflight=1
    )
    first = asyncio.create_task(group.submit(("a", 1)))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(group.submit((f"s{i}", 1))) for i in range(3)]
    assert await asyncio.gather(first, *rest) == ["a", "s0", "s1", "s2"]
    assert seen == [1, 1]
    assert sessions.opened == 1
    # Idle now: the next item opens a session of its own.
    assert await group.submit(("b", 1)) == "b"
    assert sessions.opened == 2


async def test_a_session_that_fails_to_open_fails_its_batch_and_the_next_one_retries() -> None:
    sessions = Sessions()
    sessions.refuse = True

    async def flush(session: int, batch: list[tuple[str, int]]) -> list[str]:
        return [key for key, _ in batch]

    group: GroupCommit[int, tuple[str, int], str] = GroupCommit(
        flush, session=sessions.open, key=lambda i: i[0], weight=lambda i: i[1]
    )
    with pytest.raises(ConnectionError):
        await group.submit(("a", 1))
    sessions.refuse = False
    # The failed batch's key is free again.
    assert await group.submit(("a", 1)) == "a"


async def test_a_failed_flush_gives_its_session_back() -> None:
    sessions = Sessions()
    seen: list[int] = []

    async def flush(session: int, batch: list[tuple[str, int]]) -> list[str]:
        seen.append(session)
        await asyncio.sleep(0)
        if batch[0][0] == "bad":
            raise RuntimeError("broken connection")
        return [key for key, _ in batch]

    group: GroupCommit[int, tuple[str, int], str] = GroupCommit(
        flush, session=sessions.open, key=lambda i: i[0], weight=lambda i: i[1], max_inflight=1
    )
    bad = asyncio.create_task(group.submit(("bad", 1)))
    await asyncio.sleep(0)
    good = asyncio.create_task(group.submit(("good", 1)))
    with pytest.raises(RuntimeError):
        await bad
    assert await good == "good"
    assert seen == [1, 2]


def test_max_inflight_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_inflight"):
        GroupCommit(
            Recorder().flush,
            session=contextlib.nullcontext,
            key=lambda i: i[0],
            weight=lambda i: i[1],
            max_inflight=0,
        )


async def test_concurrent_appends_to_many_streams_through_group_commit(
    pool: asyncpg.Pool,
) -> None:
    store = EventStore(pool, group_commit=2)
    category = f"g{uuid.uuid4().hex[:10]}"
    streams = [f"{category}-{i}" for i in range(12)]

    async def writer(stream_id: str) -> list[int]:
        versions = []
        for n in range(5):
            result = await store.append(
                stream_id, [NewEvent(type="test.gc", data={"n": n})], n if n else NO_STREAM
            )
            versions.append(result.last_version)
        return versions

    results = await asyncio.gather(*(writer(s) for s in streams))
    assert results == [[1, 2, 3, 4, 5]] * len(streams)
    for stream_id in streams:
        stored = (await store.read_stream(stream_id)).events
        assert [e.stream_version for e in stored] == [1, 2, 3, 4, 5]


async def test_one_stale_append_in_a_batch_does_not_fail_the_others(pool: asyncpg.Pool) -> None:
    """A batch whose INSERT conflicts is retried append by append: the conflicting one gets
    its error, the others succeed."""
    store = EventStore(pool, group_commit=1)
    other = EventStore(pool, group_commit=None)
    category = f"g{uuid.uuid4().hex[:10]}"
    streams = [f"{category}-{i}" for i in range(6)]
    for stream_id in streams:
        await store.append(stream_id, [NewEvent(type="test.gc", data={})], NO_STREAM)
    # Another process moves stream 0 on: this store's cached head is now stale.
    await other.append(streams[0], [NewEvent(type="test.gc", data={})], 1)
    outcomes = await asyncio.gather(
        *(store.append(s, [NewEvent(type="test.gc", data={})], 1) for s in streams),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], WrongExpectedVersionError)
    assert outcomes[0].actual == 2
    assert all(not isinstance(o, BaseException) and o.last_version == 2 for o in outcomes[1:])


async def test_a_shared_insert_stores_each_events_canonical_bytes(pool: asyncpg.Pool) -> None:
    """Several streams in one statement (one JSON array of rows): each row lands in its own
    stream with the exact canonical bytes its hash was taken over, awkward values included."""
    store = EventStore(pool, group_commit=1)
    category = f"g{uuid.uuid4().hex[:10]}"
    streams = [f"{category}-{i}" for i in range(4)]
    awkward = {
        "big": 10**20,
        "exp": 1e20,
        "neg_zero": -0.0,
        "text": 'Zürich ✓ "q" \\ \n \u001f \U0001f54a',
        "nested": {"z": [1.5, {"b": None, "a": True}], "a": 1e-7},
    }
    # The first append holds the only slot, so the next four share one INSERT.
    first = asyncio.create_task(
        store.append(f"{category}-x", [NewEvent(type="t", data={})], NO_STREAM)
    )
    await asyncio.sleep(0)
    batches = [
        [NewEvent(type="test.gc", data={"n": n, **awkward}) for n in range(i + 1)]
        for i in range(len(streams))
    ]
    results = await asyncio.gather(
        *(store.append(s, b, NO_STREAM) for s, b in zip(streams, batches, strict=True))
    )
    await first
    assert len({r.cursor.transaction_id for r in results}) == 1
    for stream_id, batch, result in zip(streams, batches, results, strict=True):
        stored = (await store.read_stream(stream_id)).events
        assert [e.event_id for e in stored] == [e.event_id for e in batch]
        assert result.positions == [e.position for e in stored]
        assert result.cursor == stored[-1].cursor
        previous = GENESIS_HASH
        for event, recorded in zip(batch, stored, strict=True):
            data = canonical_json(recorded.data)
            assert data == encode_canonical(event.data)
            digest = content_digest(
                stream_id=stream_id,
                event_id=recorded.event_id,
                type=recorded.type,
                schema_version=recorded.schema_version,
                data=data,
                metadata=canonical_json(recorded.metadata),
            )
            previous = chain_hash(previous, recorded.stream_version, digest)
            assert recorded.hash == previous
