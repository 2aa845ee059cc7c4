"""Connections for the application, with the guards the feed's horizon relies on."""

from __future__ import annotations

from typing import Final

import asyncpg
import msgspec

__all__ = ("ConnectionOptions", "connect", "create_pool", "server_settings")

APP_ROLE: Final = "diplofeed_app"
"""The role migrations grant SELECT and INSERT on the event log (and nothing else)."""


class ConnectionOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How the application connects. Built by the service's settings, never from the
    environment here."""

    dsn: str
    role: str | None = None
    """Run as this role (``SET ROLE`` at connection start), e.g. ``diplofeed_app``."""
    statement_timeout_ms: int = 30_000
    """No statement runs longer; a stuck one cannot hold the feed's horizon for long."""
    idle_in_transaction_timeout_ms: int = 10_000
    """A transaction left open while idle is ended; it would hold the horizon back."""
    min_pool_size: int = 2
    max_pool_size: int = 10
    application_name: str = "diplofeed"


def server_settings(options: ConnectionOptions) -> dict[str, str]:
    """Session settings sent with the startup packet, so they cost no round trip."""
    settings = {
        "statement_timeout": str(options.statement_timeout_ms),
        "idle_in_transaction_session_timeout": str(options.idle_in_transaction_timeout_ms),
        "application_name": options.application_name,
        # Every statement here is short; JIT compiling one costs more than it saves, and a
        # misestimate once made feed pages pay for it.
        "jit": "off",
    }
    if options.role:
        settings["role"] = options.role
    return settings


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Release a pooled connection without a reset query.

    asyncpg's default reset runs ``RESET ALL; UNLISTEN *; CLOSE ALL; ...`` on every release:
    one more round trip per append, which halved append throughput in bench/event_store.py.
    Nothing in Diplofeed leaves session state on a pooled connection (LISTEN and advisory
    locks use dedicated connections; settings are per transaction), and asyncpg still rolls
    back any transaction left open before this runs.
    """


async def create_pool(options: ConnectionOptions) -> asyncpg.Pool:
    """A pool whose every connection carries the guards."""
    pool = await asyncpg.create_pool(
        options.dsn,
        min_size=options.min_pool_size,
        max_size=options.max_pool_size,
        server_settings=server_settings(options),
        reset=_keep_session,
    )
    assert pool is not None  # noqa: S101 (create_pool only returns None when not awaited)
    return pool


async def connect(options: ConnectionOptions) -> asyncpg.Connection:
    """A single guarded connection (the feed listener's, or a command-line tool's)."""
    return await asyncpg.connect(options.dsn, server_settings=server_settings(options))
