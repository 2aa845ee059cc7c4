"""Reading the roster as it stood at a feed cursor: the projection's checkpoint for the live
view (read in the same snapshot), or any earlier cursor for a view "as of" it. Either way the
rows current at that cursor, through the primary key (``projections.system_time``).

Each version is stored as the JSON the API sends (``schema``), so ``roster_json`` and
``meetings_json`` hand out the stored bytes, to be sent as they are; ``get_roster`` and
``list_meetings`` decode them into ``RosterView`` for callers that read the roster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from projections.roster.schema import GET_SQL, LIST_SQL, tables
from projections.roster.view import RosterView
from projections.system_time import key_of

if TYPE_CHECKING:
    import asyncpg

    from events.records import Cursor

__all__ = ("get_roster", "list_meetings", "meetings_json", "roster_json")

_VIEW_DECODER: Final = msgspec.json.Decoder(RosterView)
_UNKNOWN: Final = b"null"


async def roster_json(
    conn: asyncpg.Connection | asyncpg.Pool,
    meeting_id: str,
    *,
    at: Cursor,
    version: int = 1,
    table_prefix: str = "roster",
) -> bytes | None:
    """The roster of one meeting as it stood once the event at ``at`` was in, as the JSON of a
    ``RosterView`` (the stored bytes).

    Returns:
        The view whose last fact is the last one at or before ``at``; ``None`` when the meeting
        was unknown then, or had no live scheduling.
    """
    sql = GET_SQL.format(**tables(table_prefix, version))
    raw: bytes | None = await conn.fetchval(sql, meeting_id, key_of(at))
    return None if raw is None or raw == _UNKNOWN else raw


async def meetings_json(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    at: Cursor,
    after: str = "",
    limit: int,
    version: int = 1,
    table_prefix: str = "roster",
) -> list[bytes]:
    """The rosters of the meetings known at ``at``, by meeting id, each as the JSON of a
    ``RosterView`` (the stored bytes): at most ``limit`` of them, those with an id
    after ``after`` (keyset pagination: a deep page costs what the first does)."""
    sql = LIST_SQL.format(**tables(table_prefix, version))
    rows = await conn.fetch(sql, key_of(at), after, limit)
    return [r["body"] for r in rows]


async def get_roster(
    conn: asyncpg.Connection | asyncpg.Pool,
    meeting_id: str,
    *,
    at: Cursor,
    version: int = 1,
    table_prefix: str = "roster",
) -> RosterView | None:
    """``roster_json``, decoded."""
    raw = await roster_json(conn, meeting_id, at=at, version=version, table_prefix=table_prefix)
    return None if raw is None else _VIEW_DECODER.decode(raw)


async def list_meetings(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    at: Cursor,
    after: str = "",
    limit: int,
    version: int = 1,
    table_prefix: str = "roster",
) -> list[RosterView]:
    """``meetings_json``, decoded."""
    rows = await meetings_json(
        conn, at=at, after=after, limit=limit, version=version, table_prefix=table_prefix
    )
    return [_VIEW_DECODER.decode(body) for body in rows]
