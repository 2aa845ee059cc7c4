"""Following the feed: an async iterator woken by notifications, falling back to polling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from events.notify import CONNECTION_ERRORS
from events.records import START, Cursor, FeedFilter, FeedPage, RecordedEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from events.store import EventStore

__all__ = ("follow_feed", "follow_pages")

log = logging.getLogger(__name__)


async def follow_pages(
    store: EventStore,
    after: Cursor = START,
    *,
    filter: FeedFilter | None = None,
    batch_size: int = 1_000,
) -> AsyncIterator[FeedPage]:
    """Yield every non-empty page of the feed after ``after``, then wait for more, forever.

    Woken by the store's listener when there is one (the notification is only a hint: it
    always re-reads by cursor); polls otherwise, and while the listener is down. Database
    outages are waited out with backoff.
    """
    listener = store.listener
    wake = listener.subscribe() if listener is not None else asyncio.Event()
    cursor = after
    backoff = store.poll_interval
    try:
        while True:
            # Cleared before reading: a notification that arrives during the read is kept.
            wake.clear()
            try:
                page = await store.read_all(cursor, limit=batch_size, filter=filter)
            except CONNECTION_ERRORS as exc:
                log.warning("feed read failed (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = store.poll_interval
            if page.events:
                yield page
            cursor = page.next_cursor
            if page.full:
                continue
            listening = listener is not None and listener.listening
            timeout = store.idle_poll_interval if listening else store.poll_interval
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that arrives as the wake-up does, and the follower then never stopped (a
            # rebuild waited for ever on its runner).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await wake.wait()
    finally:
        if listener is not None:
            listener.unsubscribe(wake)


async def follow_feed(
    store: EventStore,
    after: Cursor = START,
    *,
    filter: FeedFilter | None = None,
    batch_size: int = 1_000,
) -> AsyncIterator[RecordedEvent]:
    """See ``EventStore.follow``: ``follow_pages``, one event at a time."""
    async for page in follow_pages(store, after, filter=filter, batch_size=batch_size):
        for event in page.events:
            yield event
