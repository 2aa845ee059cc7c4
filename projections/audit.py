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
CREATE INDEX IF NOT EXISTS {table}_target_idx ON projections.{table} (target_event_id)
    WHERE target_event_id IS NOT NULL
"""
DROP_SQL: Final = "DROP TABLE IF EXISTS projections.{table}"
INSERT_SQL: Final = """
INSERT INTO projections.{table} (position, stream_id, event_id, target_event_id, action, type,
                                 recorded_at, recorded_by, reason, changes)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::uuid[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::text[], $9::text[], $10::jsonb[])
ON CONFLICT (position) DO NOTHING
"""
TRAIL_SQL: Final = """
SELECT stream_id, event_id, target_event_id, action, type, recorded_at, recorded_by, reason,
       changes::text
FROM projections.{table}
WHERE stream_id = $1 OR event_id = $2 OR target_event_id = $2
ORDER BY position
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
    conn: asyncpg.Connection | asyncpg.Pool, item: str, *, table: str = "audit_v1"
) -> list[AuditEntry]:
    """The audit trail of a stream (``interaction-x``) or of one event id, oldest first."""
    event_id = item if _looks_like_uuid(item) else None
    rows = await conn.fetch(TRAIL_SQL.format(table=table), item, event_id)
    return [
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
        )
        for r in rows
    ]


def _looks_like_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True
