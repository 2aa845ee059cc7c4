"""What every projection shares: table names, the first version of each stream in a batch, and
the layout stamp that tells a projection its tables were built by code that made other rows.

A projection's tables hold what its code made of the log. When the code comes to make other rows
from the same events (a view with another field, a rule counted another way), the tables it
finds were made by the old code, and nothing but folding the log again makes them right. Each
projection names the layout its code makes (``layout``, an integer raised with any such change)
and stamps it on its main table (a table comment); ``setup`` finds a table stamped with another
layout (or none: such tables are layout 1) outdated, drops it and folds the log again from the
start, the view meanwhile saying it is stale, as after any replacement of its tables.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    import asyncpg

    from events.records import RecordedEvent

__all__ = (
    "RESTART_SQL",
    "first_versions",
    "layout_outdated",
    "stamp_layout",
    "table_names",
)

_PREFIX: Final = re.compile(r"[a-z0-9_]*")
_STAMP: Final = "diplofeed layout {}"
# The stamp of projections.<$1>: NULL when there is no such table; '' when it has no stamp.
_STAMP_SQL: Final = """
SELECT coalesce(obj_description(c.oid, 'pg_class'), '')
FROM pg_class AS c
WHERE c.relnamespace = 'projections'::regnamespace AND c.relname = $1 AND c.relkind = 'r'
"""
RESTART_SQL: Final = """
UPDATE projection_checkpoints
SET transaction_id = '0', position = 0, events = 0, updated_at = now()
WHERE name = $1 AND version = $2
"""
"""A projection's checkpoint back to the start ($1 name, $2 version), when ``setup`` replaced
tables it cannot keep: the runner then folds the whole log into the new ones."""


def table_names(prefix: str, version: int, tables: Mapping[str, str]) -> dict[str, str]:
    """Each of a projection's tables (``{"links": "interaction_actors"}``) named for this
    prefix and version (``<prefix>interaction_actors_v<version>``).

    Raises:
        ValueError: The prefix is not a safe SQL identifier part (it is spliced into SQL).
    """
    if _PREFIX.fullmatch(prefix) is None:
        raise ValueError(f"table prefix {prefix!r} may hold only a-z, 0-9 and _")
    return {key: f"{prefix}{name}_v{version}" for key, name in tables.items()}


def first_versions(events: Iterable[RecordedEvent]) -> dict[str, int]:
    """The first stream version of each stream in ``events``: a stream whose first version in a
    batch is above 1 began in an earlier batch, and only such a stream has stored state."""
    first: dict[str, int] = {}
    for event in events:
        first.setdefault(event.stream_id, event.stream_version)
    return first


async def _stamp_of(conn: asyncpg.Connection, table: str) -> int | None:
    """The layout ``projections.<table>`` is stamped with; ``None`` when there is no such table."""
    text: str | None = await conn.fetchval(_STAMP_SQL, table)
    if text is None:
        return None
    prefix = _STAMP.format("")
    digits = text.removeprefix(prefix)
    return int(digits) if text.startswith(prefix) and digits.isdigit() else 1


async def layout_outdated(conn: asyncpg.Connection, table: str, layout: int) -> bool:
    """``projections.<table>`` exists, made for another layout than ``layout``."""
    stamped = await _stamp_of(conn, table)
    return stamped is not None and stamped != layout


async def stamp_layout(conn: asyncpg.Connection, table: str, layout: int) -> None:
    """Stamp ``projections.<table>`` (just made by this role, which owns it) with ``layout``,
    unless it already is: commenting needs the table's owner, who made it."""
    if await _stamp_of(conn, table) != layout:
        if _PREFIX.fullmatch(table) is None:
            raise ValueError(f"table name {table!r} may hold only a-z, 0-9 and _")
        await conn.execute(f"COMMENT ON TABLE projections.{table} IS '{_STAMP.format(layout)}'")
