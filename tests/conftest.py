"""Fixtures: one real PostgreSQL database per test run, migrated, dropped at the end."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import asyncpg
import pytest

from events import APP_ROLE, ConnectionOptions, EventStore, FeedListener, Notifier
from events.connect import connect, create_pool
from events.store import INDEX_ACTOR_REFS_SQL
from tests.api_server import ApiServer, running_api
from tests.database import postgres_server, scratch_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """An administrator's URL of the server the run uses."""
    with postgres_server() as (url, _how):
        yield url


@pytest.fixture(scope="session")
async def owner_dsn(server_url: str) -> AsyncIterator[str]:
    """The run's own database, migrated, as its owner."""
    async with scratch_database(server_url, migrated=True) as dsn:
        yield dsn


@pytest.fixture
async def own_dsn(server_url: str) -> AsyncIterator[str]:
    """A migrated database of this test's own (for tests that tamper); dropped afterwards."""
    async with scratch_database(server_url, migrated=True) as dsn:
        yield dsn


@pytest.fixture
async def empty_dsn(server_url: str) -> AsyncIterator[str]:
    """A database of this test's own, with nothing in it; dropped afterwards."""
    async with scratch_database(server_url, migrated=False) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def app_options(owner_dsn: str) -> ConnectionOptions:
    """How the application connects: as the SELECT/INSERT-only role."""
    return ConnectionOptions(
        dsn=owner_dsn,
        role=APP_ROLE,
        statement_timeout_ms=20_000,
        idle_in_transaction_timeout_ms=20_000,
        min_pool_size=2,
        max_pool_size=20,
    )


@pytest.fixture(scope="session")
async def pool(app_options: ConnectionOptions) -> AsyncIterator[asyncpg.Pool]:
    """The application's pool."""
    pool = await create_pool(app_options)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def listener(app_options: ConnectionOptions) -> AsyncIterator[FeedListener]:
    """The process's feed listener."""
    listener = FeedListener(lambda: connect(app_options), health_interval=1.0)
    await listener.start()
    yield listener
    await listener.close()


@pytest.fixture(scope="session")
async def store(pool: asyncpg.Pool, listener: FeedListener) -> AsyncIterator[EventStore]:
    """The event store as the application uses it."""
    notifier = Notifier(pool)
    yield EventStore(pool, notifier=notifier, listener=listener, poll_interval=0.2)
    await notifier.close()


@pytest.fixture
def stream() -> str:
    """A stream id no other test uses."""
    return f"test-{uuid.uuid4().hex}"


# A log of some size for plan tests: interactions between 2,000 actors, a few of them in most
# events (skewed like real coverage), with prose, places and dates beside the ids, recorded a
# second apart.
LARGE_LOG_ROWS = 100_000
_LARGE_LOG_SQL = """
INSERT INTO events (stream_id, stream_version, event_id, type, schema_version, data, metadata,
                    recorded_at, hash)
SELECT 'interaction-' || g, 1, gen_random_uuid(), 'interaction.reported.v1', 1,
       jsonb_build_object(
           'interaction_id', 'i' || g,
           'participants', jsonb_build_array(
               jsonb_build_object('actor_id', 'a' || floor(power(random(), 4) * 2000)::int,
                                  'role', 'host'),
               jsonb_build_object('actor_id', 'a' || floor(power(random(), 4) * 2000)::int,
                                  'role', 'guest')),
           'valid_time', jsonb_build_object('lower', '2024-02-28', 'upper', '2024-02-29'),
           'place', 'Moscow',
           'sources', jsonb_build_array(jsonb_build_object(
               'url', 'https://example.org/' || g, 'quote', 'Said on day ' || g))),
       '{}', now() - make_interval(secs => $1 - g), sha256(int8send(g))
FROM generate_series(1, $1::bigint) AS g
"""


@pytest.fixture(scope="session")
async def large_log_dsn(server_url: str) -> AsyncIterator[str]:
    """A migrated database of its own holding ``LARGE_LOG_ROWS`` events, analysed (read only:
    for plan tests)."""
    async with scratch_database(server_url, migrated=True) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(_LARGE_LOG_SQL, LARGE_LOG_ROWS)
            # What the first actor-filtered read would do: index the log for the actor filter.
            await conn.execute(INDEX_ACTOR_REFS_SQL, LARGE_LOG_ROWS)
            await conn.execute("VACUUM ANALYZE events, event_actor_refs")
        finally:
            await conn.close()
        yield dsn


@pytest.fixture(scope="session")
async def api(server_url: str) -> AsyncIterator[ApiServer]:
    """The real API over a database of its own (so the seed can be entered over HTTP)."""
    async with (
        scratch_database(server_url, migrated=True) as dsn,
        running_api(dsn) as server,
    ):
        yield server
