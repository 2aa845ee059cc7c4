"""Wake-up hints for feed followers over LISTEN/NOTIFY.

Notifications are hints only: followers always re-read by cursor, and poll when the listening
connection is down, so a lost or duplicated notification costs latency, never an event.

The NOTIFY is sent after an append commits, not from inside the append's transaction: a
transaction that notifies takes a cluster-wide lock at commit and holds it through the commit's
WAL flush, which would serialise every append. ``Notifier`` coalesces pokes so a process sends
at most one NOTIFY per ``min_interval`` (10 ms), whatever its append rate, and sends it with
``synchronous_commit = off`` since a notification needs no durability.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Final

import asyncpg

from events.session import HeldSession

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ("FEED_CHANNEL", "FeedListener", "Notifier")

FEED_CHANNEL: Final = "diplofeed_events"
NOTIFY_SQL: Final = "SET LOCAL synchronous_commit = off; SELECT pg_notify('diplofeed_events', '')"
IN_RECOVERY_SQL: Final = "SELECT pg_is_in_recovery()"

log = logging.getLogger(__name__)

CONNECTION_ERRORS: Final = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    # "too many clients" / "too many connections for role": the server refusing a (re)connection
    # is transient; without this a refused reconnection ended the listener's task for good.
    asyncpg.TooManyConnectionsError,
    # A server shutting down sends each idle session a FATAL error before closing it; asyncpg
    # (0.32) cannot take an error while idle, puts the connection in an error state and only
    # marks it closed when the socket's EOF is processed. A query on it in between fails with
    # "cannot switch to state 12; another operation (2) is in progress". Found by the
    # restart drill: it answered 500, left the request's Idempotency-Key leased, and would end
    # any follower that met it. The connection is dead either way: retrying is the answer.
    asyncpg.InternalClientError,
)


class Notifier:
    """Sends one coalesced NOTIFY per burst of appends through ``pool``."""

    def __init__(self, pool: asyncpg.Pool, *, min_interval: float = 0.01) -> None:
        self._pool = pool
        self._min_interval = min_interval
        self._pending = False
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        """Ask for a notification soon; cheap and non-blocking."""
        self._pending = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        while self._pending:
            self._pending = False
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    await conn.execute(NOTIFY_SQL)
            except CONNECTION_ERRORS as exc:
                # Followers fall back to polling; nothing is lost.
                log.warning("feed notification not sent: %s", exc)
                return
            # One notification per interval at most: under a high append rate, sending one per
            # append cost a third of the store's throughput, and followers re-read everything
            # new on each wake-up anyway.
            await asyncio.sleep(self._min_interval)

    async def close(self) -> None:
        """Wait for an in-flight notification."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task


class FeedListener(HeldSession):
    """Keeps one dedicated LISTEN connection and wakes every subscribed follower.

    One connection per process serves any number of followers. When the connection drops it
    reconnects with backoff; meanwhile ``listening`` is false and followers poll. Releasing a
    pooled connection runs ``UNLISTEN *``, hence the dedicated connection.

    A hot standby refuses LISTEN (and never receives the primary's notifications anyway):
    there ``standby`` is true, followers poll, and the listener looks again every
    ``health_interval`` seconds, so a promoted standby starts listening by itself.
    """

    what = "feed listener (followers poll until it is back)"
    retry_on = CONNECTION_ERRORS

    def __init__(
        self, connect: Callable[[], Awaitable[asyncpg.Connection]], **options: float
    ) -> None:
        """``options``: how the connection is watched (``HeldSession``'s)."""
        super().__init__(connect, **options)
        self._waiters: set[asyncio.Event] = set()
        self.listening = False
        self.standby = False
        self.reconnects = 0

    async def _ready(self, conn: asyncpg.Connection) -> bool:
        self.standby = bool(await conn.fetchval(IN_RECOVERY_SQL))
        return not self.standby

    async def _up(self, conn: asyncpg.Connection) -> None:
        await conn.add_listener(FEED_CHANNEL, self._wake_all)
        self.listening = True
        # Anything committed while we were not listening: let followers re-read.
        self._wake_all()

    def _down(self) -> None:
        if self.listening:
            self.reconnects += 1
        self.listening = False
        self._wake_all()

    def subscribe(self) -> asyncio.Event:
        """An event that is set on every notification (and on every (re)connect)."""
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        return waiter

    def unsubscribe(self, waiter: asyncio.Event) -> None:
        """Stop waking ``waiter``."""
        self._waiters.discard(waiter)

    @property
    def subscribers(self) -> int:
        """How many followers are waiting on this listener."""
        return len(self._waiters)

    def _wake_all(self, *_: object) -> None:
        for waiter in self._waiters:
            waiter.set()
