"""Group commit: concurrent appends share INSERT statements and commits.

Each append in a process would otherwise pay a statement, a transaction and a WAL flush of its
own. Here at most ``max_inflight`` flushes run at once; appends that arrive while every slot is
busy wait in a queue, and the next free slot takes them as one batch. A lone writer is delayed
by one turn of the event loop at most; under load, batches grow by themselves. This is the
scheme PostgreSQL uses for its own WAL flushes, applied one level up. A slot takes its batch
one turn after it is started (or after its last flush), so that writers woken together submit
together; while other slots are free it leaves them a fair share of the queue, so that the
database runs the work on several backends at once.

A slot keeps the session it opened (for the store, a pooled connection) for as long as the
queue holds work for it: borrowing a connection from an asyncpg pool costs about as much client
CPU as the statement itself, so a busy slot borrows once per burst, not once per batch. No
library provides any of this for asyncpg, hence this module.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Hashable
    from contextlib import AbstractAsyncContextManager

__all__ = ("GroupCommit",)

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[S, T, R]):
    """Runs submitted items through ``flush`` in batches.

    ``session`` opens what a slot flushes through (kept while the slot has work); ``key`` names
    what two items must not share while either is being flushed (a stream: the second item's
    versions depend on the first being committed); ``weight`` bounds a batch. ``flush``
    returns one result per item, in order; if it raises, every item of the batch gets the
    exception and the slot gives its session back.
    """

    def __init__(
        self,
        flush: Callable[[S, list[T]], Awaitable[list[R]]],
        *,
        session: Callable[[], AbstractAsyncContextManager[S]],
        key: Callable[[T], Hashable],
        weight: Callable[[T], int],
        max_inflight: int = 4,
        max_weight: int = 1_000,
        min_share: int = 10,
    ) -> None:
        if max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        self._flush = flush
        self._session = session
        self._key = key
        self._weight = weight
        self._max_inflight = max_inflight
        self._max_weight = max_weight
        self._min_share = min_share
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._inflight = 0
        self._collecting = False
        self._busy: set[Hashable] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """Flush ``item``, alone or with others, and return its result."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        # Marks an exception as seen even when the caller has stopped waiting.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._queue.append((item, future))
        self._start_flushes()
        # A caller that stops waiting cancels only its future: once queued, the item is still
        # flushed, exactly as a statement already sent would be.
        return await future

    def _take_batch(self) -> tuple[list[tuple[T, asyncio.Future[R]]], set[Hashable]]:
        """The next batch from the queue (empty if everything queued waits for a stream that
        is being flushed), its keys marked busy."""
        batch: list[tuple[T, asyncio.Future[R]]] = []
        keys: set[Hashable] = set()
        rest: list[tuple[T, asyncio.Future[R]]] = []
        limit = self._max_weight
        idle = self._max_inflight - self._inflight
        if idle > 0 and len(self._queue) > 1:
            # Slots are free: leave them a fair share, so that the database runs the work on
            # as many backends (and cores) as it may, while this batch is being sent.
            queued = sum(self._weight(item) for item, _ in self._queue)
            limit = min(limit, max(-(-queued // (idle + 1)), self._min_share))
        weight = 0
        for entry in self._queue:
            item = entry[0]
            key = self._key(item)
            item_weight = self._weight(item)
            too_heavy = bool(batch) and weight + item_weight > limit
            if key in keys or key in self._busy or too_heavy:
                rest.append(entry)
                continue
            keys.add(key)
            weight += item_weight
            batch.append(entry)
        if batch:
            self._queue = rest
            self._busy |= keys
        return batch, keys

    def _start_flushes(self) -> None:
        # One slot at a time collects: it takes its batch when it next runs, so that every
        # writer woken in the same turn of the event loop (by the results of a flush) has
        # submitted by then and shares the batch. Taking the batch at once split those
        # writers into a batch of one straggler and a batch of the rest, each paying a full
        # statement and commit.
        if self._queue and not self._collecting and self._inflight < self._max_inflight:
            self._collecting = True
            self._inflight += 1
            task = asyncio.get_running_loop().create_task(self._slot())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _slot(self) -> None:
        collecting = restart = True
        batch: list[tuple[T, asyncio.Future[R]]] = []
        keys: set[Hashable] = set()
        try:
            async with self._session() as session:
                while True:
                    batch, keys = self._take_batch()
                    self._collecting = collecting = False
                    if not batch:
                        return
                    if self._queue:
                        self._start_flushes()  # what this batch could not take
                    if not await self._run(session, batch, keys):
                        return
                    if self._collecting:
                        return  # another slot takes what comes next
                    self._collecting = collecting = True
                    # One turn of the loop: the writers this flush has just woken submit.
                    await asyncio.sleep(0)
        except BaseException as exc:
            if collecting:
                # The session did not open (the database is down, say): what this slot
                # was to take fails now rather than wait for a session that may not come.
                self._collecting = False
                batch, keys = self._take_batch()
                # Only items waiting for busy streams remain: their streams' slots take them.
                restart = bool(batch)
            self._fail(batch, keys, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._inflight -= 1
            if restart:
                self._start_flushes()

    async def _run(
        self, session: S, batch: list[tuple[T, asyncio.Future[R]]], keys: set[Hashable]
    ) -> bool:
        """Flush one batch; ``False`` if it failed (the session may be broken)."""
        try:
            results = await self._flush(session, [item for item, _ in batch])
        except BaseException as exc:
            self._fail(batch, keys, exc)
            if not isinstance(exc, Exception):
                raise
            return False
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
        self._busy -= keys
        return True

    def _fail(
        self, batch: list[tuple[T, asyncio.Future[R]]], keys: set[Hashable], exc: BaseException
    ) -> None:
        # Idempotent: a batch failed by ``_run`` may be failed again by its slot.
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)
        self._busy -= keys
