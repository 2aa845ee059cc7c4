"""Group commit: concurrent appends share INSERT statements and commits.

Each append in a process would otherwise pay a statement, a transaction and a WAL flush of its
own. Here at most ``max_inflight`` flushes run at once; appends that arrive while every slot is
busy wait in a queue, and the next free slot takes them all as one batch. A lone writer is never
delayed (a slot is free, it flushes at once); under load, batches grow by themselves. This is
the scheme PostgreSQL uses for its own WAL flushes, applied one level up. No library provides it
for asyncpg, hence this module.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Hashable

__all__ = ("GroupCommit",)

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """Runs submitted items through ``flush`` in batches.

    ``key`` names what two items must not share while either is being flushed (a stream: the
    second item's versions depend on the first being committed); ``weight`` bounds a batch.
    ``flush`` returns one result per item, in order; if it raises, every item of the batch
    gets the exception.
    """

    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[list[R]]],
        *,
        key: Callable[[T], Hashable],
        weight: Callable[[T], int],
        max_inflight: int = 4,
        max_weight: int = 1_000,
    ) -> None:
        if max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        self._flush = flush
        self._key = key
        self._weight = weight
        self._max_inflight = max_inflight
        self._max_weight = max_weight
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._inflight = 0
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

    def _start_flushes(self) -> None:
        while self._queue and self._inflight < self._max_inflight:
            batch: list[tuple[T, asyncio.Future[R]]] = []
            keys: set[Hashable] = set()
            rest: list[tuple[T, asyncio.Future[R]]] = []
            weight = 0
            for entry in self._queue:
                item = entry[0]
                key = self._key(item)
                too_heavy = bool(batch) and weight + self._weight(item) > self._max_weight
                if key in keys or key in self._busy or too_heavy:
                    rest.append(entry)
                    continue
                keys.add(key)
                weight += self._weight(item)
                batch.append(entry)
            if not batch:
                return  # everything queued waits for a stream that is being flushed
            self._queue = rest
            self._busy |= keys
            self._inflight += 1
            task = asyncio.get_running_loop().create_task(self._run(batch, keys))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]], keys: set[Hashable]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
        finally:
            self._inflight -= 1
            self._busy -= keys
            self._start_flushes()
