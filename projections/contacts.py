"""Contact history, contact graph and actor directory: who met, called or visited whom, when.

One projection keeps four tables (in the ``projections`` schema, names ending in the version):

``interactions_v1``
    One row per interaction stream: its current view (corrections applied, corroborating
    sources added), the day bounds of its valid time, and flags the queries filter on
    (retracted, negated, aggregate).
``interaction_actors_v1``
    Who took part in each live interaction, in which role, under which name.
``actors_v1``
    One row per actor stream: its current view (names, aliases, roles, merges).
``actor_roles_v1``
    The roles each actor currently holds on record, with day bounds: how a faction's history
    finds the persons who represented it at the time.

Applying a batch is set-based: the batch is decoded and grouped by item (an amendment is
recorded in the stream of the fact it amends, so the stream is the item); an item the batch
does not start gets its earlier facts from the log itself, in one query for the whole batch;
each affected item's view is recomputed once by a pure function (``interaction_from``,
``actor_from``), and everything is written back with one statement per table: COPY for the
interactions the batch begins and for participant rows, upserts over arrays for the rest.
All of that but the writes reads nothing of this projection's tables (``prepare``), so the
runner computes the next batch while this one is written. Storing only views keeps the writes
small: facts are never copied out of the log. The same pure functions give an item's view as
of any cursor: feed them the facts recorded up to it. An interaction that is one event and
nothing else (most are) skips them: its view is the stored JSON with its kind added
(``projections.single_fact``, which says when that holds).

The contact graph (``projections.graph``) is kept in the same transactions: its tables carry
this projection's prefix and version and are created and dropped with it.

Contact graph rule for open-ended valid times: an interaction with an open bound ("before
February 2024") counts as *possible* in every year from its known bound back (or forward) to
the earliest (latest) year of any live interaction of either actor of the pair; an interaction
with no bound at all counts only within that range too, and nowhere if the pair has no dated
interaction. So an open interval never invents years the record says nothing about.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import msgspec

from events.domain.amendments import Record, Stored, evolve_record
from events.domain.catalogue import (
    CATALOGUE,
    INTERACTION_EVENTS,
    ActorRegistered,
    ActorsMerged,
    AddressDelivered,
    AliasAdded,
    ApologyIssued,
    ContactsReported,
    MeetingHeld,
    PhoneCallHeld,
    RoleAssigned,
    SourceAdded,
    StatementReported,
    VisitMade,
)
from events.domain.coding import Coding
from events.domain.valid_time import ValidTime
from events.domain.vocabulary import Participant, Place, Source
from events.records import FeedFilter, RecordedEvent
from projections.collector import collector_paused
from projections.graph import GraphBatch, GraphEdge, GraphWriter
from projections.interaction_rows import (
    INTERACTION_COLUMNS,
    LINK_COLUMNS,
    InteractionRow,
    LinkRow,
    interaction_row,
    link_rows,
    retracted_row,
)
from projections.single_fact import SingleFactRows

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import date

    import asyncpg

    from events.domain.catalogue import DomainEvent

__all__ = (
    "ActorView",
    "ContactsProjection",
    "Counterpart",
    "GraphEdge",
    "HistoryEntry",
    "InteractionView",
    "RoleView",
    "WindowMode",
    "actor_from",
    "contact_history",
    "get_actor",
    "interaction_from",
    "search_actors",
)

WindowMode = Literal["possible", "certain"]

_PREFIX: Final = re.compile(r"[a-z0-9_]*")

CREATE_SQL: Final = """
-- An interaction's view is JSON text: it is only ever returned whole, and storing it as text
-- costs the server a third less than parsing it into jsonb on every write.
CREATE TABLE IF NOT EXISTS projections.{interactions} (
    interaction_id text PRIMARY KEY,
    kind           text,
    view           text,
    lower          date,
    upper          date,
    precision      text,
    retracted      boolean NOT NULL,
    negated        boolean NOT NULL,
    aggregate      boolean NOT NULL
);
CREATE TABLE IF NOT EXISTS projections.{links} (
    interaction_id   text NOT NULL,
    actor_id         text NOT NULL,
    role             text NOT NULL,
    name_as_reported text,
    PRIMARY KEY (interaction_id, actor_id, role)
);
CREATE INDEX IF NOT EXISTS {links}_actor_idx ON projections.{links} (actor_id);
CREATE TABLE IF NOT EXISTS projections.{actors} (
    actor_id       text PRIMARY KEY,
    kind           text,
    canonical_name text,
    aliases        text[] NOT NULL,
    view           jsonb
);
CREATE TABLE IF NOT EXISTS projections.{roles} (
    actor_id        text NOT NULL,
    organisation_id text NOT NULL,
    title           text,
    lower           date,
    upper           date
);
CREATE INDEX IF NOT EXISTS {roles}_actor_idx ON projections.{roles} (actor_id);
CREATE INDEX IF NOT EXISTS {roles}_organisation_idx ON projections.{roles} (organisation_id)
"""
VIEW_TYPE_SQL: Final = """
SELECT data_type FROM information_schema.columns
WHERE table_schema = 'projections' AND table_name = $1 AND column_name = 'view'
"""
# Tables from when interaction views were jsonb.
UPGRADE_SQL: Final = """
ALTER TABLE projections.{interactions} ALTER COLUMN view TYPE text USING view::text
"""
DROP_SQL: Final = """
DROP TABLE IF EXISTS projections.{interactions};
DROP TABLE IF EXISTS projections.{links};
DROP TABLE IF EXISTS projections.{actors};
DROP TABLE IF EXISTS projections.{roles}
"""
# The facts an item already had before this batch: its stream's earlier events, from the log
# itself (earlier versions of a stream come earlier in the feed, so they were applied before).
EARLIER_FACTS_SQL: Final = """
SELECT e.stream_id, e.event_id, e.type, e.schema_version, e.data::text
FROM unnest($1::text[], $2::bigint[]) AS w(stream_id, below)
JOIN events AS e ON e.stream_id = w.stream_id AND e.stream_version < w.below
ORDER BY e.stream_id, e.stream_version
"""
UPSERT_INTERACTIONS_SQL: Final = """
INSERT INTO projections.{interactions}
    (interaction_id, kind, view, lower, upper, precision, retracted, negated, aggregate)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::date[],
                     $6::text[], $7::boolean[], $8::boolean[], $9::boolean[])
ON CONFLICT (interaction_id) DO UPDATE SET
    kind = excluded.kind, view = excluded.view,
    lower = excluded.lower, upper = excluded.upper, precision = excluded.precision,
    retracted = excluded.retracted, negated = excluded.negated, aggregate = excluded.aggregate
"""
DELETE_LINKS_SQL: Final = """
DELETE FROM projections.{links} WHERE interaction_id = any($1::text[])
"""
UPSERT_ACTORS_SQL: Final = """
INSERT INTO projections.{actors} (actor_id, kind, canonical_name, aliases, view)
SELECT a.actor_id, a.kind, a.canonical_name,
       ARRAY(SELECT jsonb_array_elements_text(a.aliases)), a.view
FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[])
    AS a(actor_id, kind, canonical_name, aliases, view)
ON CONFLICT (actor_id) DO UPDATE SET
    kind = excluded.kind, canonical_name = excluded.canonical_name, aliases = excluded.aliases,
    view = excluded.view
"""
DELETE_ROLES_SQL: Final = """
DELETE FROM projections.{roles} WHERE actor_id = any($1::text[])
"""
INSERT_ROLES_SQL: Final = """
INSERT INTO projections.{roles} (actor_id, organisation_id, title, lower, upper)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::date[])
"""

# $1 actor, $2 counterpart, $3 kind, $4/$5 window, $6 certain (else possible), $7 direct only.
# A member's interaction counts for the organisation when the role's days overlap the
# interaction's (an open end overlaps everything on its side).
HISTORY_SQL: Final = """
WITH direct AS (
    SELECT DISTINCT interaction_id FROM projections.{links} WHERE actor_id = $1
),
through_members AS (
    SELECT l.interaction_id, array_agg(DISTINCT r.actor_id ORDER BY r.actor_id) AS via
    FROM projections.{roles} AS r
    JOIN projections.{links} AS l ON l.actor_id = r.actor_id
    JOIN projections.{interactions} AS i ON i.interaction_id = l.interaction_id
    WHERE NOT $7::boolean AND r.organisation_id = $1 AND r.actor_id <> $1
      AND (r.upper IS NULL OR i.lower IS NULL OR r.upper >= i.lower)
      AND (r.lower IS NULL OR i.upper IS NULL OR r.lower <= i.upper)
    GROUP BY l.interaction_id
),
included AS (
    SELECT interaction_id, NULL::text[] AS via FROM direct
    UNION ALL
    SELECT interaction_id, via FROM through_members
    WHERE interaction_id NOT IN (SELECT interaction_id FROM direct)
)
SELECT inc.via, i.view::text AS view
FROM included AS inc
JOIN projections.{interactions} AS i ON i.interaction_id = inc.interaction_id
WHERE NOT i.retracted AND i.view IS NOT NULL
  AND ($3::text IS NULL OR i.kind = $3)
  AND CASE WHEN $6::boolean THEN
          ($4::date IS NULL OR coalesce(i.lower >= $4, false))
          AND ($5::date IS NULL OR coalesce(i.upper <= $5, false))
      ELSE
          ($4::date IS NULL OR i.upper IS NULL OR i.upper >= $4)
          AND ($5::date IS NULL OR i.lower IS NULL OR i.lower <= $5)
      END
  AND ($2::text IS NULL OR EXISTS (
      SELECT 1 FROM projections.{links} AS c
      WHERE c.interaction_id = i.interaction_id AND c.actor_id = $2))
ORDER BY i.upper DESC NULLS LAST, i.lower DESC NULLS LAST, i.interaction_id
"""

# An id merged into another actor resolves to the survivor: its row sorts first (false < true).
GET_ACTOR_SQL: Final = """
SELECT view::text FROM projections.{actors}
WHERE view IS NOT NULL AND (actor_id = $1 OR view -> 'merged' ? $1)
ORDER BY actor_id = $1
LIMIT 1
"""
# Exact matches (id, name or alias) first, then names or aliases one of whose words starts
# with the text ($2: at the start, $4: after a space).
SEARCH_ACTORS_SQL: Final = """
SELECT view::text,
       (actor_id = lower($1) OR lower(canonical_name) = lower($1)
        OR EXISTS (SELECT 1 FROM unnest(aliases) AS a WHERE lower(a) = lower($1))) AS exact
FROM projections.{actors}
WHERE view IS NOT NULL
  AND (actor_id = lower($1) OR canonical_name ILIKE $2 OR canonical_name ILIKE $4
       OR EXISTS (SELECT 1 FROM unnest(aliases) AS a WHERE a ILIKE $2 OR a ILIKE $4))
ORDER BY exact DESC, canonical_name, actor_id
LIMIT $3
"""

_KINDS: Final[dict[type[Any], str]] = {
    PhoneCallHeld: "phone_call",
    MeetingHeld: "meeting",
    VisitMade: "visit",
    AddressDelivered: "address",
    ContactsReported: "contacts",
    StatementReported: "statement",
    ApologyIssued: "apology",
}
_ENCODER: Final = msgspec.json.Encoder()


# -- views ---------------------------------------------------------------------------------------


class InteractionView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An interaction in its current form: corrections applied, every source that backs it."""

    interaction_id: str
    kind: str
    """phone_call, meeting, visit, address, contacts, statement or apology."""
    participants: tuple[Participant, ...]
    valid_time: ValidTime
    place: Place | None = None
    topics: tuple[str, ...] = ()
    modality: str = "reported"
    attributed_to: str | None = None
    coding: Coding
    sources: tuple[Source, ...] = ()
    meeting_id: str | None = None
    format: str | None = None
    quote: str | None = None
    cardinality_text: str | None = None
    min_count: int | None = None
    claim: str | None = None
    negated: bool = False
    subject: str | None = None


_SINGLE_FACT: Final = SingleFactRows(CATALOGUE, _KINDS, InteractionView)
"""Rows of interactions that are one event, without decoding the event (see its module)."""


class RoleView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A role an actor held in an organisation, for a valid time."""

    organisation_id: str
    title: str | None = None
    role_code: str | None = None
    valid_time: ValidTime


class ActorView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An actor as the directory shows it."""

    actor_id: str
    kind: str
    canonical_name: str
    aliases: tuple[str, ...] = ()
    cameo_code: str | None = None
    wikidata_qid: str | None = None
    country: str | None = None
    roles: tuple[RoleView, ...] = ()
    merged: tuple[str, ...] = ()
    """Actors found to be this one (their own rows remain; ``get_actor`` follows the merge)."""
    sources: tuple[Source, ...] = ()


class Counterpart(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Another participant of an interaction, as the source named them."""

    actor_id: str
    role: str
    name_as_reported: str | None = None
    title_as_reported: str | None = None


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One interaction in an actor's contact history."""

    interaction_id: str
    kind: str
    counterparts: tuple[Counterpart, ...]
    roles: tuple[str, ...]
    """The roles the actor (or the member it is included through) took in it."""
    via: str | None
    """For an organisation: the member through whom the interaction is included (the first by
    id if several); ``None`` when the actor took part itself."""
    cameo: str
    plover_type: str | None
    plover_mode: str | None
    valid_time: ValidTime
    place: Place | None
    modality: str
    attributed_to: str | None
    sources: tuple[Source, ...]
    topics: tuple[str, ...]
    cardinality_text: str | None
    """For an aggregate report ("frequently"): the source's own words, never split up."""
    min_count: int | None
    negated: bool
    claim: str | None


# -- pure view functions -------------------------------------------------------------------------


def _fold(facts: Iterable[Stored]) -> tuple[Record, list[SourceAdded]]:
    record = Record()
    added: list[SourceAdded] = []
    for stored in facts:
        record = evolve_record(record, stored)
        if isinstance(stored.event, SourceAdded):
            added.append(stored.event)
    return record, added


def _live(record: Record) -> list[tuple[str, Any]]:
    return [(i, fact) for i, fact in record.facts.items() if i not in record.retracted]


def _corroborations(added: list[SourceAdded], live_ids: set[str]) -> tuple[Source, ...]:
    return tuple(a.source for a in added if a.target_event_id in live_ids)


def interaction_from(facts: Iterable[Stored]) -> InteractionView | None:
    """An interaction's current view from its stream's events, in feed order.

    Args:
        facts: Every event of the interaction's stream (amendments included).

    Returns:
        The view (corrections applied, corroborating sources appended), or ``None`` if the
        interaction itself was retracted or never recorded.
    """
    # Most interactions are one event and nothing else: folding that into a record gives the
    # event itself, at several times the cost of building the view.
    if isinstance(facts, list | tuple) and len(facts) == 1:
        only = facts[0].event
        if isinstance(only, INTERACTION_EVENTS):
            return _interaction_view(only, only.sources)
    record, added = _fold(facts)
    live = _live(record)
    found = next(((i, f) for i, f in live if isinstance(f, INTERACTION_EVENTS)), None)
    if found is None:
        return None
    event_id, event = found
    return _interaction_view(event, (*event.sources, *_corroborations(added, {event_id})))


def _interaction_view(event: Any, sources: tuple[Source, ...]) -> InteractionView:
    return InteractionView(
        interaction_id=event.interaction_id,
        kind=_KINDS[type(event)],
        participants=event.participants,
        valid_time=event.valid_time,
        place=event.place,
        topics=event.topics,
        modality=event.modality,
        attributed_to=event.attributed_to,
        coding=event.coding,
        sources=sources,
        meeting_id=event.meeting_id,
        format=getattr(event, "format", None),
        quote=getattr(event, "quote", None),
        cardinality_text=getattr(event, "cardinality_text", None),
        min_count=getattr(event, "min_count", None),
        claim=getattr(event, "claim", None),
        negated=getattr(event, "negated", False),
        subject=getattr(event, "subject", None),
    )


def actor_from(facts: Iterable[Stored]) -> ActorView | None:
    """An actor's current view from its stream's events, in feed order.

    Args:
        facts: Every event of the actor's stream (amendments included).

    Returns:
        The view (retracted aliases, roles and merges left out, corrections applied), or
        ``None`` if the registration was retracted or never recorded.
    """
    record, added = _fold(facts)
    live = _live(record)
    registered = next((f for _i, f in live if isinstance(f, ActorRegistered)), None)
    if registered is None:
        return None
    aliases = [a.text for a in registered.aliases]
    roles: list[RoleView] = []
    merged: list[str] = []
    for _event_id, fact in live:
        if isinstance(fact, AliasAdded) and fact.alias.text not in aliases:
            aliases.append(fact.alias.text)
        elif isinstance(fact, RoleAssigned):
            roles.append(
                RoleView(
                    organisation_id=fact.organisation_id,
                    title=fact.title_as_reported,
                    role_code=fact.role_code,
                    valid_time=fact.valid_time,
                )
            )
        elif isinstance(fact, ActorsMerged) and fact.merged_actor_id not in merged:
            merged.append(fact.merged_actor_id)
    return ActorView(
        actor_id=registered.actor_id,
        kind=registered.kind,
        canonical_name=registered.canonical_name,
        aliases=tuple(aliases),
        cameo_code=registered.cameo_code,
        wikidata_qid=registered.wikidata_qid,
        country=registered.country,
        roles=tuple(roles),
        merged=tuple(merged),
        sources=(*registered.sources, *_corroborations(added, {i for i, _f in live})),
    )


# -- tables --------------------------------------------------------------------------------------


@functools.cache
def _sql(statement: str, prefix: str, version: int) -> str:
    """``statement`` with this prefix's and version's table names filled in."""
    if _PREFIX.fullmatch(prefix) is None:
        raise ValueError(f"table prefix {prefix!r} may hold only a-z, 0-9 and _")
    return statement.format(
        interactions=f"{prefix}interactions_v{version}",
        links=f"{prefix}interaction_actors_v{version}",
        actors=f"{prefix}actors_v{version}",
        roles=f"{prefix}actor_roles_v{version}",
    )


def _json(value: Any) -> str:
    return _ENCODER.encode(value).decode()


_ITEMS: Final = ("interaction", "actor")
"""The categories whose streams are this projection's items."""


class _Batch:
    """A batch grouped by item: each interaction's and actor's new facts, and the version of
    the item's stream below which its facts came in earlier batches."""

    def __init__(self) -> None:
        self.interactions: dict[str, list[Stored]] = {}
        self.actors: dict[str, list[Stored]] = {}
        self.first_version: dict[str, int] = {}

    def add(self, event: RecordedEvent, stored: Stored) -> None:
        # Amendments live in the stream of the fact they amend, so the stream is the item.
        category, _, item = event.stream_id.partition("-")
        groups = {_ITEMS[0]: self.interactions, _ITEMS[1]: self.actors}.get(category)
        if groups is None:
            return
        groups.setdefault(item, []).append(stored)
        self.first_version.setdefault(event.stream_id, event.stream_version)


class ContactsProjection:
    """Interactions, who took part in them, and the actor directory; see the module docstring.

    Args:
        name: The projection's checkpoint name.
        prefix: Prepended to every table name (tests isolate their tables with it).
        version: The projection's version, carried by every table name.
    """

    filter: FeedFilter | None = FeedFilter(categories=("interaction", "actor"))

    def __init__(self, *, name: str = "contacts", prefix: str = "", version: int = 1) -> None:
        self.name = name
        self.prefix = prefix
        self.version = version
        _sql("", prefix, version)  # refuse a bad prefix now rather than at the first batch
        self._graph = GraphWriter(prefix, version)

    def _q(self, statement: str) -> str:
        return _sql(statement, self.prefix, self.version)

    def _table(self, name: str) -> str:
        return _sql(f"{{{name}}}", self.prefix, self.version)

    async def setup(self, conn: asyncpg.Connection) -> None:
        """Create this version's tables if they do not exist, and upgrade an older layout."""
        await conn.execute(self._q(CREATE_SQL))
        await self._graph.setup(conn)
        # Asked first: ALTER TABLE locks out readers even when it has nothing to do.
        if await conn.fetchval(VIEW_TYPE_SQL, self._table("interactions")) == "jsonb":
            await conn.execute(self._q(UPGRADE_SQL))

    async def drop(self, conn: asyncpg.Connection) -> None:
        """Drop this version's tables (after a newer version took over)."""
        await conn.execute(self._q(DROP_SQL))
        await self._graph.drop(conn)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        """Apply a batch: group it by item, recompute each affected item once, write back."""
        await self.apply_prepared(conn, events, await self.prepare(conn, events))

    async def prepare(
        self, conn: asyncpg.Connection | asyncpg.Pool, events: Sequence[RecordedEvent]
    ) -> _Rows:
        """Everything but the writes: the rows of the batch's items, computed from the batch
        and the log alone (no table of this projection is read), so the runner may prepare
        the next batch while this one is written."""
        # Most items start in the batch that holds their first event: nothing to look up.
        continued = {
            stream_id: first
            for stream_id, first in _first_versions(events).items()
            if first > 1 and stream_id.partition("-")[0] in _ITEMS
        }
        earlier = (
            await conn.fetch(EARLIER_FACTS_SQL, list(continued), list(continued.values()))
            if continued
            else []
        )
        # Every object decoded for the batch dies inside the block: the collector, paused
        # while they live, has only the rows left to look at when it runs again.
        with collector_paused():
            rows = _rows_of(events, earlier)
            rows.graph = self._graph.prepare(
                rows.new_interactions, rows.amended_interactions, rows.links
            )
            return rows

    async def apply_prepared(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], prepared: object
    ) -> None:
        """Write what ``prepare`` computed for ``events``."""
        del events  # everything needed is in the prepared rows
        rows = cast("_Rows", prepared)
        # Before the rows are written: the graph reads the earlier form of amended ones.
        await self._graph.apply(conn, rows.graph)
        # An interaction whose stream begins in this batch has no row yet: COPY it in, which
        # costs the server half of what an upsert of the same rows does.
        if rows.new_interactions:
            await conn.copy_records_to_table(
                self._table("interactions"),
                schema_name="projections",
                columns=INTERACTION_COLUMNS,
                records=rows.new_interactions,
            )
        if rows.amended_interactions:
            columns = [list(c) for c in zip(*rows.amended_interactions, strict=True)]
            await conn.execute(self._q(UPSERT_INTERACTIONS_SQL), *columns)
        if rows.continued_interactions:
            # Only items from earlier batches can have rows to replace.
            await conn.execute(self._q(DELETE_LINKS_SQL), rows.continued_interactions)
        if rows.links:
            await conn.copy_records_to_table(
                self._table("links"),
                schema_name="projections",
                columns=LINK_COLUMNS,
                records=rows.links,
            )
        if rows.actor_columns[0]:
            await conn.execute(self._q(UPSERT_ACTORS_SQL), *rows.actor_columns)
            if rows.continued_actors:
                await conn.execute(self._q(DELETE_ROLES_SQL), rows.continued_actors)
            if rows.role_columns[0]:
                await conn.execute(self._q(INSERT_ROLES_SQL), *rows.role_columns)


def _rows_of(events: Sequence[RecordedEvent], earlier_rows: Sequence[asyncpg.Record]) -> _Rows:
    """The rows of the batch's items, from the batch and their earlier facts in the log
    (rows of ``EARLIER_FACTS_SQL``)."""
    batch = _Batch()
    rows = _Rows()
    alone = _lone_streams(events)
    for event in events:
        if event.stream_id in alone and event.stream_version == 1:
            shortcut = _SINGLE_FACT.rows(event)
            if shortcut is not None:
                rows.new_interactions.append(shortcut[0])
                rows.links.extend(shortcut[1])
                continue
        batch.add(event, Stored(str(event.event_id), _decode(event)))
    earlier: dict[str, list[Stored]] = {}
    for row in earlier_rows:
        event_id = str(row["event_id"])
        fact = CATALOGUE.decode_data(
            row["type"], row["schema_version"], row["data"], event_id=event_id
        )
        earlier.setdefault(row["stream_id"], []).append(Stored(event_id, cast("DomainEvent", fact)))
    if batch.interactions:
        rows.interactions(
            _merge(earlier, "interaction", batch.interactions), _continued(batch, "interaction")
        )
    if batch.actors:
        rows.actors(_merge(earlier, "actor", batch.actors), _continued(batch, "actor"))
    return rows


def _lone_streams(events: Iterable[RecordedEvent]) -> set[str]:
    """The interaction streams that have one event in the batch."""
    seen: set[str] = set()
    twice: set[str] = set()
    for event in events:
        stream = event.stream_id
        if stream in seen:
            twice.add(stream)
        elif stream.startswith("interaction-"):
            seen.add(stream)
    return seen - twice


def _first_versions(events: Iterable[RecordedEvent]) -> dict[str, int]:
    first: dict[str, int] = {}
    for event in events:
        first.setdefault(event.stream_id, event.stream_version)
    return first


class _Rows:
    """A batch's rows: interactions and their participants row by row (new interactions are
    copied in, the others upserted), actors and roles column by column."""

    def __init__(self) -> None:
        self.new_interactions: list[InteractionRow] = []
        self.amended_interactions: list[InteractionRow] = []
        self.links: list[LinkRow] = []
        self.continued_interactions: list[str] = []
        self.actor_columns: list[list[Any]] = [[] for _ in range(5)]
        self.role_columns: list[list[Any]] = [[] for _ in range(5)]
        self.continued_actors: list[str] = []
        self.graph: GraphBatch | None = None

    def interactions(self, facts: dict[str, list[Stored]], continued: list[str]) -> None:
        self.continued_interactions = continued
        earlier = set(continued)
        links = self.links
        for item, item_facts in facts.items():
            view = interaction_from(item_facts)
            rows = self.amended_interactions if item in earlier else self.new_interactions
            if view is None:
                kind = next(
                    (_KINDS[type(f.event)] for f in item_facts if type(f.event) in _KINDS), None
                )
                rows.append(retracted_row(item, kind))
                continue
            rows.append(
                interaction_row(item, view.kind, _json(view), view.valid_time, negated=view.negated)
            )
            links.extend(link_rows(item, view.participants))

    def actors(self, facts: dict[str, list[Stored]], continued: list[str]) -> None:
        self.continued_actors = continued
        columns, roles = self.actor_columns, self.role_columns
        for item, item_facts in facts.items():
            view = actor_from(item_facts)
            row = (
                item,
                view.kind if view is not None else None,
                view.canonical_name if view is not None else None,
                _json(view.aliases if view is not None else []),
                _json(view) if view is not None else None,
            )
            for column, value in zip(columns, row, strict=True):
                column.append(value)
            for role in view.roles if view is not None else ():
                values = (
                    item,
                    role.organisation_id,
                    role.title,
                    role.valid_time.lower,
                    role.valid_time.upper,
                )
                for column, cell in zip(roles, values, strict=True):
                    column.append(cell)


def _continued(batch: _Batch, category: str) -> list[str]:
    """Items of ``category`` whose streams began in an earlier batch."""
    prefix = f"{category}-"
    return [
        stream_id[len(prefix) :]
        for stream_id, first in batch.first_version.items()
        if first > 1 and stream_id.startswith(prefix)
    ]


def _merge(
    earlier: dict[str, list[Stored]], category: str, new: dict[str, list[Stored]]
) -> dict[str, list[Stored]]:
    return {item: [*earlier.get(f"{category}-{item}", []), *facts] for item, facts in new.items()}


def _decode(recorded: RecordedEvent) -> DomainEvent:
    return cast("DomainEvent", CATALOGUE.decode(recorded))


# -- queries -------------------------------------------------------------------------------------


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
        _sql(HISTORY_SQL, prefix, version),
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


async def get_actor(
    conn: asyncpg.Connection | asyncpg.Pool,
    actor_id: str,
    *,
    version: int = 1,
    prefix: str = "",
) -> ActorView | None:
    """The actor registered under ``actor_id``, or the one it was merged into; ``None`` if
    there is none (or its registration was retracted)."""
    text = await conn.fetchval(_sql(GET_ACTOR_SQL, prefix, version), actor_id)
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
        _sql(SEARCH_ACTORS_SQL, prefix, version), text, f"{escaped}%", limit, f"% {escaped}%"
    )
    return [msgspec.json.decode(r["view"], type=ActorView) for r in rows]
