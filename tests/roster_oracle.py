"""The roster as the pure fold computes it from the log (the oracle the projection's versions
are held to), and the projection's live view read as the API reads it."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from events.records import START, Cursor
from events.store import MAX_PAGE
from projections.roster import (
    Fact,
    RosterProjection,
    Routes,
    get_roster,
    list_meetings,
    roster_from,
)
from projections.runner import checkpoint_of

if TYPE_CHECKING:
    from collections.abc import Iterable

    import asyncpg

    from events import EventStore, RecordedEvent
    from projections.roster import RosterView


def routed(events: Iterable[RecordedEvent]) -> dict[str, list[Fact]]:
    """Each meeting's facts among ``events`` (the log from its start), in feed order."""
    routes = Routes()
    facts: dict[str, list[Fact]] = {}
    for event in events:
        fact = Fact.of(event)
        meeting_id = routes.route(fact)
        if meeting_id is not None:
            facts.setdefault(meeting_id, []).append(fact)
    return facts


def folded_at(facts: list[Fact], cursor: Cursor) -> RosterView | None:
    """``roster_from`` of the facts up to ``cursor`` (inclusive)."""
    return roster_from([f for f in facts if f.cursor <= cursor])


async def roster_log(store: EventStore) -> list[RecordedEvent]:
    """Every event the roster reads, in feed order."""
    feed = RosterProjection().filter
    events: list[RecordedEvent] = []
    cursor = START
    while True:
        page = await store.read_all(cursor, limit=MAX_PAGE, filter=feed)
        events.extend(page.events)
        cursor = page.next_cursor
        if not page.full:
            return events


async def fold_log(store: EventStore, meeting_id: str, cursor: Cursor) -> RosterView | None:
    """The roster of ``meeting_id`` folded from the log up to ``cursor``."""
    return folded_at(routed(await roster_log(store)).get(meeting_id, []), cursor)


async def live_roster(
    pool: asyncpg.Pool, projection: RosterProjection, meeting_id: str, *, prefix: str
) -> RosterView | None:
    """The live view: the roster at the projection's checkpoint, read in one snapshot."""
    async with pool.acquire() as proxy:
        conn = cast("asyncpg.Connection", proxy)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            at, _ = await checkpoint_of(conn, projection.name, projection.version)
            return await get_roster(conn, meeting_id, at=at, table_prefix=prefix)


async def every_meeting(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    at: Cursor,
    table_prefix: str = "roster",
    version: int = 1,
) -> list[RosterView]:
    """Every meeting known at ``at``, page by page."""
    views: list[RosterView] = []
    after = ""
    while True:
        page = await list_meetings(
            conn, at=at, after=after, limit=100, version=version, table_prefix=table_prefix
        )
        views.extend(page)
        if len(page) < 100:
            return views
        after = page[-1].meeting_id
