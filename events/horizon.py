"""How far the feed's visibility horizon lags behind the newest commit, and what holds it.

Followers only see transactions below ``pg_snapshot_xmin``; an open transaction anywhere in the
cluster keeps committed events above it invisible. This reports the size of that backlog and
the oldest transaction responsible, for metrics and readiness checks.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final

import msgspec

if TYPE_CHECKING:
    import asyncpg

__all__ = ("HorizonLag", "OldestTransaction", "horizon_lag")

HORIZON_SQL: Final = """
WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
SELECT horizon.xmin::text::bigint AS horizon,
       (SELECT count(*) FROM events WHERE transaction_id >= horizon.xmin) AS held_back,
       (SELECT min(recorded_at) FROM events WHERE transaction_id >= horizon.xmin) AS oldest_held,
       now() AS now
FROM horizon
"""

OLDEST_TRANSACTION_SQL: Final = """
SELECT pid, datname, usename, application_name, state, xact_start,
       coalesce(backend_xid, backend_xmin)::text::bigint AS xid
FROM pg_stat_activity
WHERE (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL) AND pid <> pg_backend_pid()
ORDER BY age(coalesce(backend_xid, backend_xmin)) DESC
LIMIT 1
"""


class OldestTransaction(msgspec.Struct, frozen=True, kw_only=True):
    """The oldest open transaction of the cluster (the likeliest to hold the horizon)."""

    pid: int
    database: str | None
    user: str | None
    application: str | None
    state: str | None
    started_at: datetime | None
    transaction_id: int | None
    age_seconds: float | None


class HorizonLag(msgspec.Struct, frozen=True, kw_only=True):
    """Committed events followers cannot see yet, and how long the oldest has waited."""

    horizon: int
    events_held_back: int
    seconds_behind: float
    oldest_transaction: OldestTransaction | None


async def horizon_lag(conn: asyncpg.Connection | asyncpg.Pool) -> HorizonLag:
    """Measure the lag now. Details of other roles' sessions need ``pg_monitor``."""
    row = await conn.fetchrow(HORIZON_SQL)
    assert row is not None  # noqa: S101 (the query always returns one row)
    now: datetime = row["now"]
    oldest_held: datetime | None = row["oldest_held"]
    seconds = (now - oldest_held).total_seconds() if oldest_held is not None else 0.0
    tx = await conn.fetchrow(OLDEST_TRANSACTION_SQL)
    oldest = None
    if tx is not None:
        started = tx["xact_start"]
        oldest = OldestTransaction(
            pid=tx["pid"],
            database=tx["datname"],
            user=tx["usename"],
            application=tx["application_name"],
            state=tx["state"],
            started_at=started,
            transaction_id=tx["xid"],
            age_seconds=(now - started).total_seconds() if started is not None else None,
        )
    return HorizonLag(
        horizon=row["horizon"],
        events_held_back=row["held_back"],
        seconds_behind=max(seconds, 0.0),
        oldest_transaction=oldest,
    )
