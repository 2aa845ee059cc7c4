"""Views as they were known at a past moment, computed from the log.

A view "as of" a feed cursor (or a recorded time) is the projection applied to exactly the
events up to that point. Rather than keep a second implementation of each view for the past,
this builds the projection into throw-away tables inside a transaction, queries them with the
very queries the live view uses, and rolls the transaction back: what the live view showed at
that cursor and what this returns are the same computation on the same events. The roster has
a pure fold cheap enough to run in memory (``projections.roster.roster_as_of``); this serves
the views that need SQL, such as the contact history.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, cast

from events.records import START, Cursor, RecordedEvent
from projections.contacts import ContactsProjection, HistoryEntry, contact_history

if TYPE_CHECKING:
    from datetime import datetime

    import asyncpg

    from events.store import EventStore

__all__ = ("contact_history_as_of", "events_until")

_PAGE = 5_000


async def events_until(
    store: EventStore,
    projection: ContactsProjection,
    *,
    cursor: Cursor | None = None,
    recorded_at: datetime | None = None,
) -> list[list[RecordedEvent]]:
    """The projection's events in feed order, in pages, up to ``cursor`` (inclusive) or up to
    those recorded at or before ``recorded_at``."""

    def wanted(event: RecordedEvent) -> bool:
        if cursor is not None and event.cursor > cursor:
            return False
        return recorded_at is None or event.recorded_at <= recorded_at

    pages: list[list[RecordedEvent]] = []
    after = START
    while True:
        page = await store.read_all(after, limit=_PAGE, filter=projection.filter)
        kept = [e for e in page.events if wanted(e)]
        if kept:
            pages.append(kept)
        past_cursor = cursor is not None and bool(page.events) and page.events[-1].cursor > cursor
        if past_cursor or not page.full:
            return pages
        after = page.next_cursor


async def contact_history_as_of(
    store: EventStore,
    actor_id: str,
    *,
    cursor: Cursor | None = None,
    recorded_at: datetime | None = None,
    **filters: Any,
) -> list[HistoryEntry]:
    """``contact_history`` as it was at ``cursor`` (or at ``recorded_at``), from the log.

    ``filters`` are ``contact_history``'s (counterpart, kind, window, window_mode,
    as_person_only).
    """
    prefix = f"asof_{uuid.uuid4().hex[:12]}_"
    projection = ContactsProjection(name=prefix, prefix=prefix)
    pages = await events_until(store, projection, cursor=cursor, recorded_at=recorded_at)
    async with store.pool.acquire() as proxy:
        # The projection API takes plain connections; a pooled one behaves the same here.
        conn = cast("asyncpg.Connection", proxy)
        transaction = conn.transaction()
        await transaction.start()
        try:
            await projection.setup(conn)
            for page in pages:
                await projection.apply(conn, page)
            return await contact_history(conn, actor_id, prefix=prefix, **filters)
        finally:
            # Nothing of this stays: the tables existed only inside the transaction.
            await transaction.rollback()
