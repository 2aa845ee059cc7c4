"""Rebuilding a projection without downtime, and running whichever version is live.

A rebuild builds version N+1 into its own tables with its own checkpoint while version N keeps
serving reads and keeping up. Once N+1 has caught up with the feed, one transaction moves the
``projection_live`` pointer (guarded: only from N), so readers switch from one complete view to
the other with no moment in between. N's tables are dropped ``retire_after`` seconds later:
an API process keeps using the version it looked up for a moment (``LiveVersions``), and a
request that chose N may still be waiting to read its writes; ``DROP TABLE`` itself waits for
queries still reading them. Marten calls this blue/green projection versions; no Python library
offers it, hence this module.

N+1 is built as the application role when the rebuild's login may become it, and its tables
are granted to that role before the switch otherwise (``projections.privileges``): a rebuild
run by the schema owner once left tables the API could not read, and every view answered 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Final

import asyncpg
import msgspec

from events.notify import CONNECTION_ERRORS
from projections.privileges import assume_app_role, grant_to_app_role
from projections.runner import ProjectionRunner, checkpoint_of, projection_lag

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from events.records import Cursor
    from events.store import EventStore
    from projections.runner import Projection
    from projections.supervision import Backoff

__all__ = ("LiveRunner", "RebuildReport", "live_version", "rebuild")

log = logging.getLogger(__name__)

LIVE_SQL: Final = "SELECT version FROM projection_live WHERE name = $1"
SWITCH_SQL: Final = """
INSERT INTO projection_live AS live (name, version) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET version = excluded.version, switched_at = now()
WHERE live.version IS NOT DISTINCT FROM $3
"""


class RebuildReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a rebuild did."""

    name: str
    old_version: int
    new_version: int
    events: int
    seconds: float


async def live_version(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> int | None:
    """The version of ``name`` that serves reads; ``None`` before the first rebuild, when
    version 1 serves."""
    version: int | None = await conn.fetchval(LIVE_SQL, name)
    return version


async def rebuild(
    store: EventStore,
    make: Callable[[int], Projection],
    connect: Callable[[], Awaitable[asyncpg.Connection]],
    name: str,
    *,
    batch_size: int = 5_000,
    poll: float = 0.2,
    retire_after: float = 10.0,
    on_progress: Callable[[int], None] | None = None,
) -> RebuildReport:
    """Build the next version of projection ``name`` beside the live one and switch to it;
    drop the old one ``retire_after`` seconds later (meanwhile the new one keeps up here).

    Raises:
        RuntimeError: another rebuild switched the pointer first.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    conn = await connect()
    try:
        pointer = await live_version(conn, name)
        old = pointer or 1  # before any rebuild, version 1 serves
        new = make(old + 1)

        async def connect_as_app() -> asyncpg.Connection:
            built = await connect()
            try:
                await assume_app_role(built)
            except BaseException:
                built.terminate()
                raise
            return built

        runner = ProjectionRunner(store, new, connect_as_app, batch_size=batch_size)
        task = loop.create_task(runner.run())
        try:
            await _catch_up(store, conn, runner, task, poll=poll, on_progress=on_progress)
            await grant_to_app_role(conn)
            status = await conn.execute(SWITCH_SQL, name, new.version, pointer)
            if status not in {"INSERT 0 1", "UPDATE 1"}:
                raise RuntimeError(f"projection {name!r} was switched by someone else meanwhile")
            await asyncio.sleep(retire_after)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await make(old).drop(conn)
        return RebuildReport(
            name=name,
            old_version=old,
            new_version=new.version,
            events=runner.applied,
            seconds=loop.time() - started,
        )
    finally:
        await conn.close()


async def _catch_up(
    store: EventStore,
    conn: asyncpg.Connection,
    runner: ProjectionRunner,
    task: asyncio.Task[None],
    *,
    poll: float,
    on_progress: Callable[[int], None] | None,
) -> None:
    """Return once ``runner``'s projection has applied the whole feed, or (under a steady
    stream of writes the feed's end moves on between any two looks) everything the feed held
    when it was first less than a batch behind."""
    projection = runner.projection
    target: Cursor | None = None
    while True:
        if task.done():
            task.result()  # surfaces the runner's failure
        if runner.held is not None:
            held = runner.held
            raise RuntimeError(
                f"projection {projection.name!r} v{projection.version} cannot apply event "
                f"{held.event_id} ({held.type}): {held.error}; once the fault is fixed, "
                f"`diplofeed quarantine release {projection.name}` and run the rebuild again "
                "(or release it with --skip to build the new version without it)"
            )
        if on_progress is not None:
            on_progress(runner.applied)
        if runner.active:
            lag = await projection_lag(conn, projection)
            if lag.events == 0:
                return
            if target is None:
                if lag.events < runner.batch_size:
                    target = await store.horizon()
            elif (await checkpoint_of(conn, projection.name, projection.version))[0] >= target:
                return
        await asyncio.sleep(poll)


class LiveRunner:
    """Keeps the live version of a projection up to date, following rebuilds: when the live
    pointer moves, it stops the old version's runner and runs the new one. A runner that ended
    all the same (it should not: it starts itself again after any failure) is started again."""

    def __init__(
        self,
        store: EventStore,
        make: Callable[[int], Projection],
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        name: str,
        *,
        batch_size: int = 1_000,
        check_interval: float = 1.0,
        backoff: Backoff | None = None,
        poison_after: int = 3,
    ) -> None:
        self._store = store
        self._make = make
        self._connect = connect
        self._name = name
        self._batch_size = batch_size
        self._check_interval = check_interval
        self._backoff = backoff
        self._poison_after = poison_after
        self.runner: ProjectionRunner | None = None

    async def run(self) -> None:
        """Run until cancelled. Database outages are waited out: the pointer is checked on a
        connection of its own, which is reopened whenever it fails, while the runner of the
        version already running reconnects by itself and keeps going."""
        conn: asyncpg.Connection | None = None
        task: asyncio.Task[None] | None = None
        running: int | None = None
        try:
            while True:
                try:
                    if conn is None:
                        conn = await self._connect()
                    version = await live_version(conn, self._name) or 1
                except (*CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
                    # Before, the first failure here (a database restart, or the database
                    # being down when the process started) ended this task for good and
                    # stopped the live version's runner with it: the view fell behind for
                    # ever while the API went on serving it.
                    log.warning("projection %s: live pointer unreadable (%s)", self._name, exc)
                    if conn is not None:
                        conn.terminate()
                        conn = None
                    await asyncio.sleep(self._check_interval)
                    continue
                if task is not None and task.done():
                    await _stop(task)
                    running = None
                if version != running:
                    if task is not None:
                        await _stop(task)
                    self.runner = ProjectionRunner(
                        self._store,
                        self._make(version),
                        self._connect,
                        batch_size=self._batch_size,
                        backoff=self._backoff,
                        poison_after=self._poison_after,
                    )
                    task = asyncio.get_running_loop().create_task(self.runner.run())
                    running = version
                    log.info("projection %s: running version %s", self._name, version)
                await asyncio.sleep(self._check_interval)
        finally:
            if task is not None:
                await _stop(task)
            if conn is not None:
                with contextlib.suppress(*CONNECTION_ERRORS):
                    await conn.close()


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:
        # The old version's runner may have failed on its dropped tables: it is done either way.
        log.exception("projection runner stopped with an error")
