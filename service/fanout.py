"""One feed follower per process, fanned out to every live-stream subscriber and long poll.

Two hundred SSE clients each following the feed would cost two hundred queries per event;
instead one task follows the whole feed into a bounded window of recent events, and each
subscriber reads that window from its own cursor and filters in process
(``FeedFilter.matches``, the same filter the database applies). A subscriber whose cursor lies
before the window (a resume from long ago, a slow reader the window outran) catches up from
the database page by page and then joins the window: both present the feed's one total order,
so the hand-over neither skips nor repeats an event. Litestar's channels plugin fans out
messages but knows no cursors, so it could not do this hand-over; hence this module.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from typing import TYPE_CHECKING, Final

from events.follow import follow_pages
from events.records import START, Cursor, FeedFilter, RecordedEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from events.store import EventStore

__all__ = ("CHUNK", "FeedHub")

log = logging.getLogger(__name__)

_CATCH_UP_PAGE: Final = 500
CHUNK: Final = 200
"""The most events a subscriber is handed at once (a live stream writes them in one send)."""


class FeedHub:
    """Follows the feed and serves subscribers from a window of ``capacity`` recent events."""

    def __init__(self, store: EventStore, *, capacity: int = 20_000) -> None:
        self._store = store
        self._capacity = capacity
        self._events: list[RecordedEvent] = []
        self._cursors: list[Cursor] = []
        self._start = START
        """Every event after this cursor is in the window (once the hub runs)."""
        self._end = START
        """The last event the hub has seen."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.subscribers = 0
        self.latest_by_category: dict[str, Cursor] = {}
        """The newest event of each category seen since ``began``."""
        self.began = START
        """Where the hub started following (the feed's horizon then)."""
        """The newest event seen per stream category (for views' staleness)."""

    async def start(self) -> None:
        """Start following from the feed's current end."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop following; subscribers see the end of their streams at their next wait."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def end(self) -> Cursor:
        """The newest event the hub has seen (``START`` before any)."""
        return self._end

    async def _run(self) -> None:
        while True:
            try:
                start = await self._store.horizon()
                break
            except Exception as exc:  # noqa: BLE001 (an outage at start-up is waited out)
                log.warning("feed hub cannot start yet: %s", exc)
                await asyncio.sleep(1.0)
        self._start = self._end = self.began = start
        self._ready.set()
        while True:
            try:
                async for page in follow_pages(self._store, self._end):
                    self._add(page.events)
            except Exception:
                # follow_pages waits out the connection errors it knows; anything else used to
                # end this task, and with it every live stream and long poll of the process,
                # silently (they kept sending heartbeats and never another event). Resuming
                # after the last event seen neither skips nor repeats one.
                log.exception("feed hub follower failed; resuming after its last event")
                await asyncio.sleep(1.0)

    def _add(self, events: list[RecordedEvent]) -> None:
        for event in events:
            self._events.append(event)
            self._cursors.append(event.cursor)
            self.latest_by_category[event.stream_id.split("-", 1)[0]] = event.cursor
        self._end = self._cursors[-1]
        if len(self._events) > 2 * self._capacity:
            drop = len(self._events) - self._capacity
            self._start = self._cursors[drop - 1]
            del self._events[:drop]
            del self._cursors[:drop]
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    async def wait_beyond(self, cursor: Cursor, within: float) -> bool:
        """Wait at most ``within`` seconds for an event after ``cursor``; whether one came."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self._end <= cursor:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            wake = self._wake
            # Not wait_for, which on Python 3.11 can swallow a cancellation (events.follow).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await wake.wait()
        return True

    async def subscribe(
        self,
        after: Cursor,
        *,
        filter: FeedFilter | None = None,
        heartbeat: float = 15.0,
        chunk: int = CHUNK,
    ) -> AsyncIterator[list[RecordedEvent]]:
        """Every event after ``after`` that ``filter`` admits, forever, at most ``chunk`` at a
        time; an empty chunk after each ``heartbeat`` seconds without one (a cue to send a
        keep-alive).

        The event loop gets a turn before every chunk. A subscriber far behind is otherwise
        handed its whole backlog without a pause: the server then never sees that its client
        left (and writes the rest into the closed socket, logging each write), and answers no
        other request meanwhile.
        """
        self.subscribers += 1
        try:
            await self._ready.wait()
            cursor = after
            while True:
                await asyncio.sleep(0)
                if cursor < self._start:
                    page = await self._store.read_all(cursor, limit=_CATCH_UP_PAGE, filter=filter)
                    for first in range(0, len(page.events), chunk):
                        yield page.events[first : first + chunk]
                        await asyncio.sleep(0)
                    cursor = page.next_cursor
                    continue
                # The window may have been trimmed since the last chunk: find the cursor again.
                index = bisect.bisect_right(self._cursors, cursor)
                window = self._events[index : index + chunk]
                if window:
                    cursor = max(cursor, window[-1].cursor)
                    matching = [e for e in window if filter is None or filter.matches(e)]
                    if matching:
                        yield matching
                    continue
                if not await self.wait_beyond(cursor, heartbeat):
                    yield []
        finally:
            self.subscribers -= 1
