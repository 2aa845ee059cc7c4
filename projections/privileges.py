"""Who may use a projection's tables: the application role, whoever made them.

The API reads, and its runners write, every projection table as ``diplofeed_app``, and a
runner's ``setup`` (an index it adds, a column's compression) needs to own them. A runner of the
API creates them as that role; a rebuild may be run by an operator as the schema owner, whose
tables the application could not even read. So a rebuild builds as the application role
whenever its login may become it (the owner of the compose stack and the demo's embedded
server are superusers, so it can), and otherwise grants the role what it needs on what it
made; migration 0009 grants the same by default on tables the migrating owner makes. Readiness
names a projection whose tables the application cannot read all the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from events.connect import APP_ROLE

if TYPE_CHECKING:
    import asyncpg

    from projections.runner import Projection

__all__ = ("assume_app_role", "grant_to_app_role", "unreadable_tables")

ASSUME_SQL: Final = """
SELECT set_config('role', $1, false)
WHERE current_user <> $1 AND pg_has_role(current_user, $1, 'MEMBER')
"""
GRANT_SQL: Final = "SELECT grant_projection_tables()"
"""Defined by migration 0009."""
UNREADABLE_SQL: Final = """
SELECT name FROM unnest($1::text[]) AS name
WHERE to_regclass(format('projections.%I', name)) IS NOT NULL
  AND NOT has_table_privilege(to_regclass(format('projections.%I', name)), 'SELECT')
ORDER BY name
"""


async def assume_app_role(conn: asyncpg.Connection) -> None:
    """Make ``conn`` act as the application role from now on, if its login may."""
    await conn.execute(ASSUME_SQL, APP_ROLE)


async def grant_to_app_role(conn: asyncpg.Connection) -> None:
    """Grant the application role the use of every projection table ``conn``'s role owns."""
    await conn.execute(GRANT_SQL)


async def unreadable_tables(
    conn: asyncpg.Connection | asyncpg.Pool, projection: Projection
) -> list[str]:
    """The tables of ``projection`` that exist but that ``conn``'s role may not read."""
    rows = await conn.fetch(UNREADABLE_SQL, list(projection.tables))
    return [r["name"] for r in rows]
