"""The contacts projection over a synthetic log with many amendments: the same tables whatever
the batch boundaries (system-time ranges included), whether batches are applied directly or
prepared ahead by the runner, and the same after tables of the layout before system time are
rebuilt."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING, Any, cast

import msgspec
import pytest

from events.connect import connect
from events.domain.amendments import Stored
from events.domain.catalogue import CATALOGUE, INTERACTION_EVENTS
from projections.contacts import ContactsProjection, InteractionView, interaction_from, schema
from projections.contacts import writer as contacts
from projections.contacts.entries import history_entry, raw_entry
from projections.contacts.views import HistoryEntry
from projections.exports import count_interactions, interaction_views, load_directory
from projections.runner import ProjectionRunner, checkpoint_of
from projections.single_fact import SingleFactRows
from tests.synthetic_log import SyntheticLog

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg

    from events import RecordedEvent

EVENTS = 2_500
TABLES = {
    "interactions": "interaction_id, sys_from",
    "interaction_actors": "interaction_id, actor_id, role, sys_from",
    "actors": "actor_id, sys_from",
    "actor_roles": "actor_id, sys_from, organisation_id, title, lower, upper",
}


@pytest.fixture
async def log(own_dsn: str) -> AsyncIterator[tuple[SyntheticLog, list[RecordedEvent]]]:
    synthetic = await SyntheticLog.create(own_dsn, EVENTS)
    yield synthetic, await synthetic.read(ContactsProjection.filter)
    await synthetic.close()


def _fresh() -> tuple[ContactsProjection, str]:
    prefix = f"c{uuid.uuid4().hex[:8]}_"
    return ContactsProjection(name=prefix, prefix=prefix), prefix


async def _tables(synthetic: SyntheticLog, prefix: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of the projection's tables, views decoded (their text may differ in layout)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    async with synthetic.pool.acquire() as conn:
        for table, key in TABLES.items():
            rows = await conn.fetch(f"SELECT * FROM projections.{prefix}{table}_v1 ORDER BY {key}")
            tables[table] = [dict(r) for r in rows]
            for row in tables[table]:
                if isinstance(row.get("view"), str):
                    row["view"] = await conn.fetchval("SELECT $1::jsonb", row["view"])
    return tables


async def test_the_same_tables_whatever_the_batches_and_however_applied(
    log: tuple[SyntheticLog, list[RecordedEvent]],
) -> None:
    synthetic, events = log
    built: list[dict[str, list[dict[str, Any]]]] = []
    for batch in (EVENTS, 3, 50):
        projection, prefix = _fresh()
        await synthetic.apply(projection, events, batch)
        built.append(await _tables(synthetic, prefix))
    # The runner prepares each batch ahead, on another connection, and writes it afterwards.
    projection, prefix = _fresh()
    await _run_until_caught_up(synthetic, projection, len(events))
    built.append(await _tables(synthetic, prefix))
    whole = built[0]
    assert len(whole["interactions"]) > 500
    assert any(r["retracted"] for r in whole["interactions"])
    # Amended items went through several versions, each closed where the next one opens.
    closed = [r for r in whole["interactions"] if r["sys_to"] is not None]
    assert len(closed) > 20
    assert all(r["sys_from"] < r["sys_to"] for r in closed)
    assert any(r["sys_to"] is not None for r in whole["interaction_actors"])
    assert any(r["sys_to"] is not None for r in whole["actor_roles"])
    assert all(tables == whole for tables in built[1:])


async def _run_until_caught_up(
    synthetic: SyntheticLog, projection: ContactsProjection, events: int
) -> None:
    runner = ProjectionRunner(
        synthetic.store, projection, lambda: connect(synthetic.options), batch_size=40
    )
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(60):
            while (await checkpoint_of(synthetic.pool, projection.name, 1))[1] < events:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_tables_without_system_time_are_rebuilt_from_the_start(
    log: tuple[SyntheticLog, list[RecordedEvent]],
) -> None:
    # Tables of the layout before system time, and a checkpoint that says they are complete:
    # their rows cannot say since when they hold, so the version is built again from the log.
    synthetic, events = log
    reference, reference_prefix = _fresh()
    await synthetic.apply(reference, events, EVENTS)
    projection, prefix = _fresh()
    last = events[-1].cursor
    async with synthetic.pool.acquire() as conn:
        await conn.execute(
            f"CREATE TABLE projections.{prefix}interactions_v1 (interaction_id text PRIMARY KEY, "
            "kind text, view jsonb, lower date, upper date, precision text, "
            "retracted boolean NOT NULL, negated boolean NOT NULL, aggregate boolean NOT NULL);"
            f"CREATE TABLE projections.{prefix}actors_v1 (actor_id text PRIMARY KEY, kind text, "
            "canonical_name text, aliases text[] NOT NULL, view jsonb)"
        )
        await conn.execute(
            "INSERT INTO projection_checkpoints (name, version, transaction_id, position, events)"
            " VALUES ($1, 1, $2, $3, $4)",
            projection.name,
            last.transaction_id,
            last.position,
            0,  # counted from here on: only a restart from the start reaches len(events)
        )
        await conn.execute(
            f"INSERT INTO projections.{prefix}interactions_v1 VALUES "
            "('stale', 'visit', NULL, NULL, NULL, NULL, false, false, false)"
        )
    await _run_until_caught_up(synthetic, projection, len(events))
    assert await _tables(synthetic, prefix) == await _tables(synthetic, reference_prefix)


async def test_links_whose_ids_compare_by_locale_are_rebuilt_from_the_start(
    log: tuple[SyntheticLog, list[RecordedEvent]],
) -> None:
    # The layout with system time before the links' ids compared byte by byte (and had a
    # primary key): the same tables, rebuilt rather than served with the other indexes.
    synthetic, events = log
    reference, reference_prefix = _fresh()
    await synthetic.apply(reference, events, EVENTS)
    projection, prefix = _fresh()
    last = events[-1].cursor
    async with synthetic.pool.acquire() as conn:
        await conn.execute(
            f"CREATE TABLE projections.{prefix}interaction_actors_v1 ("
            "interaction_id text NOT NULL, actor_id text NOT NULL, role text NOT NULL, "
            "name_as_reported text, kind text NOT NULL, lower_key date NOT NULL, "
            "upper_key date NOT NULL, negated boolean NOT NULL, sys_from bytea NOT NULL, "
            "sys_to bytea, PRIMARY KEY (interaction_id, actor_id, role, sys_from))"
        )
        await conn.execute(
            "INSERT INTO projection_checkpoints (name, version, transaction_id, position, events)"
            " VALUES ($1, 1, $2, $3, $4)",
            projection.name,
            last.transaction_id,
            last.position,
            0,  # counted from here on: only a restart from the start reaches len(events)
        )
    await _run_until_caught_up(synthetic, projection, len(events))
    assert await _tables(synthetic, prefix) == await _tables(synthetic, reference_prefix)


async def test_tables_of_layout_1_are_rebuilt_from_the_start(
    log: tuple[SyntheticLog, list[RecordedEvent]],
) -> None:
    # Today's columns, made by code before layouts were stamped: actor views without their
    # empty lists, spans without roles. Nothing in the columns says so; the missing stamp does.
    synthetic, events = log
    reference, reference_prefix = _fresh()
    await synthetic.apply(reference, events, EVENTS)
    projection, prefix = _fresh()
    await synthetic.apply(projection, events, EVENTS)
    async with synthetic.pool.acquire() as conn:
        await conn.execute(
            f"COMMENT ON TABLE projections.{prefix}interactions_v1 IS NULL;"
            f"UPDATE projections.{prefix}graph_actor_spans_v1 SET first_year = 1900;"
            f"UPDATE projections.{prefix}actors_v1 SET view = view - 'merged'"
        )
        await conn.execute(
            "UPDATE projection_checkpoints SET events = 0 WHERE name = $1", projection.name
        )
    await _run_until_caught_up(synthetic, projection, len(events))
    assert await _tables(synthetic, prefix) == await _tables(synthetic, reference_prefix)
    spans = "SELECT * FROM projections.{}graph_actor_spans_v1 ORDER BY actor_id"
    assert await synthetic.pool.fetch(spans.format(prefix)) == await synthetic.pool.fetch(
        spans.format(reference_prefix)
    )


async def test_a_lone_interaction_event_gives_the_view_folding_gives(
    log: tuple[SyntheticLog, list[RecordedEvent]],
) -> None:
    # interaction_from takes a shortcut for a list of one interaction event; an iterator of
    # the same fact goes through the fold, which must agree with it.
    _, events = log
    lone = [
        Stored(str(e.event_id), CATALOGUE.decode(e))  # type: ignore[arg-type]
        for e in events
        if e.stream_id.startswith("interaction-")
    ]
    lone = [s for s in lone if isinstance(s.event, INTERACTION_EVENTS)]
    assert len(lone) > 100
    for stored in lone:
        assert interaction_from([stored]) == interaction_from(iter([stored]))


async def test_the_single_event_shortcut_builds_the_tables_the_full_path_builds(
    log: tuple[SyntheticLog, list[RecordedEvent]], monkeypatch: pytest.MonkeyPatch
) -> None:
    synthetic, events = log
    projection, prefix = _fresh()
    await synthetic.apply(projection, events, 500)
    shortcut = await _tables(synthetic, prefix)
    # A shortcut that covers no type: every interaction takes the full path.
    monkeypatch.setattr(contacts, "_SINGLE_FACT", SingleFactRows(CATALOGUE, {}, InteractionView))
    projection, prefix = _fresh()
    await synthetic.apply(projection, events, 500)
    assert shortcut == await _tables(synthetic, prefix)


async def test_closing_versions_stays_an_index_lookup_once_the_tables_have_grown(
    log: tuple[SyntheticLog, list[RecordedEvent]],
) -> None:
    # The runner prepares its statements while the tables are empty and runs them for ever on
    # one connection: a generic plan cached then hashes the arrays and scans the whole table,
    # so each batch would close its few continued items at the cost of the whole table.
    synthetic, _ = log
    projection, prefix = _fresh()
    conn = await connect(synthetic.options)
    statements = {
        "interactions": schema.CLOSE_INTERACTIONS_SQL,
        "links": schema.CLOSE_LINKS_SQL,
        "actors": schema.CLOSE_ACTORS_SQL,
        "roles": schema.CLOSE_ROLES_SQL,
    }
    try:
        await projection.setup(conn)
        for table, statement in statements.items():
            text = schema.sql(statement, prefix, 1)
            await conn.execute(f"PREPARE close_{table} (text[], bytea[], bytea[]) AS {text}")
            for _ in range(8):  # past the custom plans a prepared statement starts with
                await conn.execute(
                    f"EXECUTE close_{table}"
                    "(ARRAY['x'], ARRAY['\\x01'::bytea], ARRAY['\\x02'::bytea])"
                )
        await conn.execute(
            f"""
            INSERT INTO projections.{prefix}interactions_v1
            SELECT 'i' || g, 'visit', NULL, NULL, NULL, NULL, true, false, false, '\\x01', NULL
            FROM generate_series(1, 20000) AS g;
            INSERT INTO projections.{prefix}interaction_actors_v1
            SELECT 'i' || g, 'a' || g, 'participant', NULL, 'visit', '-infinity', '-infinity',
                   false, '\\x01', NULL
            FROM generate_series(1, 20000) AS g;
            INSERT INTO projections.{prefix}actors_v1
            SELECT 'a' || g, 'person', 'A', '{{}}', NULL, '\\x01', NULL
            FROM generate_series(1, 20000) AS g;
            INSERT INTO projections.{prefix}actor_roles_v1
            SELECT 'a' || g, 'o', NULL, NULL, NULL, '\\x01', NULL
            FROM generate_series(1, 20000) AS g
            """
        )
        for table in statements:
            async with conn.transaction():
                await conn.execute(schema.CUSTOM_PLANS_SQL)  # as apply_prepared does
                rows = await conn.fetch(
                    f"EXPLAIN EXECUTE close_{table}"
                    "(ARRAY['i1', 'a1'], ARRAY['\\x01'::bytea, '\\x01'], "
                    "ARRAY['\\x02'::bytea, '\\x02'])"
                )
            plan = "\n".join(r[0] for r in rows)
            assert "Seq Scan" not in plan, plan
        await projection.drop(conn)
    finally:
        await conn.close()


async def test_exports_read_the_current_version_of_each_item(
    log: tuple[SyntheticLog, list[RecordedEvent]],
) -> None:
    synthetic, events = log
    projection, prefix = _fresh()
    await synthetic.apply(projection, events, 100)
    async with synthetic.pool.acquire() as proxy:
        conn = cast("asyncpg.Connection", proxy)
        views = [v.interaction_id async for v in interaction_views(conn, prefix=prefix)]
        counted = await count_interactions(conn, prefix=prefix)
        directory = await load_directory(conn, prefix=prefix)
        live = await conn.fetchval(
            f"SELECT count(DISTINCT interaction_id) FROM projections.{prefix}interactions_v1 "
            "WHERE sys_to IS NULL AND NOT retracted"
        )
        versions = await conn.fetchval(
            f"SELECT count(*) FROM projections.{prefix}interactions_v1 WHERE NOT retracted"
        )
        actors = await conn.fetchval(
            f"SELECT count(*) FROM projections.{prefix}actors_v1 "
            "WHERE sys_to IS NULL AND view IS NOT NULL"
        )
    assert versions > live  # amended interactions went through several versions
    assert len(views) == len(set(views)) == counted == live
    assert len(directory) == actors


async def test_history_entries_built_from_stored_json_equal_the_decoded_ones(
    log: tuple[SyntheticLog, list[RecordedEvent]],
) -> None:
    # raw_entry copies most of an entry from the stored view; history_entry decodes the whole
    # view. For every stored view (lone events' spliced JSON and folded views alike), from
    # each participant's side and through a member, both give the same entry.
    synthetic, events = log
    projection, prefix = _fresh()
    await synthetic.apply(projection, events, EVENTS)
    async with synthetic.pool.acquire() as conn:
        views = [
            r["view"]
            for r in await conn.fetch(
                f"SELECT view FROM projections.{prefix}interactions_v1 WHERE view IS NOT NULL"
            )
        ]
    assert len(views) > 500
    decoder = msgspec.json.Decoder(HistoryEntry)
    compared = 0
    for view in views:
        actors = [p["actor_id"] for p in msgspec.json.decode(view)["participants"]]

        def first(participants: list[str]) -> list[str]:
            return participants[:1]

        for actor, through in [(a, None) for a in actors] + [("an-organisation", first)]:
            raw = raw_entry(actor, view, through)
            plain = history_entry(actor, view, through)
            assert decoder.decode(raw) == plain
            assert msgspec.json.decode(raw) == msgspec.json.decode(msgspec.json.encode(plain))
            compared += 1
    assert compared > len(views)
