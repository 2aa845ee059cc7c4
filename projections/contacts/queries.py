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

import msgspec

from projections.contacts.schema import (
    GET_ACTOR_SQL,
    HISTORY_SQL,
    SEARCH_ACTORS_SCAN_SQL,
    SEARCH_ACTORS_SQL,
    sql,
)
from projections.contacts.views import (
    ActorView,
    Counterpart,
    HistoryEntry,
    InteractionView,
    WindowMode,
)
from projections.interaction_rows import OPEN_BOUND

if TYPE_CHECKING:
    import asyncpg

    from events.records import Cursor

__all__ = (
    "HistoryKey",
    "SearchKey",
    "contact_history",
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
    start, end = window if window is not None else (None, None)
    if start is not None and end is not None and end < start:
        raise ValueError(f"the window ends ({end}) before it starts ({start})")
    try:
        upper, lower, last_id = _history_after(after)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a contact history key: {after!r}") from exc
    rows = await conn.fetch(
        sql(HISTORY_SQL, prefix, version),
        actor_id,
        _at(at),
        counterpart,
        kind,
        start,
        end,
        window_mode == "certain",
        as_person_only,
        upper,
        lower,
        last_id,
        limit,
    )
    return [_entry(actor_id, row["view"], row["via"]) for row in rows]


def _entry(actor_id: str, text: str, via: list[str] | None) -> HistoryEntry:
    view = msgspec.json.decode(text, type=InteractionView)
    members: list[str] = list(via or ())
    selves = {actor_id, *members}
    coding = view.coding
    return HistoryEntry(
        interaction_id=view.interaction_id,
        kind=view.kind,
        counterparts=tuple(
            Counterpart(
                actor_id=p.actor_id,
                role=p.role,
                name_as_reported=p.name_as_reported,
                title_as_reported=p.title_as_reported,
            )
            for p in view.participants
            if p.actor_id not in selves
        ),
        roles=tuple(p.role for p in view.participants if p.actor_id in selves),
        via=members[0] if members else None,
        cameo=coding.cameo,
        plover_type=coding.plover_type,
        plover_mode=coding.plover_mode,
        valid_time=view.valid_time,
        place=view.place,
        modality=view.modality,
        attributed_to=view.attributed_to,
        sources=view.sources,
        topics=view.topics,
        cardinality_text=view.cardinality_text,
        min_count=view.min_count,
        negated=view.negated,
        claim=view.claim,
    )


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
    version: int = 1,
    prefix: str = "",
) -> list[ActorView]:
    """Actors whose id, name or an alias is ``name``, or one of whose name's or aliases' words
    starts with it (case-insensitive), as of ``at`` (``None``: now). Order: exact matches
    first, then by canonical name, then by id; ``after`` is the key (``search_actors_keyed``)
    of the previous page's last actor.

    This serves lookups and suggestions; resolving a name as sources spell it (transliteration
    variants, fuzzy matches) is ``events.domain.names``' job.

    Raises:
        ValueError: ``after`` is no search key.
    """
    found = await search_actors_keyed(
        conn, name, at=at, after=after, limit=limit, version=version, prefix=prefix
    )
    return [actor for actor, _ in found]


async def search_actors_keyed(
    conn: asyncpg.Connection | asyncpg.Pool,
    name: str,
    *,
    at: Cursor | None = None,
    after: SearchKey | None = None,
    limit: int = 20,
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
    )
    return [
        (
            msgspec.json.decode(r["view"], type=ActorView),
            (r["exact"], r["canonical_name"], r["actor_id"]),
        )
        for r in rows
    ]
