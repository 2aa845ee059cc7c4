"""Migrations on real, empty databases: applied once, recorded, serialised, tamper-evident."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
from importlib import resources

import asyncpg
import pytest

from events import APP_ROLE, ConnectionOptions, connect, horizon_lag
from events.errors import MigrationError
from events.migrate import (
    MIGRATION_LOCK_KEY,
    Migration,
    applied_migrations,
    available_migrations,
    is_current,
    migrate,
)


async def _ledger(conn: asyncpg.Connection) -> list[tuple[int, str, str]]:
    rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY 1")
    return [(r["version"], r["name"], r["checksum"]) for r in rows]


async def _lock_is_free(conn: asyncpg.Connection) -> bool:
    """Whether the migration lock can be taken now (released again at once)."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK_KEY):
        return False
    await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    return True


def test_shipped_migrations_are_numbered_and_checksummed() -> None:
    shipped = available_migrations()
    assert [m.version for m in shipped] == list(range(1, len(shipped) + 1))
    first = shipped[0]
    assert (first.version, first.name) == (1, "events")
    text = (resources.files("events.migrations") / "0001_events.sql").read_text(encoding="utf-8")
    assert first.sql == text
    assert first.checksum == hashlib.sha256(text.encode()).hexdigest()


async def test_migrate_applies_0001_once_and_records_it(empty_dsn: str) -> None:
    conn = await asyncpg.connect(empty_dsn)
    try:
        assert await applied_migrations(conn) == []
        assert not await is_current(conn)

        applied = await migrate(conn)

        shipped = available_migrations()
        assert [m.version for m in applied] == [m.version for m in shipped]
        assert applied[0].name == "events"
        assert await _ledger(conn) == [(m.version, m.name, m.checksum) for m in shipped]
        assert await is_current(conn)
        assert await conn.fetchval("SELECT to_regclass('events') IS NOT NULL")
        assert await conn.fetchval("SELECT count(*) FROM events") == 0

        again = await migrate(conn)
        assert again == []
        assert await _ledger(conn) == [(m.version, m.name, m.checksum) for m in shipped]
        assert await is_current(conn)
        assert await _lock_is_free(conn)
    finally:
        await conn.close()


async def test_concurrent_migrations_take_turns(empty_dsn: str) -> None:
    gate = await asyncpg.connect(empty_dsn)
    first = await asyncpg.connect(empty_dsn)
    second = await asyncpg.connect(empty_dsn)
    try:
        # Hold the migration lock so that both runs are certainly waiting at the same time,
        # then let them go together.
        await gate.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        runs = [asyncio.create_task(migrate(first)), asyncio.create_task(migrate(second))]
        waiting = 0
        for _ in range(500):
            waiting = await gate.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()"
            )
            if waiting == 2:
                break
            await asyncio.sleep(0.02)
        assert waiting == 2, "both migrations should wait on the advisory lock"
        await gate.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        # A guard against hanging the run if the lock is never released, not a timing check.
        results = await asyncio.wait_for(asyncio.gather(*runs), timeout=120)

        shipped = available_migrations()
        assert sorted(len(r) for r in results) == [0, len(shipped)]
        assert await _ledger(gate) == [(m.version, m.name, m.checksum) for m in shipped]
        assert await is_current(gate)
        assert await _lock_is_free(gate)
    finally:
        for conn in (gate, first, second):
            await conn.close()


async def test_changed_checksum_of_an_applied_migration_is_refused(empty_dsn: str) -> None:
    conn = await asyncpg.connect(empty_dsn)
    try:
        await migrate(conn)
        await conn.execute("UPDATE schema_migrations SET checksum = $1 WHERE version = 1", "0" * 64)
        with pytest.raises(MigrationError, match=r"0001_events.*checksum"):
            await migrate(conn)
        # Refusing must not leave the lock held for the next deploy.
        assert await _lock_is_free(conn)
        # is_current only asks whether every version is applied.
        assert await is_current(conn)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        # The migration's own SQL fails half way.
        ("CREATE TABLE half_done (id int); SELECT 1 / 0;", asyncpg.DivisionByZeroError),
        # The SQL succeeds but recording it fails: the two stand or fall together.
        (
            "CREATE TABLE half_done (id int); "
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ({version}, 'x', 'y');",
            asyncpg.UniqueViolationError,
        ),
    ],
)
async def test_a_failing_migration_leaves_nothing_behind(
    empty_dsn: str, monkeypatch: pytest.MonkeyPatch, sql: str, error: type[Exception]
) -> None:
    shipped = available_migrations()
    version = len(shipped) + 1
    broken = Migration(
        version=version, name="broken", checksum="f" * 64, sql=sql.format(version=version)
    )
    # ``events.migrate`` as an attribute is the function the package re-exports.
    module = importlib.import_module("events.migrate")
    monkeypatch.setattr(module, "available_migrations", lambda: [*shipped, broken])
    conn = await asyncpg.connect(empty_dsn)
    try:
        with pytest.raises(error):
            await migrate(conn)
        # The good migrations before it stay applied; the broken one left no table, no row.
        assert [v for v, _, _ in await _ledger(conn)] == [m.version for m in shipped]
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None
        assert not await is_current(conn)
        assert await _lock_is_free(conn)
    finally:
        await conn.close()


async def test_is_current_for_the_app_role(owner_dsn: str) -> None:
    app = await connect(ConnectionOptions(dsn=owner_dsn, role=APP_ROLE))
    try:
        assert await app.fetchval("SELECT current_user") == APP_ROLE
        assert await is_current(app)
    finally:
        await app.close()
    owner = await asyncpg.connect(owner_dsn)
    try:
        assert await is_current(owner)
    finally:
        await owner.close()


async def test_0005_indexes_the_events_already_stored(
    empty_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The upgrade path: a log written under 0001-0004, then 0005 builds its indexes over it.
    shipped = available_migrations()
    module = importlib.import_module("events.migrate")
    monkeypatch.setattr(module, "available_migrations", lambda: shipped[:4])
    conn = await asyncpg.connect(empty_dsn)
    try:
        await migrate(conn)
        await conn.execute(
            "INSERT INTO events (stream_id, stream_version, event_id, type, schema_version, "
            "data, metadata, recorded_at, hash) "
            "SELECT 'interaction-' || g, 1, gen_random_uuid(), 'test.old', 1, "
            "jsonb_build_object('participants', jsonb_build_array(jsonb_build_object("
            "'actor_id', 'a' || g))), '{}', now() - make_interval(hours => g), "
            "sha256(int8send(g)) FROM generate_series(1, 50) AS g"
        )
        monkeypatch.setattr(module, "available_migrations", lambda: shipped[:5])
        assert [m.name for m in await migrate(conn)] == ["lookup_indexes"]
        indexes = {
            r["indexname"]: r["indexdef"]
            for r in await conn.fetch("SELECT indexname, indexdef FROM pg_indexes")
        }
        assert '(recorded_at, transaction_id, "position")' in indexes["events_recorded_at"]
        assert "USING gin" in indexes["events_data_strings"]
        assert "jsonb_path_ops" in indexes["events_data_strings"]
        # The old rows are in the indexes: found through them alone.
        await conn.execute("SET enable_seqscan = off")
        found = await conn.fetch(
            "SELECT stream_id FROM events WHERE jsonb_path_query_array(data, "
            "'strict $.** ? (@.type() == \"string\")') @> jsonb_build_array('a7'::text)"
        )
        assert [r["stream_id"] for r in found] == ["interaction-7"]
        latest = await conn.fetchval(
            "SELECT stream_id FROM events WHERE recorded_at <= now() - interval '10 hours 1 s' "
            "ORDER BY recorded_at DESC, transaction_id DESC, position DESC LIMIT 1"
        )
        assert latest == "interaction-11"
    finally:
        await conn.close()


async def test_0006_indexes_the_actors_of_the_events_already_stored(
    empty_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The upgrade path: a log written under 0001-0005, then 0006 replaces the expression index
    # with event_actor_refs, filled for every event already stored, its checkpoint at the end.
    shipped = available_migrations()
    module = importlib.import_module("events.migrate")
    monkeypatch.setattr(module, "available_migrations", lambda: shipped[:5])
    conn = await asyncpg.connect(empty_dsn)
    try:
        await migrate(conn)
        await conn.execute(
            "INSERT INTO events (stream_id, stream_version, event_id, type, schema_version, "
            "data, metadata, hash) "
            "SELECT 'interaction-' || g, 1, gen_random_uuid(), 'test.old', 1, "
            "jsonb_build_object('participants', jsonb_build_array(jsonb_build_object("
            "'actor_id', 'a' || g, 'name', 'Actor ' || g)), 'n', g), '{}', "
            "sha256(int8send(g)) FROM generate_series(1, 50) AS g"
        )
        # Only events below the horizon are indexed: wait out other sessions' transactions.
        async with asyncio.timeout(30):
            while (await horizon_lag(conn)).events_held_back:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        monkeypatch.setattr(module, "available_migrations", lambda: shipped[:6])
        assert [m.name for m in await migrate(conn)] == ["actor_refs"]
        indexes = {r["indexname"] for r in await conn.fetch("SELECT indexname FROM pg_indexes")}
        assert "events_data_strings" not in indexes
        assert "event_actor_refs_ids" in indexes
        # Only the strings that can be an actor id ("Actor 7" cannot, 7 is a number).
        refs = await conn.fetch(
            "SELECT e.stream_id, r.actor_ids FROM event_actor_refs AS r "
            "JOIN events AS e USING (transaction_id, position) ORDER BY e.position"
        )
        assert [(r["stream_id"], r["actor_ids"]) for r in refs] == [
            (f"interaction-{g}", [f"a{g}"]) for g in range(1, 51)
        ]
        last = await conn.fetchrow(
            "SELECT transaction_id, position FROM events "
            "ORDER BY transaction_id DESC, position DESC LIMIT 1"
        )
        checkpoint = await conn.fetchrow(
            "SELECT transaction_id, position FROM event_actor_refs_checkpoint"
        )
        assert checkpoint is not None
        assert last is not None
        assert tuple(checkpoint) == tuple(last)
    finally:
        await conn.close()


async def test_0007_installs_pg_trgm_where_the_server_ships_it(empty_dsn: str) -> None:
    conn = await asyncpg.connect(empty_dsn)
    try:
        await migrate(conn)
        available = await conn.fetchval(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'"
        )
        installed = await conn.fetchval(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'"
        )
        assert installed == available
    finally:
        await conn.close()
