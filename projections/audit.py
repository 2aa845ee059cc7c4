"""The audit view: for any item (an interaction, a meeting, a declaration, an actor) what was
reported about it, corrected and retracted, when, by whom, on what grounds, and what a correction
changed: each corrected field's value before and after.

A correction's "before" is its target as the log held it just before the correction: the fact
as recorded (upcast to today's type), with the stream's earlier corrections of it applied, as
every view applies them. It is computed when the correction is applied, from the log alone (the
target and the corrections before it, all in the correction's stream), so a rebuild in batches
of any size writes the same rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal
from uuid import UUID

import msgspec

from events.domain.amendments import apply_changes
from events.domain.catalogue import CATALOGUE, EventCorrected
from events.errors import EventStoreError
from projections.common import RESTART_SQL, layout_outdated, stamp_layout

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg

    from events.records import FeedFilter, RecordedEvent

__all__ = ("AuditEntry", "AuditProjection", "audit_trail")

CREATE_SQL: Final = """
CREATE TABLE IF NOT EXISTS projections.{table} (
    position        bigint PRIMARY KEY,
    stream_id       text NOT NULL,
    event_id        uuid NOT NULL,
    target_event_id uuid,
    action          text NOT NULL,
    type            text NOT NULL,
    recorded_at     timestamptz NOT NULL,
    recorded_by     text,
    reason          text,
    changes         jsonb,
    before          jsonb
);
CREATE INDEX IF NOT EXISTS {table}_stream_idx ON projections.{table} (stream_id, position);
-- Each of the trail's three lookups walks an index in position order and stops after the page:
-- with an index on the id alone, the page's ORDER BY position LIMIT led the planner to walk the
-- primary key and filter every row (250 ms at 1M events).
CREATE INDEX IF NOT EXISTS {table}_target_position_idx
    ON projections.{table} (target_event_id, position) WHERE target_event_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS {table}_event_position_idx ON projections.{table} (event_id, position);
DROP INDEX IF EXISTS projections.{table}_target_idx;
DROP INDEX IF EXISTS projections.{table}_event_idx
"""
DROP_SQL: Final = "DROP TABLE IF EXISTS projections.{table}"
INSERT_SQL: Final = """
INSERT INTO projections.{table} (position, stream_id, event_id, target_event_id, action, type,
                                 recorded_at, recorded_by, reason, changes, before)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::uuid[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::text[], $9::text[], $10::jsonb[], $11::jsonb[])
ON CONFLICT (position) DO NOTHING
"""
# What the batch's corrections need to know what they changed: in each stream that holds one
# ($1), up to the last of them there ($2), the corrected facts ($3) and every correction, in
# stream order. Amendments are recorded in the stream of the fact they amend.
CORRECTED_FACTS_SQL: Final = """
SELECT e.event_id, e.type, e.schema_version, e.data::text AS data
FROM unnest($1::text[], $2::bigint[]) AS w(stream_id, last)
JOIN events AS e ON e.stream_id = w.stream_id AND e.stream_version <= w.last
WHERE e.event_id = any($3::uuid[]) OR e.type = 'record.event_corrected.v1'
ORDER BY e.stream_id, e.stream_version
"""
# An item's trail is the entries of its stream ($1), or those of one event ($2, an id): the
# event itself and what amends it. Each way is walked along its own index from the page's key
# ($3, a position) and cut to the page ($4), so a page costs what it holds however long the
# trail or the log; DISTINCT ON keeps an entry that two ways find once.
TRAIL_SQL: Final = """
SELECT DISTINCT ON (position) position, stream_id, event_id, target_event_id, action, type,
       recorded_at, recorded_by, reason, changes::text, before::text
FROM (
    (SELECT * FROM projections.{table}
     WHERE stream_id = $1 AND position > $3 ORDER BY position LIMIT $4)
    UNION ALL
    (SELECT * FROM projections.{table}
     WHERE event_id = $2 AND position > $3 ORDER BY position LIMIT $4)
    UNION ALL
    (SELECT * FROM projections.{table}
     WHERE target_event_id = $2 AND position > $3 ORDER BY position LIMIT $4)
) AS found
ORDER BY position
LIMIT $4
"""

Action = Literal["reported", "corroborated", "corrected", "retracted"]
_CORRECTED: Final = "record.event_corrected.v1"
_ACTIONS: Final = {
    "record.source_added.v1": "corroborated",
    _CORRECTED: "corrected",
    "record.event_retracted.v1": "retracted",
}


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One thing that happened to an item.

    For a correction, ``changes`` holds each corrected field's new value and ``before`` the
    same fields' values just before it (the fact as recorded, earlier corrections applied);
    both are ``None`` for every other action.
    """

    stream_id: str
    event_id: str
    action: Action
    type: str
    recorded_at: datetime
    recorded_by: str | None = None
    target_event_id: str | None = None
    reason: str | None = None
    changes: dict[str, Any] | None = None
    """A correction's fields after it."""
    before: dict[str, Any] | None = None
    """A correction's fields before it."""


class _Amendment(msgspec.Struct):
    target_event_id: str | None = None
    reason: str | None = None
    changes: dict[str, Any] | None = None


class AuditProjection:
    """Every event of every item, classified; amendments point at what they amend."""

    filter: FeedFilter | None = None
    layout: Final = 2
    """What the code makes of the log (``projections.common``): 2, corrections' ``before``."""

    def __init__(self, *, name: str = "audit", version: int = 1) -> None:
        self.name = name
        self.version = version
        self.table = f"{name}_v{version}"
        self.tables = (self.table,)

    async def setup(self, conn: asyncpg.Connection) -> None:
        """Create the table if needed; one of an older layout is replaced by an empty one and
        the checkpoint goes back to the start, so the runner fills it from the whole log."""
        async with conn.transaction():
            if await layout_outdated(conn, self.table, self.layout):
                await conn.execute(DROP_SQL.format(table=self.table))
                await conn.execute(RESTART_SQL, self.name, self.version)
            await conn.execute(CREATE_SQL.format(table=self.table))
            await stamp_layout(conn, self.table, self.layout)

    async def drop(self, conn: asyncpg.Connection) -> None:
        """Drop this version's table."""
        await conn.execute(DROP_SQL.format(table=self.table))

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        """Insert one row per event, in one statement."""
        befores = await _befores(conn, events)
        columns: list[list[Any]] = [[] for _ in range(11)]
        for event in events:
            action = _ACTIONS.get(event.type, "reported")
            amendment = (
                msgspec.json.decode(event.data, type=_Amendment)
                if action != "reported"
                else _Amendment()
            )
            row = (
                event.position,
                event.stream_id,
                event.event_id,
                amendment.target_event_id,
                action,
                event.type,
                event.recorded_at,
                event.decoded_metadata().recorded_by,
                amendment.reason,
                msgspec.json.encode(amendment.changes).decode() if amendment.changes else None,
                befores.get(str(event.event_id)),
            )
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        await conn.execute(INSERT_SQL.format(table=self.table), *columns)


async def _befores(conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> dict[str, str]:
    """The fields each correction among ``events`` changed, as they stood just before it
    (JSON), by the correction's event id."""
    last: dict[str, int] = {}
    targets: list[UUID] = []
    for event in events:
        if event.type == _CORRECTED:
            last[event.stream_id] = event.stream_version
            target = msgspec.json.decode(event.data, type=_Amendment).target_event_id
            if target is not None and _looks_like_uuid(target):
                targets.append(UUID(target))
    if not last:
        return {}
    rows = await conn.fetch(CORRECTED_FACTS_SQL, list(last), list(last.values()), targets)
    wanted = {str(event.event_id) for event in events if event.type == _CORRECTED}
    facts: dict[str, Any] = {}  # by event id: the fact as corrected so far
    befores: dict[str, str] = {}
    for r in rows:
        event_id = str(r["event_id"])
        try:
            fact = CATALOGUE.decode_data(
                r["type"], r["schema_version"], r["data"], event_id=event_id
            )
        except EventStoreError:  # a type this build does not know: its fields are unknown
            continue
        if not isinstance(fact, EventCorrected):
            facts[event_id] = fact
            continue
        target = facts.get(fact.target_event_id)
        if target is None:
            continue
        if event_id in wanted:
            before = {name: getattr(target, name, None) for name in fact.changes}
            befores[event_id] = msgspec.json.encode(before).decode()
        try:
            facts[fact.target_event_id] = apply_changes(target, fact.changes)
        except msgspec.ValidationError:  # one that does not fit (the handler never appends it)
            continue
    return befores


async def audit_trail(
    conn: asyncpg.Connection | asyncpg.Pool,
    item: str,
    *,
    table: str = "audit_v1",
    after: int | None = None,
    limit: int,
) -> list[tuple[int, AuditEntry]]:
    """A page of the audit trail of a stream (``interaction-x``) or of one event id: at most
    ``limit`` entries after the position ``after`` (from the start when ``None``), each with its
    position, oldest first (log position order).

    The table only ever gains rows, one per event, each at its event's position, and never
    changes one: a walk by position therefore never repeats, reorders or loses an entry it has
    passed; an entry recorded during the walk shows up when its position lies beyond the page
    read last (positions may commit out of order), otherwise on the next walk.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    event_id = UUID(item) if _looks_like_uuid(item) else None
    rows = await conn.fetch(
        TRAIL_SQL.format(table=table), item, event_id, 0 if after is None else after, limit
    )
    return [
        (
            r["position"],
            AuditEntry(
                stream_id=r["stream_id"],
                event_id=str(r["event_id"]),
                action=r["action"],
                type=r["type"],
                recorded_at=r["recorded_at"],
                recorded_by=r["recorded_by"],
                target_event_id=str(r["target_event_id"]) if r["target_event_id"] else None,
                reason=r["reason"],
                changes=msgspec.json.decode(r["changes"]) if r["changes"] else None,
                before=msgspec.json.decode(r["before"]) if r["before"] else None,
            ),
        )
        for r in rows
    ]


def _looks_like_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True
