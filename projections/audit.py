"""The audit view: for any item (an interaction, a meeting, a declaration, an actor) what was
reported about it, corrected and retracted, when, by whom, and on what grounds."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal
from uuid import UUID

import msgspec

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
    changes         jsonb
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
                                 recorded_at, recorded_by, reason, changes)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::uuid[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::text[], $9::text[], $10::jsonb[])
ON CONFLICT (position) DO NOTHING
"""
# An item's trail is the entries of its stream ($1), or those of one event ($2, an id): the
# event itself and what amends it. Each way is walked along its own index from the page's key
# ($3, a position) and cut to the page ($4), so a page costs what it holds however long the
# trail or the log; DISTINCT ON keeps an entry that two ways find once.
TRAIL_SQL: Final = """
SELECT DISTINCT ON (position) position, stream_id, event_id, target_event_id, action, type,
       recorded_at, recorded_by, reason, changes::text
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
_ACTIONS: Final = {
    "record.source_added.v1": "corroborated",
    "record.event_corrected.v1": "corrected",
    "record.event_retracted.v1": "retracted",
}


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One thing that happened to an item."""

    stream_id: str
    event_id: str
    action: Action
    type: str
    recorded_at: datetime
    recorded_by: str | None = None
    target_event_id: str | None = None
    reason: str | None = None
    changes: dict[str, Any] | None = None


class _Amendment(msgspec.Struct):
    target_event_id: str | None = None
    reason: str | None = None
    changes: dict[str, Any] | None = None


class AuditProjection:
    """Every event of every item, classified; amendments point at what they amend."""

    filter: FeedFilter | None = None

    def __init__(self, *, name: str = "audit", version: int = 1) -> None:
        self.name = name
        self.version = version
        self.table = f"{name}_v{version}"
        self.tables = (self.table,)

    async def setup(self, conn: asyncpg.Connection) -> None:
        """Create the table if needed."""
        await conn.execute(CREATE_SQL.format(table=self.table))

    async def drop(self, conn: asyncpg.Connection) -> None:
        """Drop this version's table."""
        await conn.execute(DROP_SQL.format(table=self.table))

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        """Insert one row per event, in one statement."""
        columns: list[list[Any]] = [[] for _ in range(10)]
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
            )
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        await conn.execute(INSERT_SQL.format(table=self.table), *columns)


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
