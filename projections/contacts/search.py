"""The index behind the actor search (``queries.search_actors``): trigrams of every name an
actor is known by, so that a search reads the actors whose names hold the text, not every
actor.

The trigram operator class comes from the pg_trgm extension, which only a role allowed to
create objects in the database may install (a migration's owner role). Without it the search
answers the same, by filtering every current actor, and a warning says so.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import asyncpg

from projections.contacts.schema import (
    CREATE_TRIGRAMS_SQL,
    SEARCH_INDEX_SQL,
    TRIGRAMS_INSTALLED_SQL,
    sql,
)

if TYPE_CHECKING:
    from asyncpg.connection import Connection

__all__ = ("setup_search",)

log = logging.getLogger(__name__)


async def setup_search(conn: Connection, prefix: str, version: int) -> bool:
    """Create the search's index where pg_trgm is (or can be) installed.

    Returns:
        Whether the index exists.
    """
    if not await conn.fetchval(TRIGRAMS_INSTALLED_SQL):
        try:
            async with conn.transaction():
                await conn.execute(CREATE_TRIGRAMS_SQL)
        except asyncpg.PostgresError as exc:
            log.warning(
                "actor search without an index: the pg_trgm extension is not installed and "
                "this role cannot install it (%s); as an owner role, run "
                "CREATE EXTENSION pg_trgm in this database",
                exc,
            )
            return False
    await conn.execute(sql(SEARCH_INDEX_SQL, prefix, version))
    return True
