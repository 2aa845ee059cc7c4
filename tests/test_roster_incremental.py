"""The roster folds each batch into the meetings' stored drafts and folds a meeting again from
the log when a batch amends it: whatever the batch boundaries, whichever batch an amendment
arrives in, every view equals ``roster_from`` over the whole log."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, cast

import pytest

from events.connect import connect
from events.domain.catalogue import EventCorrected, EventRetracted
from projections.roster import LZ4_SQL, Fact, RosterProjection, Routes, get_roster, roster_from
from tests.synthetic_log import SyntheticLog

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg

    from events import ConnectionOptions, RecordedEvent
    from projections.roster import RosterView

EVENTS = 2_500


class Log:
    """The synthetic log's events, each meeting's facts in it, and each meeting's roster
    folded from the whole log by ``roster_from``."""

    def __init__(self, synthetic: SyntheticLog, events: list[RecordedEvent]) -> None:
        self.synthetic, self.events = synthetic, events
        self.facts: dict[str, list[Fact]] = {}
        routes = Routes()
        for event in events:
            fact = Fact.of(event)
            meeting_id = routes.route(fact)
            if meeting_id is not None:
                self.facts.setdefault(meeting_id, []).append(fact)
        self.expected: dict[str, RosterView | None] = {
            m: roster_from(facts) for m, facts in self.facts.items()
        }

    async def views(self, prefix: str) -> dict[str, RosterView | None]:
        pool = self.synthetic.pool
        at = self.events[-1].cursor
        return {m: await get_roster(pool, m, at=at, table_prefix=prefix) for m in self.expected}

    def amended_in_a_later_batch(self, batch: int) -> int:
        """Amendments routed to a meeting whose target came in an earlier batch."""
        index = {str(e.event_id): n for n, e in enumerate(self.events)}
        count = 0
        for facts in self.facts.values():
            for fact in facts:
                if isinstance(fact.event, (EventCorrected, EventRetracted)):
                    target = index.get(fact.event.target_event_id)
                    if target is not None and target // batch < index[fact.event_id] // batch:
                        count += 1
        return count


@pytest.fixture
async def log(own_dsn: str) -> AsyncIterator[Log]:
    synthetic = await SyntheticLog.create(own_dsn, EVENTS)
    yield Log(synthetic, await synthetic.read(RosterProjection().filter))
    await synthetic.close()


def _fresh() -> tuple[RosterProjection, str]:
    prefix = f"r{uuid.uuid4().hex[:8]}"
    return RosterProjection(name=prefix, table_prefix=prefix), prefix


@pytest.mark.parametrize("batch", [3, 50, EVENTS])
async def test_views_folded_batch_by_batch_equal_the_fold_of_the_whole_log(
    log: Log, batch: int
) -> None:
    assert sum(v is not None for v in log.expected.values()) > 50
    if batch < EVENTS:
        # The amendments that make a meeting fold again from the log, not from its draft.
        assert log.amended_in_a_later_batch(batch) > 10
    projection, prefix = _fresh()
    await log.synthetic.apply(projection, log.events, batch)
    assert await log.views(prefix) == log.expected


async def test_drafts_and_views_use_lz4_where_the_server_has_it(pool: asyncpg.Pool) -> None:
    suffix = uuid.uuid4().hex[:8]
    projection = RosterProjection(name=f"lz4_{suffix}", table_prefix=f"lz{suffix}")
    async with pool.acquire() as proxy:
        conn = cast("asyncpg.Connection", proxy)
        await projection.setup(conn)
        await projection.setup(conn)  # idempotent
        has_lz4 = await conn.fetchval(LZ4_SQL)
        kinds = await conn.fetch(
            "SELECT attname, attcompression FROM pg_attribute WHERE attrelid = $1::regclass "
            "AND attname IN ('draft', 'body')",
            f"projections.lz{suffix}_v1",
        )
        await projection.drop(conn)
    assert len(kinds) == 2
    assert all((k["attcompression"] == b"l") is bool(has_lz4) for k in kinds), kinds


async def test_batch_lookups_go_through_the_indexes_of_grown_tables(
    app_options: ConnectionOptions, log: Log
) -> None:
    # The runner prepares its statements once, while a rebuild's tables are empty; a generic
    # plan made then kept a scan of every row per batch as the tables grew (and ``= any($1)``
    # compared every id with every row). A batch plans its statements for the tables as they
    # are, and each lookup of its ids goes through an index.
    prefix = f"r{uuid.uuid4().hex[:8]}"
    projection = RosterProjection(name=prefix, table_prefix=prefix)
    links, table = f"projections.{prefix}_links_v1", f"projections.{prefix}_v1"
    conn = await connect(app_options)  # a session of its own: it changes planner settings
    try:
        await projection.setup(conn)
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        async with conn.transaction():
            await projection.apply(conn, log.events[:50])
            assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        await conn.execute(
            f"INSERT INTO {links} SELECT 'interaction-x' || g, 'x' || g "
            "FROM generate_series(1, 20000) AS g"
        )
        # Each meeting with a closed version and an open one.
        await conn.execute(
            f"INSERT INTO {table} (meeting_id, sys_from, sys_to, draft, body) "
            "SELECT 'x' || g, '\\x00'::bytea, '\\x01'::bytea, NULL::bytea, 'null'::bytea "
            "FROM generate_series(1, 20000) AS g "
            "UNION ALL "
            "SELECT 'x' || g, '\\x01', NULL, '', 'null' FROM generate_series(1, 20000) AS g"
        )
        statements = {
            "load_links": ("text[]", "ARRAY['a', 'b']"),
            "load_drafts": ("text[]", "ARRAY['a', 'b']"),
            "close": ("text[], bytea[]", "ARRAY['a', 'b'], ARRAY['\\x01', '\\x02']::bytea[]"),
        }
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        for name, (types, arguments) in statements.items():
            await conn.execute(f"PREPARE {name} ({types}) AS {projection._sql[name]}")
            rows = await conn.fetch(f"EXPLAIN EXECUTE {name}({arguments})")
            plan = "\n".join(r[0] for r in rows)
            assert "= ANY" not in plan, plan
            assert "Index Cond: (meeting_id = " in plan or "Index Cond: (stream_id = " in plan, plan
        await projection.drop(conn)
    finally:
        await conn.close()
