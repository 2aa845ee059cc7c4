"""The contacts projection's row writer.

Applying a batch is set-based: the batch is decoded and grouped by item (an amendment is
recorded in the stream of the fact it amends, so the stream is the item); an item the batch
does not start gets its earlier facts from the log itself, in one query for the whole batch.
Each event of an item opens a version of it (``projections.system_time``): the item's view
after that event, computed by the pure fold, current from the event's cursor to the next event
of the item. So the versions depend on the events alone, never on the batches, and a rebuild
with any batch size equals the incrementally built tables row for row. The versions an item
had open before the batch are closed where its first new one opens (one UPDATE per table, for
the few items a batch continues), and every new version is copied in (COPY). All of that but
the writes reads nothing of this projection's tables (``prepare``), so the runner computes the
next batch while this one is written. An interaction that is one event and nothing else (most
are) skips the fold: its view is the stored JSON with its kind added
(``projections.single_fact``, which says when that holds).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final, cast

import msgspec

from events.domain.amendments import Stored
from events.domain.catalogue import CATALOGUE
from events.records import Cursor, FeedFilter, RecordedEvent
from projections.collector import collector_paused
from projections.common import RESTART_SQL, first_versions, layout_outdated, stamp_layout
from projections.contacts.fold import actor_from, interaction_from
from projections.contacts.schema import (
    CLOSE_ACTORS_SQL,
    CLOSE_INTERACTIONS_SQL,
    CLOSE_LINKS_SQL,
    CLOSE_ROLES_SQL,
    CREATE_SQL,
    CUSTOM_PLANS_SQL,
    DROP_SQL,
    EARLIER_FACTS_SQL,
    OLD_LAYOUT_SQL,
    TABLES,
    sql,
)
from projections.contacts.search import setup_search
from projections.contacts.views import KINDS, InteractionView
from projections.graph import GraphBatch, GraphWriter
from projections.graph.deltas import RoleYears, role_years
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
    import datetime
    from collections.abc import Iterable, Sequence

    import asyncpg

    from events.domain.catalogue import DomainEvent

__all__ = ("ContactsProjection",)

log = logging.getLogger(__name__)

ACTOR_COLUMNS: Final = (
    "actor_id",
    "kind",
    "canonical_name",
    "aliases",
    "view",
    "sys_from",
    "sys_to",
)
ROLE_COLUMNS: Final = (
    "actor_id",
    "organisation_id",
    "title",
    "lower",
    "upper",
    "sys_from",
    "sys_to",
)
ActorRow = tuple[str, str | None, str | None, list[str], str | None, bytes, bytes | None]
RoleRow = tuple[
    str, str, str | None, "datetime.date | None", "datetime.date | None", bytes, bytes | None
]

_ENCODER: Final = msgspec.json.Encoder()
_SINGLE_FACT: Final = SingleFactRows(CATALOGUE, KINDS, InteractionView)
"""Rows of interactions that are one event, without decoding the event (see its module)."""
_ITEMS: Final = ("interaction", "actor")
"""The categories whose streams are this projection's items."""

_SYS_TO: Final = INTERACTION_COLUMNS.index("sys_to")
_LINK_SYS_TO: Final = LINK_COLUMNS.index("sys_to")
_ROLE_SYS_TO: Final = ROLE_COLUMNS.index("sys_to")

Changes = list[tuple[bytes, Stored]]
"""An item's facts in a batch, each with the cursor key of its event."""
Closed = tuple[str, bytes, bytes]
"""A version to close: its item, where it began and where it ends (cursor keys)."""


def _json(value: Any) -> str:
    return _ENCODER.encode(value).decode()


class _Batch:
    """A batch grouped by item: each interaction's and actor's new facts with their cursor
    keys."""

    def __init__(self) -> None:
        self.interactions: dict[str, Changes] = {}
        self.actors: dict[str, Changes] = {}

    def add(self, event: RecordedEvent, stored: Stored) -> None:
        # Amendments live in the stream of the fact they amend, so the stream is the item.
        category, _, item = event.stream_id.partition("-")
        groups = {_ITEMS[0]: self.interactions, _ITEMS[1]: self.actors}.get(category)
        if groups is None:
            return
        groups.setdefault(item, []).append((event.cursor.key(), stored))


class ContactsProjection:
    """Interactions, who took part in them, and the actor directory, system-versioned; see the
    package docstring.

    Args:
        name: The projection's checkpoint name.
        prefix: Prepended to every table name (tests isolate their tables with it).
        version: The projection's version, carried by every table name.
    """

    filter: FeedFilter | None = FeedFilter(categories=("interaction", "actor"))
    layout: Final = 2
    """What the code makes of the log (``projections.common``): 2, actor views with every list
    (``[]`` when empty), and the graph's spans counting roles' windows."""

    def __init__(self, *, name: str = "contacts", prefix: str = "", version: int = 1) -> None:
        self.name = name
        self.prefix = prefix
        self.version = version
        sql("", prefix, version)  # refuse a bad prefix now rather than at the first batch
        self._graph = GraphWriter(prefix, version)
        self.tables = (*(self._table(key) for key in TABLES), *self._graph.tables)

    def _q(self, statement: str) -> str:
        return sql(statement, self.prefix, self.version)

    def _table(self, name: str) -> str:
        return sql(f"{{{name}}}", self.prefix, self.version)

    async def setup(self, conn: asyncpg.Connection) -> None:
        """Create this version's tables if they do not exist.

        Tables of this version in an earlier layout are dropped and this version's checkpoint
        goes back to the start of the feed, so the runner builds them again from the log:
        tables before system time say what is current but not since when, which no upgrade
        can recover; links whose ids compare by the locale's rules have other indexes; and the
        rows of an older layout stamp (``projections.common``) are not what this code makes.
        """
        names = [self._table(key) for key in TABLES]
        main = self._table("interactions")
        if any(
            r[0] for r in await conn.fetch(OLD_LAYOUT_SQL, names, self._table("links"))
        ) or await layout_outdated(conn, main, self.layout):
            log.warning(
                "projection %s v%s: tables in an earlier layout; rebuilding them from the start",
                self.name,
                self.version,
            )
            async with conn.transaction():
                await conn.execute(self._q(DROP_SQL))
                await self._graph.drop(conn)
                await conn.execute(RESTART_SQL, self.name, self.version)
                await conn.execute(self._q(CREATE_SQL))
                await stamp_layout(conn, main, self.layout)
                await self._graph.setup(conn)
                await setup_search(conn, self.prefix, self.version)
            return
        await conn.execute(self._q(CREATE_SQL))
        await stamp_layout(conn, main, self.layout)
        await self._graph.setup(conn)
        await setup_search(conn, self.prefix, self.version)

    async def drop(self, conn: asyncpg.Connection) -> None:
        """Drop this version's tables (after a newer version took over)."""
        await conn.execute(self._q(DROP_SQL))
        await self._graph.drop(conn)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        """Apply a batch: group it by item, compute each affected item's versions, write back."""
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
            for stream_id, first in first_versions(events).items()
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
            rows.graph = self._graph.prepare(*rows.final_forms(), *rows.final_roles())
            return rows

    async def apply_prepared(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], prepared: object
    ) -> None:
        """Write what ``prepare`` computed for ``events``."""
        del events  # everything needed is in the prepared rows
        rows = cast("_Rows", prepared)
        # Every statement of the batch planned for its own arrays (see CUSTOM_PLANS_SQL): the
        # graph's and the closing statements' generic plans, cached while the tables were
        # small, scanned whole tables each batch once they had grown.
        if rows.closed_interactions or rows.closed_actors or rows.graph is not None:
            await conn.execute(CUSTOM_PLANS_SQL)
        # First: the graph reads the open versions of continued interactions as they were.
        await self._graph.apply(conn, rows.graph)
        # Closed before the new versions go in, which would otherwise match "still open" too.
        if rows.closed_interactions:
            closed = [list(c) for c in zip(*rows.closed_interactions, strict=True)]
            await conn.execute(self._q(CLOSE_INTERACTIONS_SQL), *closed)
            await conn.execute(self._q(CLOSE_LINKS_SQL), *closed)
        if rows.closed_actors:
            closed = [list(c) for c in zip(*rows.closed_actors, strict=True)]
            await conn.execute(self._q(CLOSE_ACTORS_SQL), *closed)
            await conn.execute(self._q(CLOSE_ROLES_SQL), *closed)
        for table, columns, records in (
            ("interactions", INTERACTION_COLUMNS, rows.interactions),
            ("links", LINK_COLUMNS, rows.links),
            ("actors", ACTOR_COLUMNS, rows.actors),
            ("roles", ROLE_COLUMNS, rows.roles),
        ):
            if records:
                await conn.copy_records_to_table(
                    self._table(table),
                    schema_name="projections",
                    columns=columns,
                    records=records,
                )


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
                rows.interactions.append(shortcut[0])
                rows.links.extend(shortcut[1])
                continue
        batch.add(event, Stored(str(event.event_id), _decode(event)))
    earlier: dict[str, list[Stored]] = {}
    opened: dict[str, bytes] = {}  # by stream: where its open version began
    for row in earlier_rows:
        opened[row["stream_id"]] = Cursor(row["transaction_id"], row["position"]).key()
        event_id = str(row["event_id"])
        fact = CATALOGUE.decode_data(
            row["type"], row["schema_version"], row["data"], event_id=event_id
        )
        earlier.setdefault(row["stream_id"], []).append(Stored(event_id, cast("DomainEvent", fact)))
    if batch.interactions:
        rows.add_interactions(batch.interactions, _earlier(earlier, "interaction"))
        rows.closed_interactions = _closed("interaction", batch.interactions, opened)
    if batch.actors:
        rows.add_actors(batch.actors, _earlier(earlier, "actor"))
        rows.closed_actors = _closed("actor", batch.actors, opened)
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


def _earlier(facts: dict[str, list[Stored]], category: str) -> dict[str, list[Stored]]:
    """The earlier facts of ``category``'s items, by item."""
    prefix = f"{category}-"
    return {s[len(prefix) :]: f for s, f in facts.items() if s.startswith(prefix)}


def _closed(category: str, changes: dict[str, Changes], opened: dict[str, bytes]) -> list[Closed]:
    """The open version of each item of ``changes`` whose stream began in an earlier batch:
    where it began (``opened``, by stream) and where it ends (the item's first new event)."""
    closed: list[Closed] = []
    for item, item_changes in changes.items():
        began = opened.get(f"{category}-{item}")
        if began is not None:
            closed.append((item, began, item_changes[0][0]))
    return closed


def _versions(
    changes: Changes, earlier: list[Stored]
) -> Iterable[tuple[list[Stored], bytes, bytes | None]]:
    """Each version an item's ``changes`` open: the facts up to its event, and its range (up
    to the item's next event in the batch; still open after the last)."""
    facts = list(earlier)
    for n, (key, stored) in enumerate(changes):
        facts.append(stored)
        until = changes[n + 1][0] if n + 1 < len(changes) else None
        yield facts, key, until


class _Rows:
    """A batch's rows, all of them new versions (copied in), and the open versions of earlier
    batches that the batch closes."""

    def __init__(self) -> None:
        self.interactions: list[InteractionRow] = []
        self.links: list[LinkRow] = []
        self.actors: list[ActorRow] = []
        self.roles: list[RoleRow] = []
        self.closed_interactions: list[Closed] = []
        self.closed_actors: list[Closed] = []
        self.graph: GraphBatch | None = None

    def final_forms(self) -> tuple[list[InteractionRow], list[InteractionRow], list[LinkRow]]:
        """What the graph needs of the batch: the interactions' versions still open after it,
        split into those new in the batch and those it continues, and their link rows."""
        continued = {item for item, _, _ in self.closed_interactions}
        new: list[InteractionRow] = []
        amended: list[InteractionRow] = []
        for row in self.interactions:
            if row[_SYS_TO] is None:
                (amended if row[0] in continued else new).append(row)
        links = [link for link in self.links if link[_LINK_SYS_TO] is None]
        return new, amended, links

    def final_roles(self) -> tuple[dict[str, RoleYears], set[str]]:
        """What the graph needs of the batch's actors: the roles each holds after it (as
        spans see them), and which of them it continues."""
        held: dict[str, list[tuple[str, int | None, int | None]]] = {
            row[0]: [] for row in self.actors
        }
        for role in self.roles:
            if role[_ROLE_SYS_TO] is None:
                lower, upper = role[3], role[4]
                held[role[0]].append(
                    (
                        role[1],
                        lower.year if lower is not None else None,
                        upper.year if upper is not None else None,
                    )
                )
        continued = {item for item, _, _ in self.closed_actors}
        return {actor: role_years(roles) for actor, roles in held.items()}, continued

    def add_interactions(
        self, changes: dict[str, Changes], earlier: dict[str, list[Stored]]
    ) -> None:
        for item, item_changes in changes.items():
            for facts, key, until in _versions(item_changes, earlier.get(item, [])):
                view = interaction_from(facts)
                if view is None:
                    kind = next(
                        (KINDS[type(f.event)] for f in facts if type(f.event) in KINDS), None
                    )
                    self.interactions.append(retracted_row(item, kind, sys_from=key, sys_to=until))
                    continue
                days, negated = view.valid_time, view.negated
                self.interactions.append(
                    interaction_row(
                        item,
                        view.kind,
                        _json(view),
                        days,
                        negated=negated,
                        sys_from=key,
                        sys_to=until,
                    )
                )
                self.links.extend(
                    link_rows(
                        item,
                        view.participants,
                        kind=view.kind,
                        days=days,
                        negated=negated,
                        sys_from=key,
                        sys_to=until,
                    )
                )

    def add_actors(self, changes: dict[str, Changes], earlier: dict[str, list[Stored]]) -> None:
        for item, item_changes in changes.items():
            for facts, key, until in _versions(item_changes, earlier.get(item, [])):
                view = actor_from(facts)
                if view is None:
                    self.actors.append((item, None, None, [], None, key, until))
                    continue
                aliases = list(view.aliases)
                self.actors.append(
                    (item, view.kind, view.canonical_name, aliases, _json(view), key, until)
                )
                self.roles.extend(
                    (
                        item,
                        r.organisation_id,
                        r.title,
                        r.valid_time.lower,
                        r.valid_time.upper,
                        key,
                        until,
                    )
                    for r in view.roles
                )


def _decode(recorded: RecordedEvent) -> DomainEvent:
    return cast("DomainEvent", CATALOGUE.decode(recorded))
