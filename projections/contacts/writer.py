"""The contacts projection's row writer: a batch grouped by item, each affected item's view
recomputed once by the pure fold, and written back with one statement per table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

import msgspec

from events.domain.amendments import Stored
from events.domain.catalogue import CATALOGUE
from events.records import FeedFilter, RecordedEvent
from projections.collector import collector_paused
from projections.common import first_versions
from projections.contacts.fold import actor_from, interaction_from
from projections.contacts.schema import (
    CREATE_SQL,
    DELETE_LINKS_SQL,
    DELETE_ROLES_SQL,
    DROP_SQL,
    EARLIER_FACTS_SQL,
    INSERT_ROLES_SQL,
    UPGRADE_SQL,
    UPSERT_ACTORS_SQL,
    UPSERT_INTERACTIONS_SQL,
    VIEW_TYPE_SQL,
    sql,
)
from projections.contacts.views import KINDS, InteractionView
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

    import asyncpg

    from events.domain.catalogue import DomainEvent

__all__ = ("ContactsProjection",)

_ENCODER: Final = msgspec.json.Encoder()
_SINGLE_FACT: Final = SingleFactRows(CATALOGUE, KINDS, InteractionView)
"""Rows of interactions that are one event, without decoding the event (see its module)."""


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
        sql("", prefix, version)  # refuse a bad prefix now rather than at the first batch

    def _q(self, statement: str) -> str:
        return sql(statement, self.prefix, self.version)

    def _table(self, name: str) -> str:
        return sql(f"{{{name}}}", self.prefix, self.version)

    async def setup(self, conn: asyncpg.Connection) -> None:
        """Create this version's tables if they do not exist, and upgrade an older layout."""
        await conn.execute(self._q(CREATE_SQL))
        # Asked first: ALTER TABLE locks out readers even when it has nothing to do.
        if await conn.fetchval(VIEW_TYPE_SQL, self._table("interactions")) == "jsonb":
            await conn.execute(self._q(UPGRADE_SQL))

    async def drop(self, conn: asyncpg.Connection) -> None:
        """Drop this version's tables (after a newer version took over)."""
        await conn.execute(self._q(DROP_SQL))

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
            return _rows_of(events, earlier)

    async def apply_prepared(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], prepared: object
    ) -> None:
        """Write what ``prepare`` computed for ``events``."""
        del events  # everything needed is in the prepared rows
        rows = cast("_Rows", prepared)
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

    def interactions(self, facts: dict[str, list[Stored]], continued: list[str]) -> None:
        self.continued_interactions = continued
        earlier = set(continued)
        links = self.links
        for item, item_facts in facts.items():
            view = interaction_from(item_facts)
            rows = self.amended_interactions if item in earlier else self.new_interactions
            if view is None:
                kind = next(
                    (KINDS[type(f.event)] for f in item_facts if type(f.event) in KINDS), None
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
