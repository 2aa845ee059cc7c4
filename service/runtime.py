"""What one API process holds while it runs: the pool, the store, the command handler, the
feed hub, the key ring and (optionally) the projection runners. Built and torn down by the
app's lifespan, so each app (and each test's app) owns its own, on its own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from events.actor_refs import keep_actor_refs_indexed
from events.connect import connect, create_pool
from events.domain.handler import CommandHandler
from events.notify import FeedListener, Notifier
from events.records import START
from events.store import EventStore
from projections.collector import long_lived_collector
from projections.rebuild import LiveRunner
from projections.supervision import Supervised
from service.auth import FailureLimit
from service.fanout import FeedHub
from service.keys import KeyRing
from service.liveness import Liveness
from service.projectors import PROJECTIONS, LiveVersions

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine, Iterable

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


def supervise(runners: dict[str, LiveRunner]) -> dict[str, Supervised]:
    """Each runner's task, started again with backoff whenever it fails."""
    return {name: Supervised(f"projection {name}", r.run) for name, r in runners.items()}


def _actor_index(store: EventStore) -> Supervised:
    return Supervised("actor index", lambda: keep_actor_refs_indexed(store))


async def run_projections(settings: Settings, names: Iterable[str] | None = None) -> None:
    """Run the projections until cancelled (``diplofeed project``)."""
    async with open_store(settings) as store:
        runners = supervise(projection_runners(store, settings, names))
        work = [_actor_index(store), *runners.values()]
        with long_lived_collector():
            await asyncio.gather(*(w.run() for w in work))


class Runtime:
    """The process's long-lived parts (see the module docstring)."""

    def __init__(self, settings: Settings, store: EventStore) -> None:
        self.settings = settings
        self.pool = store.pool
        self.store = store
        # Under load the actor directory is re-read at most every 0.25 s, not per command; a
        # name it does not know yet is looked up again after a refresh.
        self.handler = CommandHandler(store, directory_max_age=0.25)
        self.hub = FeedHub(store)
        self.keyring = KeyRing(store.pool, ttl=settings.key_cache_s)
        self.auth_failures = FailureLimit(settings.auth_failures_per_minute)
        options = settings.connection_options()
        self.liveness = Liveness(lambda: connect(options))
        self.feed_head = START
        """The feed's head as last read (``service.requests.check_issued``): it only grows."""
        self.live = LiveVersions(store.pool)
        self.runners: dict[str, LiveRunner] = {}
        """This process's projection runners (none when another process runs them)."""
        self.supervisors: dict[str, Supervised] = {}
        self.projection_tasks: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Take the liveness lock, start following the feed and, if configured, the
        projections."""
        await self.liveness.start()
        await self.hub.start()
        if not self.settings.run_projections:
            return
        listener = self.store.listener
        if listener is not None and listener.standby:
            # A hot standby cannot write: its views are the primary's projections, replicated.
            log.warning("the database is a hot standby: the projections run on the primary only")
            return
        loop = asyncio.get_running_loop()
        # The process that runs the projections also keeps the feed's actor index current.
        self._tasks.append(loop.create_task(_actor_index(self.store).run(), name="actor index"))
        self.runners = projection_runners(self.store, self.settings)
        self.supervisors = supervise(self.runners)
        for name, supervisor in self.supervisors.items():
            task = loop.create_task(supervisor.run(), name=f"projection:{name}")
            self.projection_tasks[name] = task
            self._tasks.append(task)

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
        await self.liveness.close()


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
        # What start-up built lives as long as the process: out of the collector's sight.
        try:
            with long_lived_collector():
                yield
        finally:
            await runtime.close()
