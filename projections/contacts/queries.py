"""The contacts projection's queries: contact histories, the contact graph, actor lookup and
search.

Every query but the graph reads the rows current at a cursor (``at``): the live view is the
view at the projection's checkpoint, read in the same snapshot as the checkpoint, and an as-of
view is the same query at an earlier cursor, through the same indexes. ``at=None`` reads the
rows current now (the view at whatever the projection has applied).
"""

from __future__ import annotations

import datetime
import re
from typing import TYPE_CHECKING, Final

import asyncpg
import msgspec

from projections.contacts.entries import Through, raw_entry
from projections.contacts.schema import (
    GET_ACTOR_SQL,
    HISTORY_SQL,
    MEMBER_WINDOWS_SQL,
    MERGED_SCANS_SQL,
    MERGED_WINDOWS,
    NO_ACTOR,
    ORDERED_SCANS_SQL,
    SEARCH_ACTORS_SCAN_SQL,
    SEARCH_ACTORS_SQL,
    merged_history_sql,
    sql,
)
from projections.contacts.views import ActorView, HistoryEntry, WindowMode
from projections.interaction_rows import OPEN_BOUND

if TYPE_CHECKING:
    from collections.abc import Sequence

    from events.records import Cursor

__all__ = (
    "HistoryKey",
    "SearchKey",
    "contact_history",
    "contact_history_page",
    "get_actor",
    "history_key",
    "search_actors",
    "search_actors_keyed",
)

HistoryKey = tuple[str, str, str]
"""An entry's place in a contact history: upper and lower day bound (ISO dates, an open bound
as ``0001-01-01``) and interaction id."""
SearchKey = tuple[bool, str, str]
"""An actor's place in a search: exact match, canonical name, actor id."""

_NOW: Final = b"\xff" * 16
"""A cursor key after every cursor: the rows current at it are the ones still open."""
_FIRST_PAGE: Final = (datetime.date.max, datetime.date.max, "")
_ENTRY_DECODER: Final = msgspec.json.Decoder(HistoryEntry)


_JSON_ESCAPED: Final = re.compile(r'["\\\x00-\x1f]')
"""Characters JSON text escapes: a search for them cannot use the index (``schema``)."""


def _at(at: Cursor | None) -> bytes:
    return _NOW if at is None else at.key()


def history_key(entry: HistoryEntry) -> HistoryKey:
    """Where ``entry`` stands in its history's order (what ``after`` takes)."""
    days = entry.valid_time
    upper = OPEN_BOUND if days.upper is None else days.upper
    lower = OPEN_BOUND if days.lower is None else days.lower
    return (upper.isoformat(), lower.isoformat(), entry.interaction_id)


def _history_after(after: HistoryKey | None) -> tuple[datetime.date, datetime.date, str]:
    if after is None:
        return _FIRST_PAGE
    upper, lower, interaction_id = after
    if not isinstance(interaction_id, str):
        raise TypeError("an interaction id is text")
    return datetime.date.fromisoformat(upper), datetime.date.fromisoformat(lower), interaction_id


async def contact_history(
    conn: asyncpg.Connection | asyncpg.Pool,
    actor_id: str,
    *,
    at: Cursor | None = None,
    after: HistoryKey | None = None,
    limit: int = 100,
    counterpart: str | None = None,
    kind: str | None = None,
    window: tuple[datetime.date | None, datetime.date | None] | None = None,
    window_mode: WindowMode = "possible",
    as_person_only: bool = False,
    version: int = 1,
    prefix: str = "",
) -> list[HistoryEntry]:
    """A page of an actor's interactions, newest first: by upper day bound, then lower day
    bound (both descending, open bounds last), then interaction id (ascending).

    An organisation's history also holds the interactions of persons who held a role in it at
    the time (the role's days overlap the interaction's), each marked with ``via``. Retracted
    interactions never appear; an aggregate report is one entry with its cardinality.

    Args:
        conn: A connection or pool.
        actor_id: Whose history.
        at: The cursor whose view is read (``None``: the rows current now).
        after: The ``history_key`` of the previous page's last entry (``None``: first page).
        limit: At most this many entries.
        counterpart: Only interactions this actor also took part in.
        kind: Only this kind (``"visit"``, ``"meeting"``...).
        window: ``(start, end)`` days, inclusive; ``None`` on a side leaves it open.
        window_mode: ``"certain"``: the interaction's bounds lie inside the window;
            ``"possible"``: they overlap it.
        as_person_only: Only interactions the actor took part in itself (no members').
        version: The projection version to read.
        prefix: The projection's table prefix.

    Raises:
        ValueError: The window ends before it starts, or ``after`` is no history key.
    """
    page = await contact_history_page(
        conn,
        actor_id,
        at=at,
        after=after,
        limit=limit,
        counterpart=counterpart,
        kind=kind,
        window=window,
        window_mode=window_mode,
        as_person_only=as_person_only,
        version=version,
        prefix=prefix,
    )
    return [_ENTRY_DECODER.decode(entry) for entry, _ in page]


async def contact_history_page(
    conn: asyncpg.Connection | asyncpg.Pool,
    actor_id: str,
    *,
    at: Cursor | None = None,
    after: HistoryKey | None = None,
    limit: int = 100,
    counterpart: str | None = None,
    kind: str | None = None,
    window: tuple[datetime.date | None, datetime.date | None] | None = None,
    window_mode: WindowMode = "possible",
    as_person_only: bool = False,
    version: int = 1,
    prefix: str = "",
    merged_windows: int = MERGED_WINDOWS[-1],
) -> list[tuple[msgspec.Raw, HistoryKey]]:
    """``contact_history`` as the API serves it: each entry's JSON (``entries.raw_entry``)
    with its ``history_key``. Given a connection inside a transaction, it changes settings of
    the transaction's later statements (which scans the planner may choose): read it last.

    An organisation's role windows are read first; the page is then one merge of the
    actor's links and each window's (``schema.merged_history_sql``), or, past
    ``merged_windows`` windows, one scan per window (``schema.HISTORY_SQL``).

    Raises:
        ValueError: The window ends before it starts, or ``after`` is no history key.
    """
    start, end = window if window is not None else (None, None)
    if start is not None and end is not None and end < start:
        raise ValueError(f"the window ends ({end}) before it starts ({start})")
    try:
        upper, lower, last_id = _history_after(after)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a contact history key: {after!r}") from exc
    point = _at(at)
    windows = (
        []
        if as_person_only
        else await conn.fetch(sql(MEMBER_WINDOWS_SQL, prefix, version), actor_id, point)
    )
    branches = next((n for n in MERGED_WINDOWS if n >= len(windows)), None)
    merged = branches is not None and len(windows) <= merged_windows
    if not isinstance(conn, asyncpg.Pool) and conn.is_in_transaction():
        # Settings for this transaction's remaining statements: call it last in a transaction.
        await conn.execute(MERGED_SCANS_SQL if merged else ORDERED_SCANS_SQL)
    statement = merged_history_sql(branches) if merged and branches is not None else HISTORY_SQL
    unused = (branches or 0) - len(windows) if merged else 0
    arrays = (
        [
            [w["actor_id"] for w in windows] + [NO_ACTOR] * unused,
            [w["lower"] for w in windows] + [None] * unused,
            [w["upper"] for w in windows] + [None] * unused,
        ]
        if windows or not merged
        else []  # a merge without windows takes no window arrays
    )
    rows = await conn.fetch(
        sql(statement, prefix, version),
        actor_id,
        point,
        counterpart,
        kind,
        start,
        end,
        window_mode == "certain",
        upper,
        lower,
        last_id,
        limit,
        *arrays,
    )
    return [
        (
            raw_entry(
                actor_id,
                row["view"],
                None if row["direct"] else _through(windows, row["lower_key"], row["upper_key"]),
            ),
            (row["upper_key"].isoformat(), row["lower_key"].isoformat(), row["interaction_id"]),
        )
        for row in rows
    ]


def _through(windows: list[asyncpg.Record], lower: datetime.date, upper: datetime.date) -> Through:
    """The members through whom an interaction with these day keys counts: those of its
    participants with a window that overlaps its days (the rule of ``schema._IN_WINDOW``),
    by id."""

    def members(participants: list[str]) -> list[str]:
        present = set(participants)
        return sorted(
            {
                w["actor_id"]
                for w in windows
                if w["actor_id"] in present
                and (w["upper"] is None or w["upper"] >= lower)
                and (w["lower"] is None or upper == OPEN_BOUND or w["lower"] <= upper)
            }
        )

    return members


async def get_actor(
    conn: asyncpg.Connection | asyncpg.Pool,
    actor_id: str,
    *,
    at: Cursor | None = None,
    version: int = 1,
    prefix: str = "",
) -> ActorView | None:
    """The actor registered under ``actor_id``, or the one it was merged into, as of ``at``
    (``None``: now); ``None`` if there is none (or its registration was retracted)."""
    text = await conn.fetchval(sql(GET_ACTOR_SQL, prefix, version), actor_id, _at(at))
    return None if text is None else msgspec.json.decode(text, type=ActorView)


async def search_actors(
    conn: asyncpg.Connection | asyncpg.Pool,
    name: str,
    *,
    at: Cursor | None = None,
    after: SearchKey | None = None,
    limit: int = 20,
    variants: Sequence[str] = (),
    version: int = 1,
    prefix: str = "",
) -> list[ActorView]:
    """Actors whose id, name or an alias is ``name``, or one of whose name's or aliases' words
    starts with it (case-insensitive), or whose id is among ``variants``, as of ``at``
    (``None``: now). Order: exact matches first, then by canonical name, then by id; ``after``
    is the key (``search_actors_keyed``) of the previous page's last actor.

    Which actors a name spells in another transliteration is ``events.domain.names``' job: its
    caller passes their ids as ``variants``.

    Raises:
        ValueError: ``after`` is no search key.
    """
    found = await search_actors_keyed(
        conn,
        name,
        at=at,
        after=after,
        limit=limit,
        variants=variants,
        version=version,
        prefix=prefix,
    )
    return [actor for actor, _ in found]


async def search_actors_keyed(
    conn: asyncpg.Connection | asyncpg.Pool,
    name: str,
    *,
    at: Cursor | None = None,
    after: SearchKey | None = None,
    limit: int = 20,
    variants: Sequence[str] = (),
    version: int = 1,
    prefix: str = "",
) -> list[tuple[ActorView, SearchKey]]:
    """``search_actors``, each actor with its place in the order (what ``after`` takes).

    Raises:
        ValueError: ``after`` is no search key.
    """
    text = name.strip()
    if not text:
        return []
    exact, last_name, last_id = after if after is not None else (None, None, None)
    if after is not None and not (
        isinstance(exact, bool) and isinstance(last_name, str) and isinstance(last_id, str)
    ):
        raise ValueError(f"not an actor search key: {after!r}")
    escaped = re.sub(r"([\\%_])", r"\\\1", text)
    statement = SEARCH_ACTORS_SCAN_SQL if _JSON_ESCAPED.search(text) else SEARCH_ACTORS_SQL
    rows = await conn.fetch(
        sql(statement, prefix, version),
        text,
        f"{escaped}%",
        limit,
        f"% {escaped}%",
        _at(at),
        exact,
        last_name,
        last_id,
        list(variants),
    )
    return [
        (
            msgspec.json.decode(r["view"], type=ActorView),
            (r["exact"], r["canonical_name"], r["actor_id"]),
        )
        for r in rows
    ]
