"""What one API process holds while it runs: the pool, the store, the command handler, the
feed hub, the key ring and (optionally) the projection runners. Built and torn down by the
app's lifespan, so each app (and each test's app) owns its own, on its own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from events.connect import connect, create_pool
from events.domain.handler import CommandHandler
from events.notify import FeedListener, Notifier
from events.store import EventStore
from projections.rebuild import LiveRunner
from service.fanout import FeedHub
from service.keys import KeyRing
from service.projectors import PROJECTIONS, LiveVersions

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from litestar import Litestar

    from service.settings import Settings

__all__ = ("Runtime", "lifespan", "open_store", "run_projections")

log = logging.getLogger(__name__)


def projection_runners(
    store: EventStore, settings: Settings, names: Iterable[str] | None = None
) -> dict[str, LiveRunner]:
    """One live runner per projection (each follows rebuilds of its projection)."""
    options = settings.connection_options()
    return {
        name: LiveRunner(store, PROJECTIONS[name], lambda: connect(options), name)
        for name in (names or PROJECTIONS)
    }


async def run_projections(settings: Settings, names: Iterable[str] | None = None) -> None:
    """Run the projections until cancelled (``diplofeed project``)."""
    async with open_store(settings) as store:
        runners = projection_runners(store, settings, names)
        await asyncio.gather(*(runner.run() for runner in runners.values()))


class Runtime:
    """The process's long-lived parts (see the module docstring)."""

    def __init__(self, settings: Settings, store: EventStore) -> None:
        self.settings = settings
        self.pool = store.pool
        self.store = store
        self.handler = CommandHandler(store)
        self.hub = FeedHub(store)
        self.keyring = KeyRing(store.pool)
        self.live = LiveVersions(store.pool)
        self.runners: list[LiveRunner] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start following the feed and, if configured, the projections."""
        await self.hub.start()
        if not self.settings.run_projections:
            return
        loop = asyncio.get_running_loop()
        for name, runner in projection_runners(self.store, self.settings).items():
            self.runners.append(runner)
            self._tasks.append(loop.create_task(runner.run(), name=f"projection:{name}"))

    async def close(self) -> None:
        """Stop everything this runtime started."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.hub.close()


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[EventStore]:
    """A store with its pool, feed listener and notifier, closed in reverse order."""
    options = settings.connection_options()
    pool = await create_pool(options)
    listener = FeedListener(lambda: connect(options))
    notifier = Notifier(pool)
    try:
        await listener.start()
        yield EventStore(pool, notifier=notifier, listener=listener)
    finally:
        await notifier.close()
        await listener.close()
        await pool.close()


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    """Build the runtime on start-up, on the server's own event loop, and close it at
    shutdown (in reverse order of construction)."""
    settings: Settings = app.state.settings
    async with open_store(settings) as store:
        runtime = Runtime(settings, store)
        await runtime.start()
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.close()
