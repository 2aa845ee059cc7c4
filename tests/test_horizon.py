"""The feed's horizon: what an open transaction holds back, and the guards that bound it."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import asyncpg
import pytest

from events import APP_ROLE, ConnectionOptions, Cursor, NewEvent, connect, create_pool, horizon_lag

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from events import EventStore, HorizonLag

# Bounds on waiting for the cluster to settle (other sessions may briefly hold the horizon);
# tests wait for a state, they never assert how long anything took.
WAIT_STEPS = 600
WAIT_STEP = 0.05


async def _wait_for(
    measure: Callable[[], Awaitable[HorizonLag]], condition: Callable[[HorizonLag], bool]
) -> HorizonLag:
    lag = await measure()
    for _ in range(WAIT_STEPS):
        if condition(lag):
            return lag
        await asyncio.sleep(WAIT_STEP)
        lag = await measure()
    return lag


@pytest.fixture
async def monitor(owner_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection, which sees every session's details in pg_stat_activity."""
    conn = await asyncpg.connect(owner_dsn)
    yield conn
    await conn.close()


async def test_nothing_is_held_back_once_writers_have_committed(
    store: EventStore, stream: str, monitor: asyncpg.Connection
) -> None:
    await store.append(stream, [NewEvent(type="test.horizon", data={"n": 1})])
    lag = await _wait_for(lambda: horizon_lag(store.pool), lambda lag: lag.events_held_back == 0)
    assert lag.events_held_back == 0
    assert lag.seconds_behind == 0.0
    assert lag.horizon > 0
    lag = await _wait_for(lambda: horizon_lag(monitor), lambda lag: lag.events_held_back == 0)
    assert lag.events_held_back == 0


async def test_an_open_transaction_holds_committed_events_back(
    owner_dsn: str, store: EventStore, stream: str, monitor: asyncpg.Connection
) -> None:
    application = f"holder-{uuid.uuid4().hex[:8]}"
    holder = await asyncpg.connect(owner_dsn, server_settings={"application_name": application})
    try:
        transaction = holder.transaction()
        await transaction.start()
        xid: int = await holder.fetchval("SELECT pg_current_xact_id()::text::bigint")
        try:
            first = await store.append(stream, [NewEvent(type="test.horizon", data={"n": 1})])
            await store.append(stream, [NewEvent(type="test.horizon", data={"n": 2})])
            just_before = Cursor(first.cursor.transaction_id, first.cursor.position - 1)

            lag = await horizon_lag(monitor)
            assert lag.events_held_back >= 2
            assert lag.horizon <= xid
            assert lag.seconds_behind >= 0.0
            oldest = lag.oldest_transaction
            assert oldest is not None
            assert oldest.transaction_id is not None
            if oldest.pid == holder.get_server_pid():
                assert oldest.transaction_id == xid % 2**32
                assert oldest.application == application
                assert oldest.user == "postgres"
                assert oldest.database == urlsplit(owner_dsn).path.lstrip("/")
                assert oldest.state == "idle in transaction"
                assert oldest.started_at is not None
                assert oldest.age_seconds is not None
                assert oldest.age_seconds >= 0.0
            else:
                # Another session of the shared server is older still; it holds the horizon.
                assert oldest.transaction_id <= xid % 2**32

            # The app role sees the backlog too (details of other roles' sessions need
            # pg_monitor, which it lacks).
            assert (await horizon_lag(store.pool)).events_held_back >= 2

            # Nor does the feed deliver them yet.
            page = await store.read_all(just_before, limit=10_000)
            assert stream not in {e.stream_id for e in page.events}
        finally:
            await transaction.rollback()
    finally:
        await holder.close()

    lag = await _wait_for(lambda: horizon_lag(monitor), lambda lag: lag.events_held_back == 0)
    assert lag.events_held_back == 0
    assert lag.seconds_behind == 0.0
    page = await store.read_all(just_before, limit=10_000)
    assert [e.stream_version for e in page.events if e.stream_id == stream] == [1, 2]


async def test_app_connections_carry_the_guards(
    pool: asyncpg.Pool, app_options: ConnectionOptions
) -> None:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT name, setting FROM pg_settings WHERE name = any($1::text[])",
            ["statement_timeout", "idle_in_transaction_session_timeout", "application_name"],
        )
        settings = {r["name"]: r["setting"] for r in rows}
        assert settings == {
            "statement_timeout": str(app_options.statement_timeout_ms),
            "idle_in_transaction_session_timeout": str(app_options.idle_in_transaction_timeout_ms),
            "application_name": app_options.application_name,
        }
        assert await conn.fetchval("SHOW statement_timeout") == "20s"
        assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == "20s"
        assert await conn.fetchval("SELECT current_user") == APP_ROLE


async def test_a_statement_over_the_timeout_is_cancelled(owner_dsn: str) -> None:
    options = ConnectionOptions(
        dsn=owner_dsn, role=APP_ROLE, statement_timeout_ms=50, min_pool_size=1, max_pool_size=1
    )
    short = await create_pool(options)
    try:
        with pytest.raises(asyncpg.QueryCanceledError, match="statement timeout"):
            await short.fetchval("SELECT pg_sleep(60)")
        # The connection survives and the next statement runs.
        assert await short.fetchval("SELECT 1") == 1
    finally:
        await short.close()


async def test_a_transaction_left_idle_is_ended_by_the_server(
    owner_dsn: str, monitor: asyncpg.Connection
) -> None:
    options = ConnectionOptions(dsn=owner_dsn, role=APP_ROLE, idle_in_transaction_timeout_ms=50)
    conn = await connect(options)
    try:
        pid = conn.get_server_pid()
        await conn.execute("BEGIN")
        await conn.fetchval("SELECT pg_current_xact_id()")
        gone = False
        for _ in range(WAIT_STEPS):
            gone = not await monitor.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid
            )
            if gone:
                break
            await asyncio.sleep(WAIT_STEP)
        assert gone, "the server should end a session idle in its transaction"
    finally:
        conn.terminate()


async def test_the_feed_head_is_past_every_cursor_handed_out(
    store: EventStore, stream: str, monitor: asyncpg.Connection
) -> None:
    # A transaction still open holds the horizon back; the head lies past it and past every
    # event all the same, and moves on with every transaction that writes.
    async with monitor.transaction():
        await monitor.execute("SELECT pg_current_xact_id()")
        result = await store.append(stream, [NewEvent(type="test.head", data={"n": 1})])
        head = await store.feed_head()
        assert head is not None
        assert result.cursor <= head
        assert await store.horizon() <= head
        page = await store.read_all(result.cursor)
        assert page.next_cursor <= head
    after = await store.append(stream, [NewEvent(type="test.head", data={"n": 2})])
    later = await store.feed_head()
    assert later is not None
    assert head < after.cursor <= later
