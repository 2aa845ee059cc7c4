"""Events a projection cannot apply, held aside with their error (``projection_quarantine``).

The policy: a projection pauses before such an event. Its view stays what the log says up to
there (marked stale by the lag it then builds up), rather than going on without the event and
becoming a view that no reading of the log gives: the roster of a meeting without its leader's
change, say. Every other projection carries on. ``/ready`` names the projection, the event and
the error; an operator releases the event, either to be tried again once the fault is fixed
(``retry``) or to be gone past (``skip``: the view then lacks it until the next rebuild).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final, Literal
from uuid import UUID

import msgspec

from events.records import Cursor

if TYPE_CHECKING:
    import asyncpg

    from events.records import RecordedEvent

__all__ = (
    "QuarantinedEvent",
    "Status",
    "entry_for",
    "held_events",
    "list_quarantine",
    "quarantine",
    "release",
    "settle",
)

Status = Literal["held", "retry", "skip", "applied", "skipped"]

_COLUMNS: Final = (
    "name, version, transaction_id, position, event_id, type, error, attempts, status, "
    "quarantined_at, released_at"
)
QUARANTINE_SQL: Final = """
INSERT INTO projection_quarantine
    (name, version, transaction_id, position, event_id, type, error, attempts)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (name, version, transaction_id, position) DO UPDATE
SET error = excluded.error, attempts = excluded.attempts, status = 'held',
    quarantined_at = now(), released_at = NULL
"""
ENTRY_SQL: Final = f"""
SELECT {_COLUMNS} FROM projection_quarantine
WHERE name = $1 AND version = $2 AND transaction_id = $3 AND position = $4
"""
HELD_SQL: Final = f"""
SELECT {_COLUMNS} FROM projection_quarantine
WHERE name = $1 AND version = $2 AND status = 'held'
ORDER BY transaction_id, position
"""
LIST_SQL: Final = f"""
SELECT {_COLUMNS} FROM projection_quarantine
WHERE $1 OR status IN ('held', 'retry', 'skip')
ORDER BY quarantined_at, name, version, transaction_id, position
"""
RELEASE_SQL: Final = f"""
UPDATE projection_quarantine SET status = $2, released_at = now()
WHERE name = $1 AND status = 'held'
RETURNING {_COLUMNS}
"""
SETTLE_SQL: Final = """
UPDATE projection_quarantine SET status = $5
WHERE name = $1 AND version = $2 AND transaction_id = $3 AND position = $4
"""


class QuarantinedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One event a projection could not apply, and what became of it."""

    name: str
    version: int
    transaction_id: int
    position: int
    event_id: UUID
    type: str
    error: str
    attempts: int
    status: Status
    quarantined_at: datetime
    released_at: datetime | None = None

    @property
    def cursor(self) -> Cursor:
        """The event's place in the feed."""
        return Cursor(self.transaction_id, self.position)


def _entry(row: asyncpg.Record) -> QuarantinedEvent:
    return msgspec.convert(dict(row), QuarantinedEvent)


async def quarantine(
    conn: asyncpg.Connection,
    event: RecordedEvent,
    *,
    name: str,
    version: int,
    error: str,
    attempts: int,
) -> None:
    """Hold ``event`` aside for version ``version`` of projection ``name`` (again, if it was
    released and failed once more)."""
    await conn.execute(
        QUARANTINE_SQL,
        name,
        version,
        event.transaction_id,
        event.position,
        event.event_id,
        event.type,
        error,
        attempts,
    )


async def entry_for(
    conn: asyncpg.Connection, name: str, version: int, event: RecordedEvent
) -> QuarantinedEvent | None:
    """What the quarantine holds about ``event`` for this projection version, if anything."""
    row = await conn.fetchrow(ENTRY_SQL, name, version, event.transaction_id, event.position)
    return _entry(row) if row is not None else None


async def held_events(
    conn: asyncpg.Connection | asyncpg.Pool, name: str, version: int
) -> list[QuarantinedEvent]:
    """The events this projection version is paused on (at most one while a runner runs it)."""
    return [_entry(r) for r in await conn.fetch(HELD_SQL, name, version)]


async def list_quarantine(
    conn: asyncpg.Connection | asyncpg.Pool, *, everything: bool = False
) -> list[QuarantinedEvent]:
    """Events held or released but not yet acted on (with ``everything``: also the ones the
    runner has since applied or skipped), oldest first."""
    return [_entry(r) for r in await conn.fetch(LIST_SQL, everything)]


async def release(
    conn: asyncpg.Connection | asyncpg.Pool, name: str, *, skip: bool = False
) -> list[QuarantinedEvent]:
    """Release the events projection ``name`` is paused on: its runner tries them again, or
    with ``skip`` goes past them. Returns what was released."""
    rows = await conn.fetch(RELEASE_SQL, name, "skip" if skip else "retry")
    return [_entry(r) for r in rows]


async def settle(
    conn: asyncpg.Connection, name: str, version: int, event: RecordedEvent, status: Status
) -> None:
    """Record what the runner did with a released event (``applied`` or ``skipped``)."""
    await conn.execute(SETTLE_SQL, name, version, event.transaction_id, event.position, status)
