"""A connection of a process's own, kept open for as long as the process needs it.

What lives in a session rather than in a transaction (a LISTEN, a session advisory lock) cannot
go on a pooled connection: it would follow the connection to its next borrower, and releasing
pooled connections skips the reset query (``events.connect``). Such a session is held here: it
reconnects with backoff whenever the connection drops, and it is watched, since a half-open TCP
connection never reports its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, ClassVar, Final

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import asyncpg

__all__ = ("HeldSession",)

PING_SQL: Final = "SELECT 1"

log = logging.getLogger(__name__)


class HeldSession:
    """Holds one dedicated session in the background: ``_up`` sets it up on every new
    connection, ``_down`` hears that it is gone (subclasses say what the session is for)."""

    what: ClassVar[str] = "dedicated session"
    """What the session is for, in log lines."""
    retry_on: ClassVar[tuple[type[BaseException], ...]] = (OSError,)
    """The errors that mean the connection is gone (not a bug): reconnect on them."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        *,
        health_interval: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        self._connect = connect
        self._health_interval = health_interval
        self._max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None

    async def _ready(self, conn: asyncpg.Connection) -> bool:
        """Whether the session can be set up on this connection now (else it is asked again
        every ``health_interval`` seconds, the connection kept)."""
        return True

    async def _up(self, conn: asyncpg.Connection) -> None:
        """Set the session up on a new connection."""

    def _down(self) -> None:
        """The session is gone (the connection dropped, or the holder is closing)."""

    async def start(self) -> None:
        """Start holding the session; returns once the first attempt is over."""
        first = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._hold(first), name=self.what)
        await first.wait()

    async def close(self) -> None:
        """Stop holding the session (closing its connection)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _hold(self, first: asyncio.Event) -> None:
        backoff = 0.1
        while True:
            conn: asyncpg.Connection | None = None
            lost = asyncio.Event()
            try:
                conn = await self._connect()
                conn.add_termination_listener(lambda *_, lost=lost: lost.set())
                while not await self._ready(conn):
                    first.set()
                    await asyncio.sleep(self._health_interval)
                await self._up(conn)
                backoff = 0.1
                first.set()
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), self._health_interval)
                    if not lost.is_set():
                        # A half-open TCP connection never fires the termination listener.
                        await asyncio.wait_for(conn.fetchval(PING_SQL), self._health_interval)
            except self.retry_on as exc:
                log.warning("%s: connection lost (%s); reconnecting", self.what, exc)
            finally:
                self._down()
                first.set()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)
