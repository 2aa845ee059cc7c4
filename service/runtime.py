"""What one API process holds while it runs: the pool, the store, the command handler, the
feed hub, the key ring and (optionally) the projection runners. Built and torn down by the
app's lifespan, so each app (and each test's app) owns its own, on its own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from events.connect import connect, create_pool
from events.domain.handler import CommandHandler
from events.notify import FeedListener, Notifier
from events.store import EventStore
from projections.rebuild import LiveRunner
from service.fanout import FeedHub
from service.keys import KeyRing
from service.projectors import PROJECTIONS, LiveVersions

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine

    import asyncpg
    from litestar import Litestar

    from service.settings import Settings

__all__ = ("Runtime", "lifespan")

log = logging.getLogger(__name__)


class Runtime:
    """The process's long-lived parts (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        store: EventStore,
        listener: FeedListener,
        notifier: Notifier,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.store = store
        self.listener = listener
        self.notifier = notifier
        self.handler = CommandHandler(store)
        self.hub = FeedHub(store)
        self.keyring = KeyRing(pool)
        self.live = LiveVersions(pool)
        self.runners: list[LiveRunner] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start following the feed and, if configured, the projections."""
        await self.hub.start()
        if not self.settings.run_projections:
            return
        options = self.settings.connection_options()
        loop = asyncio.get_running_loop()
        for name, make in PROJECTIONS.items():
            runner = LiveRunner(self.store, make, lambda: connect(options), name)
            self.runners.append(runner)
            self._tasks.append(loop.create_task(runner.run(), name=f"projection:{name}"))

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background (a request's clean-up that outlives it); cancelled
        at shutdown."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Stop everything this runtime started."""
        tasks = [*self._tasks, *self._background]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.hub.close()


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    """Build the runtime on start-up, on the server's own event loop, and close it at
    shutdown (in reverse order of construction)."""
    settings: Settings = app.state.settings
    options = settings.connection_options()
    pool = await create_pool(options)
    listener = FeedListener(lambda: connect(options))
    notifier = Notifier(pool)
    try:
        await listener.start()
        store = EventStore(pool, notifier=notifier, listener=listener)
        runtime = Runtime(settings, pool, store, listener, notifier)
        await runtime.start()
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.close()
    finally:
        await notifier.close()
        await listener.close()
        await pool.close()
