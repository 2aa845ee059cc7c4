"""Appends: expected versions, atomicity, validation, idempotency, caller transactions and
concurrent writers, all against the real PostgreSQL event log."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import asyncpg
import msgspec
import pytest

from events import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    Cursor,
    EventStore,
    IdempotencyError,
    InvalidAppendError,
    Metadata,
    NewEvent,
    WrongExpectedVersionError,
)
from events.hashing import GENESIS_HASH, canonical_json, chain_hash, content_digest


def event(type: str = "Thing.Happened", **data: Any) -> NewEvent:
    """A new event with a fresh id; ``data`` defaults to a unique marker."""
    return NewEvent(type=type, data=data or {"marker": uuid4().hex})


async def event_ids(store: EventStore, stream_id: str) -> list[str]:
    """The ids stored in ``stream_id``, in stream order."""
    page = await store.read_stream(stream_id)
    return [str(e.event_id) for e in page.events]


async def count_event_ids(pool: asyncpg.Pool, ids: list[NewEvent]) -> int:
    """How many of these events' ids are stored anywhere in the log."""
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM events WHERE event_id = any($1::uuid[])",
            [e.event_id for e in ids],
        )
    )


async def assert_chain_intact(store: EventStore, stream_id: str) -> None:
    """Recompute the stream's hash chain from its stored events."""
    previous = GENESIS_HASH
    stored = (await store.read_stream(stream_id, limit=10_000)).events
    for number, recorded in enumerate(stored, start=1):
        assert recorded.stream_version == number
        digest = content_digest(
            stream_id=stream_id,
            event_id=recorded.event_id,
            type=recorded.type,
            schema_version=recorded.schema_version,
            data=canonical_json(recorded.data),
            metadata=canonical_json(recorded.metadata),
        )
        previous = chain_hash(previous, number, digest)
        assert recorded.hash == previous, f"{stream_id} breaks at version {number}"


class Boom(Exception):
    """Raised inside a transaction to roll it back."""


# -- expected versions --------------------------------------------------------------------------


async def test_versions_count_from_one_and_result_fields(store: EventStore, stream: str) -> None:
    batch = [event(), event(), event()]
    result = await store.append(stream, batch, NO_STREAM)

    assert result.stream_id == stream
    assert (result.first_version, result.last_version) == (1, 3)
    assert not result.replayed
    assert len(result.positions) == 3
    assert result.positions == sorted(result.positions)
    assert len(set(result.positions)) == 3

    stored = (await store.read_stream(stream)).events
    assert [e.stream_version for e in stored] == [1, 2, 3]
    assert [e.event_id for e in stored] == [e.event_id for e in batch]
    assert [e.position for e in stored] == result.positions
    assert result.cursor == stored[-1].cursor
    # All events of one append share its transaction.
    assert len({e.transaction_id for e in stored}) == 1
    assert result.cursor == Cursor(stored[0].transaction_id, result.positions[-1])

    second = await store.append(stream, [event(), event()])
    assert (second.first_version, second.last_version) == (4, 5)
    assert min(second.positions) > max(result.positions)
    assert await store.stream_version(stream) == 5


async def test_stored_event_keeps_type_data_and_metadata(store: EventStore, stream: str) -> None:
    new = NewEvent(
        type="Meeting.Scheduled",
        schema_version=3,
        data={"where": "Geneva", "attendees": ["a", "b"], "n": 2},
        metadata=Metadata(correlation_id="corr-1", extra={"k": "v"}),
    )
    await store.append(stream, [new])
    (stored,) = (await store.read_stream(stream)).events
    assert stored.event_id == new.event_id
    assert stored.type == "Meeting.Scheduled"
    assert stored.schema_version == 3
    assert stored.stream_id == stream
    assert len(stored.hash) == 32
    assert msgspec.json.decode(stored.data) == {"where": "Geneva", "attendees": ["a", "b"], "n": 2}
    assert stored.decoded_metadata() == Metadata(correlation_id="corr-1", extra={"k": "v"})


async def test_any_appends_to_new_and_existing_streams(store: EventStore, stream: str) -> None:
    first = await store.append(stream, [event()], ANY)
    second = await store.append(stream, [event()], ANY)
    assert (first.first_version, second.first_version) == (1, 2)


async def test_no_stream_succeeds_on_new_stream_only(store: EventStore, stream: str) -> None:
    await store.append(stream, [event()], NO_STREAM)
    late = event()
    with pytest.raises(WrongExpectedVersionError) as info:
        await store.append(stream, [late], NO_STREAM)
    assert info.value.actual == 1
    assert info.value.expected == NO_STREAM
    assert info.value.stream_id == stream
    assert await store.stream_version(stream) == 1
    assert str(late.event_id) not in await event_ids(store, stream)


async def test_stream_exists_fails_on_new_stream_then_succeeds(
    store: EventStore, stream: str
) -> None:
    with pytest.raises(WrongExpectedVersionError) as info:
        await store.append(stream, [event()], STREAM_EXISTS)
    assert info.value.actual == 0
    assert info.value.expected == STREAM_EXISTS
    assert await store.stream_version(stream) == 0

    await store.append(stream, [event()], NO_STREAM)
    result = await store.append(stream, [event(), event()], STREAM_EXISTS)
    assert (result.first_version, result.last_version) == (2, 3)


async def test_exact_version_success_and_failure(store: EventStore, stream: str) -> None:
    await store.append(stream, [event(), event()], NO_STREAM)
    result = await store.append(stream, [event()], 2)
    assert result.first_version == 3

    for wrong in (2, 4, 10):
        with pytest.raises(WrongExpectedVersionError) as info:
            await store.append(stream, [event()], wrong)
        assert info.value.actual == 3
        assert info.value.expected == wrong
    assert await store.stream_version(stream) == 3


async def test_exact_version_on_missing_stream_fails(store: EventStore, stream: str) -> None:
    with pytest.raises(WrongExpectedVersionError) as info:
        await store.append(stream, [event()], 1)
    assert (info.value.actual, info.value.expected) == (0, 1)
    assert await store.stream_version(stream) == 0


async def test_invalid_expected_version_is_rejected(store: EventStore, stream: str) -> None:
    with pytest.raises(ValueError, match="expected version"):
        await store.append(stream, [event()], -3)
    assert await store.stream_version(stream) == 0


# -- atomicity ----------------------------------------------------------------------------------


async def test_batch_with_id_taken_in_other_stream_writes_nothing(
    store: EventStore, pool: asyncpg.Pool, stream: str
) -> None:
    other = f"{stream}-other"
    taken = event()
    await store.append(other, [taken])

    fresh = event()
    clash = NewEvent(type=taken.type, data={"other": "content"}, event_id=taken.event_id)
    with pytest.raises(IdempotencyError):
        await store.append(stream, [fresh, clash])
    assert await store.stream_version(stream) == 0
    assert await count_event_ids(pool, [fresh]) == 0
    assert await store.stream_version(other) == 1

    # Even with identical content, an id owned by another stream is not a replay here.
    same = NewEvent(type=taken.type, data=taken.data, event_id=taken.event_id)
    with pytest.raises(IdempotencyError):
        await store.append(stream, [same])
    assert await store.stream_version(stream) == 0


async def test_failed_expected_version_writes_no_event_of_the_batch(
    store: EventStore, pool: asyncpg.Pool, stream: str
) -> None:
    await store.append(stream, [event()])
    batch = [event(), event(), event()]
    with pytest.raises(WrongExpectedVersionError):
        await store.append(stream, batch, NO_STREAM)
    assert await count_event_ids(pool, batch) == 0
    assert await store.stream_version(stream) == 1


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stream_id", ["has space", "", "tab\tin", "new\nline", "x" * 201, "nul\x00"]
)
async def test_bad_stream_ids_are_rejected(store: EventStore, stream_id: str) -> None:
    with pytest.raises(InvalidAppendError):
        await store.append(stream_id, [event()])


async def test_empty_append_is_rejected(store: EventStore, stream: str) -> None:
    with pytest.raises(InvalidAppendError):
        await store.append(stream, [])


@pytest.mark.parametrize("bad_type", ["", "1Starts.With.Digit", "has space", "semi;colon", "é"])
async def test_bad_event_types_are_rejected(store: EventStore, stream: str, bad_type: str) -> None:
    with pytest.raises(InvalidAppendError):
        await store.append(stream, [event(), NewEvent(type=bad_type, data={})])
    assert await store.stream_version(stream) == 0


async def test_duplicate_ids_within_one_append_are_rejected(store: EventStore, stream: str) -> None:
    one = event()
    twin = NewEvent(type="Other.Type", data={"x": 1}, event_id=one.event_id)
    with pytest.raises(InvalidAppendError):
        await store.append(stream, [one, event(), twin])
    assert await store.stream_version(stream) == 0


@pytest.mark.parametrize("data", [[1, 2], "text", 42, None, True])
async def test_data_must_be_an_object(store: EventStore, stream: str, data: Any) -> None:
    with pytest.raises(InvalidAppendError):
        await store.append(stream, [NewEvent(type="Thing", data=data)])
    assert await store.stream_version(stream) == 0


async def test_data_that_is_not_json_is_rejected(store: EventStore, stream: str) -> None:
    with pytest.raises(InvalidAppendError):
        await store.append(stream, [NewEvent(type="Thing", data={"x": object()})])


@pytest.mark.parametrize("schema_version", [0, -1])
async def test_schema_version_below_one_is_rejected(
    store: EventStore, stream: str, schema_version: int
) -> None:
    with pytest.raises(InvalidAppendError):
        await store.append(stream, [NewEvent(type="T", data={}, schema_version=schema_version)])
    assert await store.stream_version(stream) == 0


async def test_nul_characters_are_rejected(store: EventStore, stream: str) -> None:
    with pytest.raises(InvalidAppendError):
        await store.append(stream, [NewEvent(type="T", data={"x": "a\x00b"})])
    with pytest.raises(InvalidAppendError):
        await store.append(
            stream, [NewEvent(type="T", data={}, metadata=Metadata(recorded_by="a\x00"))]
        )
    assert await store.stream_version(stream) == 0


# -- idempotency --------------------------------------------------------------------------------


def without_replayed(result: AppendResult) -> tuple[object, ...]:
    return (
        result.stream_id,
        result.first_version,
        result.last_version,
        result.positions,
        result.cursor,
    )


async def test_identical_reappend_is_a_replay(store: EventStore, stream: str) -> None:
    batch = [event(), event()]
    original = await store.append(stream, batch, NO_STREAM)
    again = await store.append(stream, batch, ANY)
    assert again.replayed
    assert without_replayed(again) == without_replayed(original)
    assert await store.stream_version(stream) == 2
    assert await event_ids(store, stream) == [str(e.event_id) for e in batch]


async def test_replay_with_stale_exact_expected_version(store: EventStore, stream: str) -> None:
    await store.append(stream, [event()], NO_STREAM)
    batch = [event(), event()]
    original = await store.append(stream, batch, 1)
    await store.append(stream, [event()], 3)

    # The retry still carries the expected version of the original request.
    again = await store.append(stream, batch, 1)
    assert again.replayed
    assert without_replayed(again) == without_replayed(original)
    # And with NO_STREAM, which no longer holds, or STREAM_EXISTS, which does.
    assert (await store.append(stream, batch, NO_STREAM)).replayed
    assert (await store.append(stream, batch, STREAM_EXISTS)).replayed
    assert await store.stream_version(stream) == 4


async def test_same_id_with_different_data_is_an_idempotency_error(
    store: EventStore, stream: str
) -> None:
    original = event(value=1)
    await store.append(stream, [original])
    changed = NewEvent(type=original.type, data={"value": 2}, event_id=original.event_id)
    with pytest.raises(IdempotencyError) as info:
        await store.append(stream, [changed])
    assert info.value.event_id == original.event_id

    retyped = NewEvent(type="Other.Type", data=original.data, event_id=original.event_id)
    with pytest.raises(IdempotencyError):
        await store.append(stream, [retyped])
    reversioned = NewEvent(
        type=original.type, data=original.data, schema_version=2, event_id=original.event_id
    )
    with pytest.raises(IdempotencyError):
        await store.append(stream, [reversioned])
    assert await store.stream_version(stream) == 1


async def test_batch_mixing_appended_and_new_ids_is_an_idempotency_error(
    store: EventStore, pool: asyncpg.Pool, stream: str
) -> None:
    old = event()
    await store.append(stream, [old])
    fresh = event()
    for batch in ([old, fresh], [fresh, old]):
        with pytest.raises(IdempotencyError):
            await store.append(stream, batch)
    assert await count_event_ids(pool, [fresh]) == 0
    assert await store.stream_version(stream) == 1


async def test_metadata_difference_alone_is_still_a_replay(store: EventStore, stream: str) -> None:
    original = NewEvent(
        type="T", data={"a": 1, "b": [1, 2]}, metadata=Metadata(correlation_id="first-try")
    )
    result = await store.append(stream, [original])
    retry = NewEvent(
        type="T",
        # Same content, keys in another order.
        data={"b": [1, 2], "a": 1},
        event_id=original.event_id,
        metadata=Metadata(correlation_id="second-try", traceparent="00-abc-def-01"),
    )
    again = await store.append(stream, [retry])
    assert again.replayed
    assert without_replayed(again) == without_replayed(result)
    (stored,) = (await store.read_stream(stream)).events
    assert stored.decoded_metadata().correlation_id == "first-try"


# -- other writers behind this store's back ----------------------------------------------------


async def test_appends_by_another_store_are_taken_into_account(
    store: EventStore, pool: asyncpg.Pool, stream: str
) -> None:
    """Another process (here: another store with its own state) appends to a stream this store
    wrote before: this store's next appends must neither refuse wrongly nor break the chain."""
    other = EventStore(pool)
    await store.append(stream, [event()], NO_STREAM)
    await other.append(stream, [event()], 1)

    assert (await store.append(stream, [event()], 2)).first_version == 3
    await other.append(stream, [event(), event()])
    assert (await store.append(stream, [event()], ANY)).first_version == 6
    await other.append(stream, [event()])
    assert (await store.append(stream, [event()], STREAM_EXISTS)).first_version == 8
    await other.append(stream, [event()])
    with pytest.raises(WrongExpectedVersionError) as info:
        await store.append(stream, [event()], 8)
    assert info.value.actual == 9
    with pytest.raises(WrongExpectedVersionError) as info:
        await store.append(stream, [event()], NO_STREAM)
    assert info.value.actual == 9
    assert await store.stream_version(stream) == 9
    await assert_chain_intact(store, stream)


async def test_appends_in_caller_transactions_are_taken_into_account(
    store: EventStore, pool: asyncpg.Pool, stream: str
) -> None:
    await store.append(stream, [event()], NO_STREAM)
    async with pool.acquire() as conn, conn.transaction():
        await store.append(stream, [event()], 1, connection=conn)
        await store.append(stream, [event()], 2, connection=conn)
    assert (await store.append(stream, [event()], 3)).first_version == 4
    async with pool.acquire() as conn, conn.transaction():
        await store.append(stream, [event()], connection=conn)
    assert (await store.append(stream, [event()])).first_version == 6
    # A rolled-back caller transaction leaves the stream where it was.
    async with pool.acquire() as conn:
        with pytest.raises(Boom):
            async with conn.transaction():
                await store.append(stream, [event(), event()], 6, connection=conn)
                raise Boom
    assert (await store.append(stream, [event()], 6)).first_version == 7
    await assert_chain_intact(store, stream)


async def test_replay_after_other_writers_moved_the_stream(
    store: EventStore, pool: asyncpg.Pool, stream: str
) -> None:
    batch = [event(), event()]
    original = await store.append(stream, batch, NO_STREAM)
    await EventStore(pool).append(stream, [event()], 2)
    for expected in (NO_STREAM, 2, ANY, STREAM_EXISTS):
        again = await store.append(stream, batch, expected)
        assert again.replayed
        assert without_replayed(again) == without_replayed(original)
    assert await store.stream_version(stream) == 3
    await assert_chain_intact(store, stream)


async def test_chains_are_intact_after_concurrent_appends(
    store: EventStore, pool: asyncpg.Pool, stream: str
) -> None:
    stores = [store, EventStore(pool), EventStore(pool)]
    async with asyncio.timeout(30):
        await asyncio.gather(
            *(stores[i % 3].append(stream, [event() for _ in range(1 + i % 2)]) for i in range(12))
        )
    await assert_chain_intact(store, stream)


# -- inside a caller's transaction --------------------------------------------------------------


async def test_caller_rollback_leaves_nothing(
    store: EventStore, pool: asyncpg.Pool, stream: str
) -> None:
    batch = [event(), event()]
    async with pool.acquire() as conn:
        with pytest.raises(Boom):
            async with conn.transaction():
                result = await store.append(stream, batch, NO_STREAM, connection=conn)
                assert result.first_version == 1
                # Visible to the caller's own transaction...
                assert (
                    await conn.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", stream)
                    == 2
                )
                raise Boom
    # ...and gone with it.
    assert await store.stream_version(stream) == 0
    assert await count_event_ids(pool, batch) == 0
    # The ids are free again.
    assert not (await store.append(stream, batch, NO_STREAM)).replayed


async def test_caller_commit_makes_events_visible(
    store: EventStore, pool: asyncpg.Pool, stream: str
) -> None:
    other = f"{stream}-b"
    async with pool.acquire() as conn, conn.transaction():
        await store.append(stream, [event()], NO_STREAM, connection=conn)
        await store.append(other, [event()], NO_STREAM, connection=conn)
        await store.append(stream, [event()], 1, connection=conn)
        # Not visible outside before the commit.
        assert await store.stream_version(stream) == 0
    assert await store.stream_version(stream) == 2
    assert await store.stream_version(other) == 1
    store.notify_committed()


async def test_conflict_inside_caller_transaction_keeps_it_usable(
    store: EventStore, pool: asyncpg.Pool, stream: str
) -> None:
    await store.append(stream, [event()], NO_STREAM)
    taken = event(value=1)
    await store.append(f"{stream}-taken", [taken])

    kept = event()
    rejected = event()
    async with pool.acquire() as conn:
        async with conn.transaction():
            with pytest.raises(WrongExpectedVersionError) as info:
                await store.append(stream, [rejected], NO_STREAM, connection=conn)
            assert info.value.actual == 1
            with pytest.raises(IdempotencyError):
                await store.append(
                    stream,
                    [NewEvent(type=taken.type, data={"value": 2}, event_id=taken.event_id)],
                    connection=conn,
                )
            # The caller's transaction is still usable after both failures.
            assert await conn.fetchval("SELECT 1") == 1
            result = await store.append(stream, [kept], 1, connection=conn)
            assert result.first_version == 2
            # A retry of the same batch inside the same transaction is a replay.
            assert (await store.append(stream, [kept], 1, connection=conn)).replayed
        assert not conn.is_in_transaction()
    ids = await event_ids(store, stream)
    assert len(ids) == 2
    assert ids[1] == str(kept.event_id)
    assert await count_event_ids(pool, [rejected]) == 0


async def wait_until_blocked(owner_dsn: str, pid: int) -> None:
    """Wait until backend ``pid`` waits on a lock (as the owner, who may see its wait)."""
    owner = await asyncpg.connect(owner_dsn)
    try:
        async with asyncio.timeout(10):
            while True:
                if await owner.fetchval(
                    "SELECT count(*) > 0 FROM pg_stat_activity"
                    " WHERE pid = $1 AND wait_event_type = 'Lock'",
                    pid,
                ):
                    return
                await asyncio.sleep(0.01)
    finally:
        await owner.close()


async def test_conflict_with_concurrent_caller_transaction(
    store: EventStore, pool: asyncpg.Pool, owner_dsn: str, stream: str
) -> None:
    """A caller whose append waits on another open transaction gets the conflict once that
    one commits, and its own transaction stays usable."""
    async with pool.acquire() as first, pool.acquire() as second:
        tx1 = first.transaction()
        await tx1.start()
        tx2 = second.transaction()
        await tx2.start()
        try:
            await store.append(stream, [event()], NO_STREAM, connection=first)
            racing = asyncio.create_task(
                store.append(stream, [event()], NO_STREAM, connection=second)
            )
            await wait_until_blocked(owner_dsn, second.get_server_pid())
            await tx1.commit()
            async with asyncio.timeout(10):
                with pytest.raises(WrongExpectedVersionError) as info:
                    await racing
            assert info.value.actual == 1
            result = await store.append(stream, [event()], 1, connection=second)
            await tx2.commit()
        finally:
            for conn, tx in ((first, tx1), (second, tx2)):
                if conn.is_in_transaction():
                    await tx.rollback()
    assert result.first_version == 2
    assert await store.stream_version(stream) == 2


# -- concurrency --------------------------------------------------------------------------------


async def test_concurrent_exact_version_appends_have_one_winner(
    store: EventStore, pool: asyncpg.Pool, stream: str
) -> None:
    await store.append(stream, [event()], NO_STREAM)
    batches = [[event(), event()] for _ in range(12)]
    async with asyncio.timeout(30):
        outcomes = await asyncio.gather(
            *(store.append(stream, batch, 1) for batch in batches), return_exceptions=True
        )
    wins = [o for o in outcomes if isinstance(o, AppendResult)]
    losses = [o for o in outcomes if isinstance(o, WrongExpectedVersionError)]
    assert len(wins) == 1, outcomes
    assert len(losses) == 11, outcomes
    assert all(loss.actual == 3 and loss.expected == 1 for loss in losses)
    assert (wins[0].first_version, wins[0].last_version) == (2, 3)
    assert await store.stream_version(stream) == 3
    winner = batches[outcomes.index(wins[0])]
    stored = (await store.read_stream(stream)).events
    assert [e.event_id for e in stored[1:]] == [e.event_id for e in winner]


async def test_concurrent_no_stream_appends_have_one_winner(store: EventStore, stream: str) -> None:
    async with asyncio.timeout(30):
        outcomes = await asyncio.gather(
            *(store.append(stream, [event()], NO_STREAM) for _ in range(10)),
            return_exceptions=True,
        )
    assert sum(isinstance(o, AppendResult) for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, WrongExpectedVersionError) for o in outcomes) == 9, outcomes
    assert await store.stream_version(stream) == 1


async def test_concurrent_any_appends_all_succeed_contiguously(
    store: EventStore, stream: str
) -> None:
    batches = [[event()] if i % 2 else [event(), event()] for i in range(15)]
    async with asyncio.timeout(30):
        results = await asyncio.gather(*(store.append(stream, b, ANY) for b in batches))
    total = sum(len(b) for b in batches)
    assert not any(r.replayed for r in results)
    stored = (await store.read_stream(stream)).events
    assert [e.stream_version for e in stored] == list(range(1, total + 1))
    # Each batch landed contiguously, as its result says.
    for batch, result in zip(batches, results, strict=True):
        assert result.last_version - result.first_version + 1 == len(batch)
        got = stored[result.first_version - 1 : result.last_version]
        assert [e.event_id for e in got] == [e.event_id for e in batch]
        assert [e.position for e in got] == result.positions
    assert sorted(str(e.event_id) for b in batches for e in b) == sorted(
        str(e.event_id) for e in stored
    )


@pytest.mark.parametrize("expected", [ANY, NO_STREAM])
async def test_concurrent_identical_reappends_store_one_copy(
    store: EventStore, pool: asyncpg.Pool, stream: str, expected: int
) -> None:
    batch = [event(), event(), event()]
    async with asyncio.timeout(30):
        results = await asyncio.gather(*(store.append(stream, batch, expected) for _ in range(8)))
    assert sum(not r.replayed for r in results) == 1
    assert all(without_replayed(r) == without_replayed(results[0]) for r in results)
    assert await store.stream_version(stream) == 3
    assert await count_event_ids(pool, batch) == 3
    assert results[0].positions == [e.position for e in (await store.read_stream(stream)).events]
