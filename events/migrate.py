"""Versioned plain-SQL migrations for the event log.

Migrations are the files ``events/migrations/NNNN_name.sql``, applied in order, each in its own
transaction together with the row that records it in ``schema_migrations``. A session-level
advisory lock makes concurrent runs (two deploys, two containers) take turns: the second one
finds everything applied and does nothing. An applied file whose text later changed is refused,
since the database would no longer match the code that describes it.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from typing import TYPE_CHECKING

import msgspec

from events.errors import MigrationError

if TYPE_CHECKING:
    import asyncpg
    import asyncpg.pool

    Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

__all__ = ("Migration", "applied_migrations", "available_migrations", "is_current", "migrate")

# Any constant works as long as every migrator uses the same one; this is "diplofe" in ASCII.
MIGRATION_LOCK_KEY = 0x6469706C6F6665

CREATE_LEDGER_SQL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
LOCK_SQL = "SELECT pg_advisory_lock($1)"
UNLOCK_SQL = "SELECT pg_advisory_unlock($1)"
APPLIED_SQL = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
LEDGER_EXISTS_SQL = "SELECT to_regclass('schema_migrations') IS NOT NULL"
RECORD_SQL = "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class Migration(msgspec.Struct, frozen=True, kw_only=True):
    """One migration file: its number, name, checksum and SQL text."""

    version: int
    name: str
    checksum: str
    sql: str = ""


def available_migrations() -> list[Migration]:
    """The migrations shipped with the package, in order."""
    found: list[Migration] = []
    for entry in resources.files("events.migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        sql = entry.read_text(encoding="utf-8")
        found.append(
            Migration(
                version=int(match.group(1)),
                name=match.group(2),
                checksum=hashlib.sha256(sql.encode()).hexdigest(),
                sql=sql,
            )
        )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number: {versions}")
    return found


async def applied_migrations(conn: Conn) -> list[Migration]:
    """What the database records as applied (empty before the first run)."""
    if not await conn.fetchval(LEDGER_EXISTS_SQL):
        return []
    rows = await conn.fetch(APPLIED_SQL)
    return [Migration(version=r["version"], name=r["name"], checksum=r["checksum"]) for r in rows]


async def is_current(conn: Conn) -> bool:
    """Whether every shipped migration is applied (for readiness checks)."""
    applied = {m.version for m in await applied_migrations(conn)}
    return all(m.version in applied for m in available_migrations())


async def migrate(conn: asyncpg.Connection) -> list[Migration]:
    """Apply the pending migrations over ``conn`` (an owner role) and return the ones applied."""
    shipped = available_migrations()
    await conn.execute(LOCK_SQL, MIGRATION_LOCK_KEY)
    try:
        await conn.execute(CREATE_LEDGER_SQL)
        applied = {m.version: m for m in await applied_migrations(conn)}
        for migration in shipped:
            done = applied.get(migration.version)
            if done is not None and done.checksum != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} was applied with checksum "
                    f"{done.checksum[:12]} but the shipped file has {migration.checksum[:12]}; "
                    "applied migrations must never be edited, add a new one instead"
                )
        pending = [m for m in shipped if m.version not in applied]
        for migration in pending:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    RECORD_SQL, migration.version, migration.name, migration.checksum
                )
        return pending
    finally:
        await conn.execute(UNLOCK_SQL, MIGRATION_LOCK_KEY)
