"""Interactions in the formats event-data users already read: PLOVER JSON lines and a
GDELT-style table.

Both are written from the contact projection's current views (corrections applied, retracted
interactions left out) and stream: rows come from a server-side cursor, one at a time, so
memory does not grow with the log. The actor directory (names, CAMEO codes, Wikidata ids) is
read once; it grows with the number of actors, not of events.

What the formats cannot say, Diplofeed adds rather than invents. One date rule for both: a
record is dated by the first day its EDTF value can mean (its lower bound), never by another
day in its place, and the last day (upper bound), the EDTF string, its precision and the
source's phrase go beside it:

- PLOVER: ``date`` is the lower bound, ``enddate`` the upper one when it differs. PLOVER
  requires a date, so a record with an open start (``../2024-02``: "before February 2024")
  or no bound at all is left out (``LeftOut("no_first_day")``).
- GDELT: ``SQLDATE``, ``MonthYear``, ``Year`` and ``FractionDate`` come from the lower bound
  and are empty when the start is open; ``DateUpper`` is the upper bound (empty when the end
  is open) and ``DatePrecision`` the value's precision (``day``, ``month``, ``year``,
  ``interval``, ``open``..., ``events.domain.valid_time``).

A negated statement ("avoids public contact") reports that something does not happen. PLOVER
says so with its ``negation`` mode, so it is written and marked; a GDELT row has no way to
say it and would count as an event that happened, so it is left out (``negated``), as the
contact graph leaves it out of its counts. An aggregate report ("several times") stays one
record carrying its cardinality text; PLOVER has no type for a plain address, so those are
left out of PLOVER (``no_plover_type``) but kept in the GDELT table under their CAMEO code.
Every interaction left out is counted by reason (``projections.left_out``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec

from projections.contacts import ActorView, InteractionView
from projections.left_out import LeftOut
from projections.system_time import is_live

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg

__all__ = (
    "GDELT_COLUMNS",
    "Directory",
    "LeftOut",
    "count_interactions",
    "gdelt_rows",
    "interaction_views",
    "load_directory",
    "plover_record",
)

# The contacts tables keep every version of each row (projections.system_time): exports read
# the current ones.
INTERACTIONS_SQL: Final = f"""
SELECT view::text AS view FROM projections.{{table}}
WHERE {is_live()} AND NOT retracted AND view IS NOT NULL
ORDER BY lower NULLS LAST, interaction_id
"""
COUNT_SQL: Final = f"""
SELECT count(*) FROM projections.{{table}} WHERE {is_live()} AND NOT retracted AND view IS NOT NULL
"""
ACTORS_SQL: Final = f"""
SELECT view::text AS view FROM projections.{{table}} WHERE {is_live()} AND view IS NOT NULL
"""

# Who acts and who is acted upon, in PLOVER's actor/recipient and GDELT's Actor1/Actor2.
_SOURCE_ROLES: Final = frozenset(
    {"initiator", "visitor", "inviter", "speaker", "apologiser", "signatory", "refuser",
     "organiser", "convener", "delegation_head"}
)  # fmt: skip
_TARGET_ROLES: Final = frozenset(
    {"recipient", "host", "invitee", "audience", "apology_recipient", "delegation_member"}
)
_FUTURE_MODALITIES: Final = frozenset({"announced", "planned"})

GDELT_COLUMNS: Final = (
    "GLOBALEVENTID", "SQLDATE", "MonthYear", "Year", "FractionDate",
    "Actor1Code", "Actor1Name", "Actor1CountryCode",
    "Actor2Code", "Actor2Name", "Actor2CountryCode",
    "IsRootEvent", "EventCode", "EventBaseCode", "EventRootCode", "QuadClass",
    "GoldsteinScale", "NumSources", "ActionGeo_FullName", "ActionGeo_CountryCode",
    "SOURCEURL",
    # Diplofeed's own, after GDELT's: what GDELT has no column for.
    "EDTF", "DateUpper", "DatePhrase", "Modality", "Cardinality", "PloverType", "DatePrecision",
)  # fmt: skip
"""The GDELT 2.0 event columns this table fills (a subset, same names and meaning), then
Diplofeed's."""

Directory = dict[str, ActorView]
"""Actors by id."""


def _table(kind: str, version: int, prefix: str) -> str:
    return f"{prefix}{kind}_v{version}"


async def load_directory(
    conn: asyncpg.Connection, *, version: int = 1, prefix: str = ""
) -> Directory:
    """Every projected actor, by id."""
    sql = ACTORS_SQL.format(table=_table("actors", version, prefix))
    views = [msgspec.json.decode(r["view"], type=ActorView) for r in await conn.fetch(sql)]
    return {v.actor_id: v for v in views}


async def count_interactions(
    conn: asyncpg.Connection, *, version: int = 1, prefix: str = ""
) -> int:
    """How many interactions an export will write (for progress)."""
    total: int = await conn.fetchval(
        COUNT_SQL.format(table=_table("interactions", version, prefix))
    )
    return total


async def interaction_views(
    conn: asyncpg.Connection, *, version: int = 1, prefix: str = "", prefetch: int = 500
) -> AsyncIterator[InteractionView]:
    """Every live interaction, oldest first, through a server-side cursor (the caller's
    connection must not be inside another statement)."""
    decoder = msgspec.json.Decoder(InteractionView)
    sql = INTERACTIONS_SQL.format(table=_table("interactions", version, prefix))
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        async for row in conn.cursor(sql, prefetch=prefetch):
            yield decoder.decode(row["view"])


def _entity(actor_id: str, directory: Directory, name: str | None, office: str | None) -> Any:
    actor = directory.get(actor_id)
    entity: dict[str, Any] = {"entity_text": name or (actor.canonical_name if actor else actor_id)}
    if actor is not None:
        entity["identifier_text"] = actor.canonical_name
        if actor.cameo_code:
            entity["code"] = actor.cameo_code
        if actor.wikidata_qid:
            entity["identifier_id"] = actor.wikidata_qid
        if actor.country:
            entity["country"] = actor.country
    if office:
        entity["office"] = office
    entity["diplofeed_id"] = actor_id
    return entity


def _sides(view: InteractionView) -> tuple[list[Any], list[Any]]:
    sources = [p for p in view.participants if p.role in _SOURCE_ROLES]
    targets = [p for p in view.participants if p.role in _TARGET_ROLES]
    if not sources:
        # No one is named as acting (a meeting of equals): the first party acts.
        others = [p for p in view.participants if p not in targets]
        sources, targets = others[:1], [*others[1:], *targets]
    return sources, targets


def plover_record(view: InteractionView, directory: Directory) -> dict[str, Any] | LeftOut:
    """One PLOVER JSON record, or why there is none (see the module docstring)."""
    coding = view.coding
    if coding.plover_type is None:
        return LeftOut("no_plover_type")
    when = view.valid_time
    start = when.lower
    if start is None:
        return LeftOut("no_first_day")
    sources, targets = _sides(view)
    if not sources:
        return LeftOut("no_acting_party")
    modes = [coding.plover_mode] if coding.plover_mode else []
    if view.negated:
        modes.append("negation")
    if view.modality in _FUTURE_MODALITIES:
        modes.append("future")
    record: dict[str, Any] = {
        "id": view.interaction_id,
        "date": start.isoformat(),
        "actor": [_entity(p.actor_id, directory, p.name_as_reported, p.title_as_reported)
                  for p in sources],
        "event": [coding.plover_type],
    }  # fmt: skip
    if when.upper is not None and when.upper != start:
        record["enddate"] = when.upper.isoformat()
    if targets:
        record["recipient"] = [
            _entity(p.actor_id, directory, p.name_as_reported, p.title_as_reported) for p in targets
        ]
    if modes:
        record["mode"] = modes
    if coding.plover_contexts:
        record["context"] = list(coding.plover_contexts)
    record["quad_code"] = coding.quad_class
    if view.place is not None:
        record["event_loc"] = {
            k: v
            for k, v in (
                ("name", view.place.name),
                ("country", view.place.country),
                ("geonameid", view.place.geonames_id),
            )
            if v is not None
        }
    text = view.quote or view.claim or next((s.quote for s in view.sources if s.quote), None)
    if text:
        record["event_text"] = text
    cites = [
        {k: v for k, v in (("url", s.url), ("title", s.title), ("publication", s.publisher),
                           ("language", s.language)) if v is not None}
        for s in view.sources
    ]  # fmt: skip
    if cites:
        record["cite_info"] = cites
    record["coder"] = "diplofeed"
    record["comment"] = "; ".join(
        part
        for part in (
            f"EDTF {when.edtf} ({when.precision})",
            f"as reported: {when.raw}" if when.raw else None,
            f"cardinality: {view.cardinality_text}" if view.cardinality_text else None,
            f"mapping {coding.mapping_version}",
        )
        if part
    )
    return record


def _name(actor_id: str, directory: Directory) -> str:
    actor = directory.get(actor_id)
    return actor.canonical_name if actor else actor_id


def gdelt_rows(view: InteractionView, directory: Directory) -> list[list[str]] | LeftOut:
    """The GDELT-style rows of one interaction: one per (actor, recipient) pair, as GDELT
    writes dyads; one row with an empty Actor2 when nobody is acted upon. Or why there are
    none (see the module docstring)."""
    if view.negated:
        return LeftOut("negated")
    coding = view.coding
    when = view.valid_time
    start = when.lower
    sources, targets = _sides(view)
    pairs = [(s, t) for s in sources for t in targets] or [(s, None) for s in sources]
    if not pairs:
        return LeftOut("no_acting_party")
    url = next((s.url for s in view.sources if s.url), "")
    rows: list[list[str]] = []
    for n, (one, two) in enumerate(pairs):
        a1 = directory.get(one.actor_id)
        a2 = directory.get(two.actor_id) if two is not None else None
        rows.append(
            [
                f"{view.interaction_id}#{n}" if len(pairs) > 1 else view.interaction_id,
                start.strftime("%Y%m%d") if start else "",
                start.strftime("%Y%m") if start else "",
                str(start.year) if start else "",
                f"{start.year + (start.timetuple().tm_yday - 1) / 365:.4f}" if start else "",
                (a1.cameo_code or "") if a1 else "",
                _name(one.actor_id, directory),
                (a1.country or "") if a1 else "",
                (a2.cameo_code or "") if a2 else "",
                _name(two.actor_id, directory) if two is not None else "",
                (a2.country or "") if a2 else "",
                "1" if n == 0 else "0",
                coding.cameo,
                coding.cameo[:3],
                coding.cameo[:2],
                str(coding.quad_class),
                f"{coding.goldstein:g}",
                str(len(view.sources)),
                view.place.name if view.place else "",
                (view.place.country or "") if view.place else "",
                url,
                when.edtf,
                when.upper.strftime("%Y%m%d") if when.upper else "",
                when.raw or "",
                view.modality,
                view.cardinality_text or "",
                coding.plover_type or "",
                when.precision,
            ]
        )
    return rows
