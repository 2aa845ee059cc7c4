"""The contacts projection's queries: contact histories, the contact graph, actor lookup and
search."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import msgspec

from projections.contacts.schema import (
    GET_ACTOR_SQL,
    GRAPH_SQL,
    HISTORY_SQL,
    SEARCH_ACTORS_SQL,
    sql,
)
from projections.contacts.views import (
    ActorView,
    Counterpart,
    GraphEdge,
    HistoryEntry,
    InteractionView,
    WindowMode,
)

if TYPE_CHECKING:
    from datetime import date

    import asyncpg

__all__ = ("contact_graph", "contact_history", "get_actor", "search_actors")


async def contact_history(
    conn: asyncpg.Connection | asyncpg.Pool,
    actor_id: str,
    *,
    counterpart: str | None = None,
    kind: str | None = None,
    window: tuple[date | None, date | None] | None = None,
    window_mode: WindowMode = "possible",
    as_person_only: bool = False,
    version: int = 1,
    prefix: str = "",
) -> list[HistoryEntry]:
    """An actor's interactions, newest first (by upper, then lower bound; open bounds last).

    An organisation's history also holds the interactions of persons who held a role in it at
    the time (the role's days overlap the interaction's), each marked with ``via``. Retracted
    interactions never appear; an aggregate report is one entry with its cardinality.

    Args:
        conn: A connection or pool.
        actor_id: Whose history.
        counterpart: Only interactions this actor also took part in.
        kind: Only this kind (``"visit"``, ``"meeting"``...).
        window: ``(start, end)`` days, inclusive; ``None`` on a side leaves it open.
        window_mode: ``"certain"``: the interaction's bounds lie inside the window;
            ``"possible"``: they overlap it.
        as_person_only: Only interactions the actor took part in itself (no members').
        version: The projection version to read.
        prefix: The projection's table prefix.

    Raises:
        ValueError: The window ends before it starts.
    """
    start, end = window if window is not None else (None, None)
    if start is not None and end is not None and end < start:
        raise ValueError(f"the window ends ({end}) before it starts ({start})")
    rows = await conn.fetch(
        sql(HISTORY_SQL, prefix, version),
        actor_id,
        counterpart,
        kind,
        start,
        end,
        window_mode == "certain",
        as_person_only,
    )
    entries: list[HistoryEntry] = []
    for row in rows:
        view = msgspec.json.decode(row["view"], type=InteractionView)
        members: list[str] = list(row["via"] or ())
        selves = {actor_id, *members}
        coding = view.coding
        entries.append(
            HistoryEntry(
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
        )
    return entries


async def contact_graph(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    actor_id: str | None = None,
    kind: str | None = None,
    version: int = 1,
    prefix: str = "",
) -> list[GraphEdge]:
    """Interaction counts per unordered pair of actors, kind and year.

    Retracted interactions and negated statements are left out. An interaction is *certain* in
    a year when both its bounds fall in that year, and *possible* in every year its bounds
    overlap; open bounds are limited as the module docstring says.

    Args:
        conn: A connection or pool.
        actor_id: Only pairs with this actor in them.
        kind: Only this kind of interaction.
        version: The projection version to read.
        prefix: The projection's table prefix.
    """
    rows = await conn.fetch(sql(GRAPH_SQL, prefix, version), actor_id, kind)
    return [
        GraphEdge(
            a=r["a"],
            b=r["b"],
            kind=r["kind"],
            year=r["year"],
            certain=r["certain"],
            possible=r["possible"],
        )
        for r in rows
    ]


async def get_actor(
    conn: asyncpg.Connection | asyncpg.Pool,
    actor_id: str,
    *,
    version: int = 1,
    prefix: str = "",
) -> ActorView | None:
    """The actor registered under ``actor_id``, or the one it was merged into; ``None`` if
    there is none (or its registration was retracted)."""
    text = await conn.fetchval(sql(GET_ACTOR_SQL, prefix, version), actor_id)
    return None if text is None else msgspec.json.decode(text, type=ActorView)


async def search_actors(
    conn: asyncpg.Connection | asyncpg.Pool,
    name: str,
    *,
    limit: int = 20,
    version: int = 1,
    prefix: str = "",
) -> list[ActorView]:
    """Actors whose id, name or an alias is ``name``, or one of whose name's or aliases' words
    starts with it (case-insensitive); exact matches first.

    This serves lookups and suggestions; resolving a name as sources spell it (transliteration
    variants, fuzzy matches) is ``events.domain.names``' job.
    """
    text = name.strip()
    if not text:
        return []
    escaped = re.sub(r"([\\%_])", r"\\\1", text)
    rows = await conn.fetch(
        sql(SEARCH_ACTORS_SQL, prefix, version), text, f"{escaped}%", limit, f"% {escaped}%"
    )
    return [msgspec.json.decode(r["view"], type=ActorView) for r in rows]
