"""Finds a real PostgreSQL for the test run, in the documented order.

1. ``TEST_DATABASE_URL``: a server the run may create databases on.
2. testcontainers' ``PostgresContainer`` when a Docker engine answers.
3. An embedded server from ``pgserver`` in a temporary folder.

Whichever it is, the run creates its own database there and drops it at the end.
"""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
import uuid
import warnings
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from events.migrate import migrate

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def _docker_answers() -> bool:
    # The probe's own noise (an unclosed socket when no engine listens, platform warnings) is
    # not the test run's concern: the suite turns warnings into errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import docker  # noqa: PLC0415 (optional: only needed when probing for an engine)

            client = docker.from_env(timeout=3)
        except Exception:  # noqa: BLE001 (any failure means "no engine", and we fall through)
            return False
        try:
            client.ping()
        except Exception:  # noqa: BLE001
            return False
        finally:
            client.close()
            gc.collect()
    return True


@contextlib.contextmanager
def postgres_server() -> Iterator[tuple[str, str]]:
    """Yield (server URL to administer, how it was found)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url, "TEST_DATABASE_URL"
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer  # noqa: PLC0415

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url(), "testcontainers"
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="diplofeed-pg-") as folder:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(folder, cleanup_mode="stop")  # type: ignore[attr-defined]
        try:
            yield server.get_uri(), "pgserver"
        finally:
            server.cleanup()


def fresh_database_name() -> str:
    """A database name no other run uses."""
    return f"diplofeed_test_{uuid.uuid4().hex[:12]}"


@contextlib.asynccontextmanager
async def scratch_database(server_url: str, *, migrated: bool) -> AsyncIterator[str]:
    """A database of its own on the server (migrated, as its owner, if asked); dropped after."""
    name = fresh_database_name()
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = with_database(server_url, name)
    try:
        if migrated:
            conn = await asyncpg.connect(dsn)
            try:
                await migrate(conn)
            finally:
                await conn.close()
        yield dsn
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
