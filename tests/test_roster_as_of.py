"""The roster as of any cursor, read by index from the projection's versions: equal to the pure
fold of the log up to that cursor, to the live view captured at that cursor, and the same rows
whatever the batch size a rebuild applied the log in."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any, cast

import asyncpg
import pytest

from events.connect import connect
from events.domain.catalogue import EventCorrected, EventRetracted, MeetingPostponed
from events.domain.commands import (
    ConfirmAttendance,
    CorrectEvent,
    InviteFaction,
    NameDelegationLeader,
    PostponeMeeting,
    RegisterActor,
    RetractEvent,
    ScheduleMeeting,
)
from events.domain.handler import CommandHandler
from events.records import START
from projections.roster import RosterProjection, get_roster
from projections.roster.schema import GET_SQL, LIST_SQL, tables
from projections.runner import ProjectionRunner, checkpoint_of
from projections.system_time import key_of
from tests.database import scratch_database
from tests.roster_oracle import fold_log, folded_at, routed
from tests.synthetic_log import SyntheticLog

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from events import ConnectionOptions, Cursor, EventStore, RecordedEvent
    from events.domain.handler import Outcome
    from projections.roster import RosterView

EVENTS = 2_500
# Older layouts: an unversioned table, as every roster table was before system time; then
# versions whose JSON is not what the API sends (a cursor as an object), in a ``view`` column;
# then today's columns unstamped: bodies of format 1, without a meeting's ``purpose``; then
# bodies with a purpose but no attendance histories, under either stamp they were given.
OLD_LAYOUTS = {
    "unversioned": """
CREATE TABLE projections.{table} (
    meeting_id text PRIMARY KEY,
    draft      bytea,
    view       jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE projections.{links} (stream_id text PRIMARY KEY, meeting_id text NOT NULL);
INSERT INTO projections.{table} (meeting_id, draft, view) VALUES ('stale', NULL, 'null')
""",
    "view_column": """
CREATE TABLE projections.{table} (
    meeting_id text NOT NULL,
    sys_from   bytea NOT NULL,
    sys_to     bytea,
    draft      bytea,
    view       bytea NOT NULL,
    PRIMARY KEY (meeting_id, sys_from)
);
CREATE TABLE projections.{links} (stream_id text PRIMARY KEY, meeting_id text NOT NULL);
INSERT INTO projections.{table} (meeting_id, sys_from, draft, view)
VALUES ('stale', '\\x00', '', 'null')
""",
}

OLD_LAYOUTS["unstamped"] = (
    OLD_LAYOUTS["view_column"]
    .replace("view       bytea", "body       bytea")
    .replace("draft, view)", "draft, body)")
)
OLD_LAYOUTS["body_format_2"] = (
    OLD_LAYOUTS["unstamped"]
    + ";\nCOMMENT ON TABLE projections.{table} IS 'diplofeed roster, body format 2'"
)
OLD_LAYOUTS["layout_2"] = (
    OLD_LAYOUTS["unstamped"] + ";\nCOMMENT ON TABLE projections.{table} IS 'diplofeed layout 2'"
)

ROWS_SQL = """
SELECT meeting_id, sys_from, sys_to, draft, body
FROM projections.{table} ORDER BY meeting_id, sys_from
"""


class Log:
    """The synthetic log and each meeting's facts in it."""

    def __init__(self, synthetic: SyntheticLog, events: list[RecordedEvent]) -> None:
        self.synthetic, self.events = synthetic, events
        self.facts = routed(events)

    async def build(self, batch: int) -> str:
        """A fresh roster projection over the whole log, in batches of ``batch``; its prefix."""
        prefix = f"r{uuid.uuid4().hex[:8]}"
        projection = RosterProjection(name=prefix, table_prefix=prefix)
        await self.synthetic.apply(projection, self.events, batch)
        return prefix

    async def rows(self, prefix: str) -> list[asyncpg.Record]:
        sql = ROWS_SQL.format(**tables(prefix, 1))
        return await self.synthetic.pool.fetch(sql)


@pytest.fixture(scope="module")
async def log(server_url: str) -> AsyncIterator[Log]:
    async with scratch_database(server_url, migrated=True) as dsn:
        synthetic = await SyntheticLog.create(dsn, EVENTS)
        yield Log(synthetic, await synthetic.read(RosterProjection().filter))
        await synthetic.close()


async def test_as_of_every_cursor_equals_the_fold_of_the_log_up_to_it(log: Log) -> None:
    kinds = [type(f.event) for facts in log.facts.values() for f in facts]
    for kind in (EventCorrected, EventRetracted, MeetingPostponed):
        assert kinds.count(kind) >= 5, kind
    prefix = await log.build(50)
    pool = log.synthetic.pool
    # Every cursor of the log, for every meeting: the version current there is the fold of the
    # meeting's facts up to it (None before its first fact and while nothing schedules it).
    for meeting_id, facts in log.facts.items():
        cursors = [e.cursor for e in log.events if facts[0].cursor <= e.cursor]
        cursors = [START, log.events[0].cursor, *cursors[:: max(1, len(cursors) // 60)]]
        cursors += [f.cursor for f in facts]
        for cursor in cursors:
            at = await get_roster(pool, meeting_id, at=cursor, table_prefix=prefix)
            assert at == folded_at(facts, cursor), (meeting_id, cursor)


@pytest.mark.parametrize("batch", [5, 1000])
async def test_a_rebuild_in_any_batch_size_equals_the_incremental_tables_row_for_row(
    log: Log, batch: int
) -> None:
    incremental = await log.rows(await log.build(1))
    rebuilt = await log.rows(await log.build(batch))
    assert len(incremental) == sum(len(f) for f in log.facts.values())
    assert [dict(r) for r in rebuilt] == [dict(r) for r in incremental]
    # One open version per meeting, the only one with a draft.
    open_rows = [r for r in incremental if r["sys_to"] is None]
    assert len(open_rows) == len(log.facts)
    assert all((r["draft"] is None) is (r["sys_to"] is not None) for r in incremental)


async def test_reads_at_a_cursor_go_through_the_primary_key(log: Log) -> None:
    prefix = await log.build(1000)
    names = tables(prefix, 1)
    meeting_id, facts = max(log.facts.items(), key=lambda item: len(item[1]))
    at = key_of(facts[len(facts) // 2].cursor)
    async with log.synthetic.pool.acquire() as proxy:
        conn = cast("asyncpg.Connection", proxy)
        await conn.execute(f"ANALYZE projections.{names['table']}")
        for sql, arguments in (
            (GET_SQL, (meeting_id, at)),
            (LIST_SQL, (at, "", 100)),
        ):
            rows = await conn.fetch("EXPLAIN " + sql.format(**names), *arguments)
            plan = "\n".join(r[0] for r in rows)
            assert f"Index Scan Backward using {names['table']}_pkey" in plan, plan
            assert "Seq Scan" not in plan, plan


@pytest.mark.parametrize("layout", sorted(OLD_LAYOUTS))
async def test_setup_replaces_a_table_of_an_older_layout_and_folds_the_log_again(
    log: Log, layout: str
) -> None:
    prefix = f"r{uuid.uuid4().hex[:8]}"
    names = tables(prefix, 1)
    projection = RosterProjection(name=prefix, table_prefix=prefix)
    pool = log.synthetic.pool
    middle = log.events[len(log.events) // 2].cursor
    async with pool.acquire() as proxy:
        conn = cast("asyncpg.Connection", proxy)
        await conn.execute(OLD_LAYOUTS[layout].format(**names))
        await conn.execute(
            "INSERT INTO projection_checkpoints (name, version, transaction_id, position, events) "
            "VALUES ($1, 1, $2, $3, 1250)",
            prefix,
            middle.transaction_id,
            middle.position,
        )
        await projection.setup(conn)
        assert await checkpoint_of(conn, prefix, 1) == (START, 0)
        assert not await conn.fetch(f"SELECT * FROM projections.{names['table']}")
        await projection.setup(conn)  # idempotent once replaced
    # The runner's way on: from the (restarted) checkpoint, over the whole log.
    await log.synthetic.apply(projection, log.events, 500)
    assert await log.rows(prefix) == await log.rows(await log.build(500))


# -- the live view captured while commands land -------------------------------------------------


class _Settling:
    """A command handler whose every command of a meeting is waited for by the projection
    (``settle``), so that the live view is captured after each."""

    def __init__(self, handler: CommandHandler, settle: Callable[[Cursor], Awaitable[None]]):
        self._handler, self._settle = handler, settle

    async def handle(self, command: Any) -> Outcome:
        outcome = await self._handler.handle(command)
        assert outcome.result is not None
        if outcome.stream_id.startswith("meeting-"):  # the roster reads no actor events
            await self._settle(outcome.result.cursor)
        return outcome


async def _commands(handler: _Settling, tag: str) -> None:
    """A meeting through invitations, leaders, corrections, retractions and postponements."""
    meeting, factions = f"m_{tag}", [f"f{n}_{tag}" for n in range(3)]
    people = [f"p{n}_{tag}" for n in range(3)]
    for faction in factions:
        await handler.handle(
            RegisterActor(actor_id=faction, kind="organisation", canonical_name=f"F {faction}")
        )
    for person in people:
        await handler.handle(
            RegisterActor(actor_id=person, kind="person", canonical_name=f"P {person}")
        )
    scheduled = await handler.handle(
        ScheduleMeeting(meeting_id=meeting, title="Talks", valid_time="2024-03")
    )
    stream = f"meeting-{meeting}"
    steps: list[Any] = []
    for faction, person in zip(factions, people, strict=True):
        steps += [
            InviteFaction(meeting_id=meeting, faction=faction),
            ConfirmAttendance(meeting_id=meeting, faction=faction),
            NameDelegationLeader(meeting_id=meeting, faction=faction, person=person),
        ]
    for n, step in enumerate(steps):
        outcome = await handler.handle(step)
        if n % 3 == 2:
            await handler.handle(
                RetractEvent(stream=stream, target_event_id=outcome.event_ids[0], reason="r")
            )
        if n % 4 == 1:
            await handler.handle(PostponeMeeting(meeting_id=meeting, reason=f"p{n}"))
        if n % 4 == 3:
            await handler.handle(
                CorrectEvent(
                    stream=stream,
                    target_event_id=scheduled.event_ids[0],
                    changes={"valid_time": f"2024-0{4 + n // 4}"},
                    reason="misread",
                )
            )
        await asyncio.sleep(0.02)
    # Without its scheduling the meeting is unknown again: a version whose view is null.
    await handler.handle(
        RetractEvent(stream=stream, target_event_id=scheduled.event_ids[0], reason="no such")
    )


async def test_as_of_equals_the_live_view_captured_at_that_cursor(
    store: EventStore, pool: asyncpg.Pool, app_options: ConnectionOptions
) -> None:
    tag = uuid.uuid4().hex[:8]
    prefix = f"r_{tag}"
    projection = RosterProjection(name=prefix, table_prefix=prefix)
    runner = ProjectionRunner(store, projection, lambda: connect(app_options), batch_size=3)
    running = asyncio.create_task(runner.run())
    captures: list[tuple[Any, RosterView | None]] = []

    async def capture() -> Cursor:
        """The checkpoint and the live view, in one snapshot."""
        async with pool.acquire() as proxy:
            conn = cast("asyncpg.Connection", proxy)
            try:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    at, _ = await checkpoint_of(conn, prefix, 1)
                    view = await get_roster(conn, f"m_{tag}", at=at, table_prefix=prefix)
            except asyncpg.UndefinedTableError:
                return START  # the runner has not created its tables yet
            captures.append((at, view))
            return at

    async def capture_meanwhile() -> None:
        while True:
            await capture()
            await asyncio.sleep(0.01)

    async def settle(cursor: Cursor) -> None:
        async with asyncio.timeout(30):
            while await capture() < cursor:  # noqa: ASYNC110 (the state is in the database)
                await asyncio.sleep(0.01)

    capturing = asyncio.create_task(capture_meanwhile())
    try:
        await _commands(_Settling(CommandHandler(store), settle), tag)
    finally:
        for task in (running, capturing):
            task.cancel()
        await asyncio.gather(running, capturing, return_exceptions=True)
    distinct = {repr(v) for _, v in captures}
    assert len(distinct) > 12, "the captures did not see the roster change"
    seen = [v is not None for _, v in captures]
    assert True in seen
    assert seen[-1] is False, "the retracted scheduling left a roster"
    for at, view in captures:
        assert await get_roster(pool, f"m_{tag}", at=at, table_prefix=prefix) == view
    for at, view in captures[:: max(1, len(captures) // 10)]:
        assert await fold_log(store, f"m_{tag}", at) == view
    conn = await connect(app_options)
    try:
        await projection.drop(conn)
    finally:
        await conn.close()
