"""The events table only ever grows: the app role may not change it, the owner is stopped by
triggers. Every refused statement runs inside a transaction that is rolled back, so a
regression could never damage the run's shared database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from events import NewEvent

if TYPE_CHECKING:
    from events import EventStore

CHANGES = (
    ("UPDATE", "UPDATE events SET type = 'tampered' WHERE stream_id = $1"),
    ("DELETE", "DELETE FROM events WHERE stream_id = $1"),
)


async def _snapshot(conn: Any, stream: str) -> list[tuple[Any, ...]]:
    rows = await conn.fetch(
        "SELECT position, stream_version, event_id, type, data::text, hash FROM events "
        "WHERE stream_id = $1 ORDER BY stream_version",
        stream,
    )
    return [tuple(r) for r in rows]


async def _refused(conn: Any, sql: str, *args: Any) -> str:
    """Run ``sql`` in a transaction that is always rolled back; return the refusal message."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError) as caught:
            await conn.execute(sql, *args)
    finally:
        await transaction.rollback()
    return str(caught.value)


@pytest.fixture
async def written(store: EventStore, stream: str) -> list[tuple[Any, ...]]:
    """Two events in ``stream``, appended through the store as the app role."""
    await store.append(
        stream,
        [
            NewEvent(type="test.appended", data={"n": 1}),
            NewEvent(type="test.appended", data={"n": 2}),
        ],
    )
    async with store.pool.acquire() as conn:
        return await _snapshot(conn, stream)


async def test_app_role_can_insert_and_select_through_the_store(
    store: EventStore, stream: str, written: list[tuple[Any, ...]]
) -> None:
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT current_user") == "diplofeed_app"
    result = await store.append(stream, [NewEvent(type="test.appended", data={"n": 3})])
    assert (result.first_version, result.last_version) == (3, 3)
    stored = await store.read_stream(stream)
    assert [e.stream_version for e in stored.events] == [1, 2, 3]
    assert [e.data for e in stored.events] == ['{"n": 1}', '{"n": 2}', '{"n": 3}']


@pytest.mark.parametrize(("operation", "sql"), CHANGES)
async def test_app_role_may_not_update_or_delete(
    pool: asyncpg.Pool, stream: str, written: list[tuple[Any, ...]], operation: str, sql: str
) -> None:
    async with pool.acquire() as conn:
        message = await _refused(conn, sql, stream)
        assert "permission denied for table events" in message, operation
        assert await _snapshot(conn, stream) == written


async def test_app_role_may_not_truncate_or_lift_the_guards(
    pool: asyncpg.Pool, stream: str, written: list[tuple[Any, ...]]
) -> None:
    async with pool.acquire() as conn:
        assert "permission denied" in await _refused(conn, "TRUNCATE events")
        assert "permission denied" in await _refused(conn, "DELETE FROM events WHERE false")
        assert "owner" in await _refused(conn, "ALTER TABLE events DISABLE TRIGGER USER")
        assert "owner" in await _refused(conn, "DROP TRIGGER events_append_only ON events")
        assert "permission denied" in await _refused(conn, "SET session_replication_role = replica")
        assert "permission denied" in await _refused(
            conn, "INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'x', 'y')"
        )
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") >= 1
        assert await _snapshot(conn, stream) == written


@pytest.mark.parametrize(("operation", "sql"), CHANGES)
async def test_owner_is_stopped_by_the_triggers(
    owner_dsn: str, stream: str, written: list[tuple[Any, ...]], operation: str, sql: str
) -> None:
    conn = await asyncpg.connect(owner_dsn)
    try:
        message = await _refused(conn, sql, stream)
        assert f"the events table is append-only: {operation} is not allowed" in message
        assert await _snapshot(conn, stream) == written
    finally:
        await conn.close()


async def test_owner_is_refused_even_a_statement_that_matches_nothing(
    owner_dsn: str, stream: str, written: list[tuple[Any, ...]]
) -> None:
    conn = await asyncpg.connect(owner_dsn)
    try:
        for sql, operation in (
            ("DELETE FROM events WHERE false", "DELETE"),
            ("UPDATE events SET type = type WHERE false", "UPDATE"),
            ("TRUNCATE events", "TRUNCATE"),
        ):
            message = await _refused(conn, sql)
            assert f"append-only: {operation} is not allowed" in message
        assert await _snapshot(conn, stream) == written
        assert await conn.fetchval("SELECT count(*) FROM events") >= len(written)
    finally:
        await conn.close()


async def test_refusal_carries_a_hint(owner_dsn: str, written: list[tuple[Any, ...]]) -> None:
    conn = await asyncpg.connect(owner_dsn)
    transaction = conn.transaction()
    await transaction.start()
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError) as caught:
            await conn.execute("DELETE FROM events WHERE false")
        assert caught.value.sqlstate == "42501"
        assert "correction or retraction event" in (caught.value.hint or "")
    finally:
        await transaction.rollback()
        await conn.close()
