"""Reading the roster: one meeting's, every meeting's, and as of an earlier point."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from events.records import START, Cursor, FeedFilter
from events.store import MAX_PAGE
from projections.roster.fold import Fact, roster_from
from projections.roster.routes import Routes, route_all
from projections.roster.schema import CATEGORIES, GET_SQL, LIST_SQL, tables
from projections.roster.view import RosterView

if TYPE_CHECKING:
    from datetime import datetime

    import asyncpg

    from events.store import EventStore

__all__ = ("get_roster", "list_meetings", "roster_as_of", "roster_as_of_time")

_VIEW_DECODER: Final = msgspec.json.Decoder(RosterView | None)


async def get_roster(
    conn: asyncpg.Connection | asyncpg.Pool,
    meeting_id: str,
    *,
    version: int = 1,
    table_prefix: str = "roster",
) -> RosterView | None:
    """The projected roster of one meeting (``None``: unknown, or not scheduled)."""
    sql = GET_SQL.format(**tables(table_prefix, version))
    text = await conn.fetchval(sql, meeting_id)
    return None if text is None else _VIEW_DECODER.decode(text)


async def list_meetings(
    conn: asyncpg.Connection | asyncpg.Pool, *, version: int = 1, table_prefix: str = "roster"
) -> list[RosterView]:
    """Every projected meeting's roster, by meeting id."""
    sql = LIST_SQL.format(**tables(table_prefix, version))
    views = [_VIEW_DECODER.decode(r["view"]) for r in await conn.fetch(sql)]
    return [v for v in views if v is not None]


async def _fold_log(
    store: EventStore,
    meeting_id: str,
    *,
    cursor: Cursor | None = None,
    recorded_at: datetime | None = None,
) -> RosterView | None:
    routes = Routes()
    facts: list[Fact] = []
    after = START
    feed = FeedFilter(categories=CATEGORIES)
    while True:
        page = await store.read_all(after, limit=MAX_PAGE, filter=feed)
        events = page.events
        if cursor is not None:
            events = [e for e in events if e.cursor <= cursor]
        if recorded_at is not None:
            events = [e for e in events if e.recorded_at <= recorded_at]
        # Every event is routed, not only this meeting's: links are made by other streams.
        facts.extend(route_all(events, routes).get(meeting_id, ()))
        after = page.next_cursor
        if not page.full or (cursor is not None and after >= cursor):
            return roster_from(facts)


async def roster_as_of(store: EventStore, meeting_id: str, cursor: Cursor) -> RosterView | None:
    """The roster as the log told it once every event up to ``cursor`` (inclusive) was in:
    the same fold as the projection, over the log read from the start."""
    return await _fold_log(store, meeting_id, cursor=cursor)


async def roster_as_of_time(
    store: EventStore, meeting_id: str, recorded_at: datetime
) -> RosterView | None:
    """The roster from the events recorded at or before ``recorded_at``."""
    return await _fold_log(store, meeting_id, recorded_at=recorded_at)
