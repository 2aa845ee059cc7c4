"""The actor search through its trigram index (``projections.contacts.search``): the same
answers, pages and as-of answers as the plain filter over every current actor (kept here as the
oracle), read through the index; and without pg_trgm, the same answers with a warning."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Final, cast

import asyncpg
import pytest

from projections.common import table_names
from projections.contacts import ContactsProjection
from projections.contacts.queries import SearchKey, search_actors_keyed
from projections.contacts.schema import SEARCH_ACTORS_SQL, TABLES
from projections.system_time import current_at
from tests.database import scratch_database
from tests.synthetic_log import SyntheticLog

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from events import Cursor

EVENTS: Final = 6_000

# The search as it was before the index: every current actor filtered. $1 text, $2 'text%',
# $3 'text' after a space, $4 the cursor key.
ORACLE_SQL: Final = f"""
SELECT actor_id FROM (
    SELECT canonical_name, actor_id,
           (actor_id = lower($1) OR lower(canonical_name) = lower($1)
            OR EXISTS (SELECT 1 FROM unnest(aliases) AS a WHERE lower(a) = lower($1))) AS exact
    FROM projections.{{actors}}
    WHERE view IS NOT NULL AND {current_at(4)}
      AND (actor_id = lower($1) OR canonical_name ILIKE $2 OR canonical_name ILIKE $3
           OR EXISTS (SELECT 1 FROM unnest(aliases) AS a WHERE a ILIKE $2 OR a ILIKE $3))
) AS m
ORDER BY exact DESC, canonical_name, actor_id
"""
_NOW: Final = b"\xff" * 16
AVAILABLE_SQL: Final = "SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_trgm')"


class _Searched:
    def __init__(self, log: SyntheticLog, halfway: Cursor, prefix: str) -> None:
        self.log, self.halfway, self.prefix = log, halfway, prefix


async def _built(dsn: str, prefix: str) -> _Searched:
    log = await SyntheticLog.create(dsn, EVENTS)
    events = await log.read(ContactsProjection.filter)
    await log.apply(ContactsProjection(name=prefix, prefix=prefix), events, 500)
    return _Searched(log, events[len(events) // 2].cursor, prefix)


@pytest.fixture(scope="module")
async def indexed(server_url: str) -> AsyncIterator[_Searched]:
    """A synthetic log and its contacts projection, pg_trgm installed (by migration 0007,
    where the server ships it)."""
    async with scratch_database(server_url, migrated=True) as dsn:
        owner = await asyncpg.connect(dsn)
        try:
            if not await owner.fetchval(AVAILABLE_SQL):
                pytest.skip("this server's PostgreSQL has no pg_trgm (contrib)")
        finally:
            await owner.close()
        searched = await _built(dsn, "s_")
        yield searched
        await searched.log.close()


async def _oracle(searched: _Searched, text: str, at: bytes) -> list[str]:
    names = table_names(searched.prefix, 1, TABLES)
    escaped = re.sub(r"([\\%_])", r"\\\1", text.strip())
    rows = await searched.log.pool.fetch(
        ORACLE_SQL.format(**names), text.strip(), f"{escaped}%", f"% {escaped}%", at
    )
    return [r["actor_id"] for r in rows]


async def _walk(searched: _Searched, text: str, at: Cursor | None, limit: int) -> list[str]:
    found: list[str] = []
    after: SearchKey | None = None
    while True:
        page = await search_actors_keyed(
            searched.log.pool, text, at=at, after=after, limit=limit + 1, prefix=searched.prefix
        )
        found += [actor.actor_id for actor, _ in page[:limit]]
        if len(page) <= limit:
            return found
        after = page[limit - 1][1]


async def _texts(searched: _Searched) -> list[str]:
    """Names to search for: whole names, surnames, prefixes, aliases, ids, other cases, and
    texts nothing matches."""
    rows = await searched.log.pool.fetch(
        f"SELECT actor_id, canonical_name, aliases FROM projections.{searched.prefix}actors_v1 "
        "WHERE sys_to IS NULL AND view IS NOT NULL ORDER BY actor_id LIMIT 40"
    )
    texts = {"al-", "Ab", "Ha", "zzzz", "100%_", "a_b", " National ", "P", 'Ab"', "Ab\\"}
    for r in rows:
        name = r["canonical_name"]
        last = name.rsplit(maxsplit=1)[-1]
        texts |= {name, last, last[:3], name.upper(), r["actor_id"], *r["aliases"][:1]}
    return sorted(texts)


async def test_the_index_search_answers_as_the_filter_did(indexed: _Searched) -> None:
    texts = await _texts(indexed)
    matched = 0
    for text in texts:
        for at, key in ((None, _NOW), (indexed.halfway, indexed.halfway.key())):
            expected = await _oracle(indexed, text, key)
            matched += bool(expected)
            for limit in (3, 1_000):
                assert await _walk(indexed, text, at, limit) == expected, (text, at, limit)
    assert matched > len(texts)  # most texts find someone, now and halfway


async def test_a_search_reads_the_trigram_index(indexed: _Searched) -> None:
    names = table_names(indexed.prefix, 1, TABLES)
    statement = SEARCH_ACTORS_SQL.format(**names)
    async with indexed.log.pool.acquire() as proxy:
        conn = cast("asyncpg.Connection", proxy)
        for mode in ("force_custom_plan", "force_generic_plan"):
            await conn.execute(f"SET plan_cache_mode = {mode}")
            try:
                plan = await conn.fetch(
                    "EXPLAIN " + statement,
                    "Abbas",
                    "Abbas%",
                    101,
                    "% Abbas%",
                    _NOW,
                    None,
                    None,
                    None,
                    [],  # no actor named by another spelling
                )
            finally:
                await conn.execute("RESET plan_cache_mode")
            text = "\n".join(r[0] for r in plan)
            assert f"{names['actors']}_search_idx" in text, (mode, text)
            assert "Seq Scan" not in text, (mode, text)


async def test_without_pg_trgm_the_search_still_answers(
    server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with scratch_database(server_url, migrated=True) as dsn:
        owner = await asyncpg.connect(dsn)
        try:
            # Whether or not a migration installs it: this database is one where it is not.
            await owner.execute("DROP EXTENSION IF EXISTS pg_trgm")
        finally:
            await owner.close()
        with caplog.at_level(logging.WARNING, logger="projections.contacts.search"):
            searched = await _built(dsn, "n_")
        try:
            assert any("pg_trgm" in r.getMessage() for r in caplog.records)
            for text in (await _texts(searched))[:12]:
                expected = await _oracle(searched, text, _NOW)
                assert await _walk(searched, text, None, 4) == expected, text
        finally:
            await searched.log.close()
