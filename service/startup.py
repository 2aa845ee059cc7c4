"""What a long-running command checks before it serves: that it can listen on its port, and
that the database answers, waiting a bounded time for one that is still starting (a container
started beside it, a server being restarted) instead of dying on the first refused connection.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from events.connect import server_settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.settings import Settings

__all__ = ("DatabaseUnavailable", "PortUnavailable", "listen", "redacted", "wait_for_database")

# What a database that is starting, restarting or not reachable yet answers; anything else
# (no such database, a wrong password, a missing role) will not change by waiting.
_PASSING: Final = (
    OSError,
    TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)
_FIRST_DELAY_S: Final = 0.1
_MAX_DELAY_S: Final = 5.0
# One attempt may take this long (a host that drops packets never refuses).
_ATTEMPT_S: Final = 10.0


class DatabaseUnavailable(Exception):
    """The database did not answer within the wait, or answered with a refusal that waiting
    cannot change; the message names it (without its password) and why."""


class PortUnavailable(Exception):
    """The address to listen on is taken or cannot be bound."""


def redacted(url: str) -> str:
    """``url`` without its password, fit for a message or a log."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


async def wait_for_database(
    settings: Settings, *, on_first_failure: Callable[[str], None] | None = None
) -> None:
    """Return once the application's database accepts a connection (as the application's
    role), retrying with exponential backoff for up to ``settings.db_wait_s`` seconds.
    ``on_first_failure`` hears once why the first attempt failed, before the waiting starts."""
    options = settings.connection_options()
    where = redacted(options.dsn)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.db_wait_s
    delay = _FIRST_DELAY_S
    told = False
    while True:
        attempt = min(max(deadline - loop.time(), 1.0), _ATTEMPT_S)
        try:
            conn = await asyncpg.connect(
                options.dsn, server_settings=server_settings(options), timeout=attempt
            )
        except _PASSING as exc:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise DatabaseUnavailable(
                    f"no answer from {where} within {settings.db_wait_s:g} s "
                    f"(DIPLOFEED_DB_WAIT_S): {exc or type(exc).__name__}"
                ) from exc
            if on_first_failure is not None and not told:
                on_first_failure(
                    f"the database at {where} does not answer yet ({exc}); "
                    f"retrying for up to {remaining:.0f} s (DIPLOFEED_DB_WAIT_S)"
                )
                told = True
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, _MAX_DELAY_S)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise DatabaseUnavailable(f"{where}: {exc}") from exc
        else:
            await conn.close()
            return


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for the server to accept on (port 0: any free one),
    so that a taken port is known before anything else starts."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise PortUnavailable(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn does: a restart may bind while the last run's connections linger.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise PortUnavailable(f"cannot listen on {host}:{port}: {reason.lower()}") from exc
    sock.set_inheritable(True)
    return sock
