"""Drill: a PostgreSQL hot standby serves the feed and the views.

The test starts a primary of its own and a streaming hot standby of it (``pg_basebackup -R``,
``tests.own_postgres``), and runs the real API twice: on the primary, with the projections
(so that their tables replicate like everything else), and on the standby, read-only
(``DIPLOFEED_RUN_PROJECTIONS=false``; its keys are the primary's, replicated; it polls the
feed, since a standby cannot LISTEN). The seed
article and several concurrent writers append through the primary's API while, on the
standby's, SSE clients follow ``/feed/stream`` and another client pages ``/feed`` with long
polls.

What must hold: every follower on the standby sees each committed event exactly once, in the
primary's order; the views answer there; ``reflect=<cursor>`` on the standby waits until the
standby has replayed that write (shown by pausing its replay); a write sent to the standby is a
503 problem naming the read-only replica, never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from httpx_sse import aconnect_sse

from events import Cursor
from events.domain.seed import seed_commands
from tests.api_server import request_for, running_api
from tests.own_postgres import own_postgres, own_standby

if TYPE_CHECKING:
    from tests.api_server import ApiServer
    from tests.own_postgres import OwnPostgres

WRITERS = 3
SSE_FOLLOWERS = 2
WRITING_S = 4.0
CATCH_UP_BOUND = 30.0
"""Generous, for a shared 2-core machine: the standby is expected to be within a second."""

pytestmark = pytest.mark.timeout(180)


@dataclass
class Follower:
    """What one client of the standby's feed received."""

    name: str
    event_ids: list[str] = field(default_factory=list)
    cursors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def reached(self, end: Cursor) -> bool:
        return bool(self.cursors) and Cursor.decode(self.cursors[-1]) >= end


async def _replayed(primary: OwnPostgres, standby: OwnPostgres) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    source, replica = await asyncpg.connect(primary.url), await asyncpg.connect(standby.url)
    try:
        wanted = await source.fetchval("SELECT pg_current_wal_lsn()::text")
        async with asyncio.timeout(CATCH_UP_BOUND):
            while not await replica.fetchval(  # noqa: ASYNC110
                "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", wanted
            ):
                await asyncio.sleep(0.05)
    finally:
        await source.close()
        await replica.close()


async def _primary_log(primary: OwnPostgres, after: Cursor) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(primary.url)
    try:
        return await conn.fetch(
            "SELECT event_id::text, transaction_id, position FROM events "
            "WHERE (transaction_id, position) > ($1::xid8, $2::bigint) "
            "ORDER BY transaction_id, position",
            after.transaction_id,
            after.position,
        )
    finally:
        await conn.close()


async def _seed(api: ApiServer) -> str:
    """The seed article through the primary's API; the last write's cursor."""
    last = ""
    async with api.client("write") as client:
        for command in seed_commands():
            path, body = request_for(command)
            response = await client.post(path, json=body)
            assert response.status_code in (200, 201), (path, response.text)
            last = response.headers.get("Diplofeed-Cursor", last)
    return last


async def _writer(api: ApiServer, index: int, stop: asyncio.Event) -> int:
    """Schedule meetings until told to stop; how many were acknowledged."""
    acked = 0
    async with api.client("write") as client:
        while not stop.is_set():
            body = {"meeting_id": f"standby{index}n{acked}", "title": "Drill", "valid_time": "2024"}
            response = await client.post("/meetings", json=body)
            assert response.status_code == 201, response.text
            acked += 1
    return acked


async def _follow_stream(api: ApiServer, start: str, follower: Follower) -> None:
    """Follow the standby's live stream from ``start``, resuming after any drop, until
    cancelled."""
    while True:
        headers = {"Last-Event-ID": follower.cursors[-1]} if follower.cursors else {}
        async with (
            api.client("read") as client,
            aconnect_sse(
                client, "GET", "/feed/stream", params={"after": start}, headers=headers
            ) as source,
        ):
            if source.response.status_code != 200:
                follower.problems.append(f"stream answered {source.response.status_code}")
                await asyncio.sleep(0.2)
                continue
            async for message in source.aiter_sse():
                if message.data:
                    follower.cursors.append(message.id)
                    follower.event_ids.append(json.loads(message.data)["id"])
        follower.problems.append("the stream ended")


async def _page_feed(api: ApiServer, start: str, follower: Follower) -> None:
    """Page the standby's ``/feed`` from ``start`` with long polls, until cancelled."""
    cursor = start
    async with api.client("read") as client:
        while True:
            response = await client.get(
                "/feed", params={"after": cursor, "limit": 37}, headers={"Prefer": "wait=1"}
            )
            if response.status_code != 200:
                follower.problems.append(f"page answered {response.status_code}")
                await asyncio.sleep(0.2)
                continue
            for event in response.json():
                follower.event_ids.append(event["id"])
                follower.cursors.append(event["cursor"])
            cursor = response.headers["Diplofeed-Cursor"]


async def _until_reached(followers: list[Follower], end: Cursor) -> None:
    """Wait, bounded, until every follower has received ``end``."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CATCH_UP_BOUND):
            while not all(f.reached(end) for f in followers):  # noqa: ASYNC110
                await asyncio.sleep(0.1)


async def _reflect_waits_for_replay(
    primary: OwnPostgres, standby: OwnPostgres, writer: ApiServer, reader: ApiServer
) -> dict[str, Any]:
    """With the standby's replay paused, a write on the primary and a read of it on the standby
    with ``reflect``; replay resumes a moment later. What the read answered, and whether it
    was still waiting when replay resumed."""
    replica = await asyncpg.connect(standby.url)
    try:
        await replica.execute("SELECT pg_wal_replay_pause()")
        meeting = f"paused{uuid.uuid4().hex[:8]}"
        async with writer.client("write") as client:
            written = await client.post(
                "/meetings", json={"meeting_id": meeting, "title": "Paused", "valid_time": "2024"}
            )
        assert written.status_code == 201, written.text
        async with reader.client("read") as client:
            read = asyncio.create_task(
                client.get(f"/meetings/{meeting}", params={"reflect": written.json()["cursor"]})
            )
            await asyncio.sleep(1.0)
            waiting = not read.done()
            await replica.execute("SELECT pg_wal_replay_resume()")
            response = await read
        return {"waiting": waiting, "response": response, "meeting": meeting}
    finally:
        with contextlib.suppress(asyncpg.PostgresError):
            await replica.execute("SELECT pg_wal_replay_resume()")
        await replica.close()


async def test_a_hot_standby_serves_the_feed_and_the_views() -> None:
    async with (
        own_postgres() as primary,
        own_standby(primary) as standby,
        running_api(primary.url) as writer,
    ):
        await _replayed(primary, standby)  # the keys, before the standby's API checks one
        async with running_api(standby.url, tokens=writer.tokens, run_projections=False) as reader:
            await _drill(primary, standby, writer, reader)
        # Left on by mistake, the projections do not run against a standby (they would fail
        # at every batch); the API serves all the same.
        async with (
            running_api(standby.url, tokens=writer.tokens, run_projections=True) as mistaken,
            mistaken.client("read") as client,
        ):
            assert mistaken.app.state.runtime.runners == {}
            assert (await client.get("/ready")).status_code == 200


async def _drill(
    primary: OwnPostgres, standby: OwnPostgres, writer: ApiServer, reader: ApiServer
) -> None:
    async with reader.client("read") as client:
        head = await client.get("/feed", params={"limit": 1000})
        assert head.status_code == 200, head.text
        start = head.headers["Diplofeed-Cursor"]
    assert reader.app.state.runtime.store.listener.standby, "the standby was not recognised"

    # Followers of the standby, from before the load: the seed article, then concurrent
    # writers, all through the primary.
    followers = [Follower(f"sse-{i}") for i in range(SSE_FOLLOWERS)]
    pager = Follower("pages")
    following = [
        *(asyncio.create_task(_follow_stream(reader, start, f)) for f in followers),
        asyncio.create_task(_page_feed(reader, start, pager)),
    ]
    stop_writing = asyncio.Event()
    writing = [asyncio.create_task(_writer(writer, i, stop_writing)) for i in range(WRITERS)]
    try:
        try:
            seeded_at = await _seed(writer)
            await asyncio.sleep(WRITING_S)
        finally:
            stop_writing.set()
            acked = await asyncio.gather(*writing)
        log = await _primary_log(primary, Cursor.decode(start))
        assert len(log) > sum(acked) >= WRITERS, (len(log), acked)
        end = Cursor(log[-1]["transaction_id"], log[-1]["position"])
        await _until_reached([*followers, pager], end)
    finally:
        for task in following:
            task.cancel()
        for task in following:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # Every event once, in the primary's order, on every follower of the standby.
    expected = [r["event_id"] for r in log]
    for follower in [*followers, pager]:
        assert not follower.problems, (follower.name, follower.problems)
        assert follower.event_ids == expected, (
            follower.name,
            len(follower.event_ids),
            len(expected),
        )

    # The views, on the standby, reflecting the primary's last write (replayed by now or
    # waited for).
    reflect = {"reflect": end.encode()}
    async with reader.client("read") as client:
        meetings = await client.get("/meetings", params={**reflect, "limit": 1000})
        roster = await client.get("/meetings/moscow_2024", params=reflect)
        contacts = await client.get("/actors/hamas/contacts", params=reflect)
        graph = await client.get("/graph", params={**reflect, "actor": "hamas"})
        by_actor = await client.get("/feed", params={"actor": "hamas", "limit": 1000})
        others = [
            await client.get("/actors", params={"name": "Hamas"}),
            await client.get("/actors/hamas", params=reflect),
            await client.get("/audit/meeting-moscow_2024", params=reflect),
            await client.get("/streams/meeting-moscow_2024"),
            await client.get("/meetings/moscow_2024", params={"as_of_cursor": seeded_at}),
            await client.get("/ready"),
            await client.get("/metrics"),
        ]
    for response in (meetings, roster, contacts, graph, by_actor, *others):
        assert response.status_code == 200, (str(response.url), response.text)
    for response in (meetings, roster, contacts, graph):
        assert response.headers["Diplofeed-Stale"] == "false", str(response.url)
    assert {"moscow_2024", "standby0n0"} <= {m["meeting_id"] for m in meetings.json()}
    assert roster.json()["title"] == "Inter-Palestinian meeting in Moscow"
    assert contacts.json(), "no contact history for Hamas on the standby"
    assert graph.json(), "no graph edges for Hamas on the standby"
    async with writer.client("read") as client:
        on_primary = await client.get("/feed", params={"actor": "hamas", "limit": 1000})
    assert [e["id"] for e in by_actor.json()] == [e["id"] for e in on_primary.json()]
    assert Cursor.decode(seeded_at) <= end

    # reflect= waits for the standby's replay, not just for the projection.
    paused = await _reflect_waits_for_replay(primary, standby, writer, reader)
    assert paused["waiting"], "the read answered while the standby could not have the write"
    response = paused["response"]
    assert response.status_code == 200, response.text
    assert response.json()["meeting_id"] == paused["meeting"]
    assert response.headers["Diplofeed-Stale"] == "false"

    # Writes and key administration sent to the standby: a clean 503 naming the replica.
    async with reader.client("admin") as client:
        refused = [
            await client.post(
                "/meetings", json={"meeting_id": "nowhere", "title": "No", "valid_time": "2024"}
            ),
            await client.post(
                "/meetings",
                json={"meeting_id": "nowhere2", "title": "No", "valid_time": "2024"},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            ),
            await client.post("/keys", json={"name": "nope", "scopes": ["read"]}),
        ]
    for response in refused:
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"] == "/problems/read-only", response.text


HELD_LOCKS_SQL = """
SELECT l.relation::regclass::text FROM pg_locks AS l JOIN pg_class AS c ON c.oid = l.relation
WHERE l.pid = $1 AND l.granted AND c.relnamespace <> 'pg_catalog'::regnamespace
  AND c.relkind = 'r'
"""
REPLAYED_LOCKS_SQL = """
SELECT count(*) FROM pg_locks AS l JOIN pg_class AS c ON c.oid = l.relation
WHERE l.mode = 'AccessExclusiveLock' AND c.relnamespace = 'projections'::regnamespace
"""
WAITING_SQL = """
SELECT pid FROM pg_stat_activity
WHERE wait_event_type = 'Lock' AND backend_type = 'client backend'
"""


async def _flushed(primary: OwnPostgres) -> None:
    """Flush the primary's WAL, and so send it to the standby: a lock taken in a transaction
    still open is logged at once but flushed only by a commit (here one of a transaction that
    takes an id and does nothing else), or once its WAL page fills up."""
    conn = await asyncpg.connect(primary.url)
    try:
        await conn.execute("SELECT pg_current_xact_id()")
    finally:
        await conn.close()


async def test_a_read_the_standby_cancels_to_replay_is_a_503_to_retry() -> None:
    """A view read on the standby holds a table the primary then locks: the standby cancels
    the read rather than delay replay (``max_standby_streaming_delay``, set to 0 for that
    moment). The answer is a 503 problem saying to retry, not a 500."""
    async with (
        own_postgres() as primary,
        own_standby(primary) as standby,
        running_api(primary.url) as writer,
    ):
        async with writer.client("write") as client:
            body = {"meeting_id": "locked", "title": "Locked", "valid_time": "2024"}
            written = await client.post("/meetings", json=body)
            assert written.status_code == 201, written.text
            # The projections' tables exist and show the write.
            shown = await client.get(
                "/meetings/locked", params={"reflect": written.json()["cursor"]}
            )
            assert shown.status_code == 200, shown.text
        await _replayed(primary, standby)
        first, second = await asyncpg.connect(primary.url), await asyncpg.connect(primary.url)
        replica = await asyncpg.connect(standby.url)
        try:
            async with running_api(
                standby.url, tokens=writer.tokens, run_projections=False,
                view_statement_timeout_ms=60_000,
            ) as reader, reader.client("read") as client:  # fmt: skip
                # 1. The primary locks every view table; the standby's replay takes the locks.
                tables = await first.fetch(
                    "SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables "
                    "WHERE schemaname = 'projections'"
                )
                first_tx = first.transaction()
                await first_tx.start()
                await first.execute(
                    f"LOCK TABLE {', '.join(t['name'] for t in tables)} IN ACCESS EXCLUSIVE MODE"
                )
                await _flushed(primary)
                async with asyncio.timeout(CATCH_UP_BOUND):
                    while await replica.fetchval(REPLAYED_LOCKS_SQL) < len(tables):  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                # 2. A view read on the standby blocks on one of them, holding what it read
                # before in its snapshot's transaction.
                read = asyncio.create_task(client.get("/meetings"))
                async with asyncio.timeout(CATCH_UP_BOUND):
                    while not (waiting := await replica.fetch(WAITING_SQL)):  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                held = await replica.fetch(HELD_LOCKS_SQL, waiting[0]["pid"])
                assert held, "the blocked read holds no table"
                # 3. The primary locks a table the read holds: replaying that cancels the read.
                await replica.execute("ALTER SYSTEM SET max_standby_streaming_delay = 0")
                await replica.execute("SELECT pg_reload_conf()")
                second_tx = second.transaction()
                await second_tx.start()
                await second.execute(f"LOCK TABLE {held[0][0]} IN ACCESS EXCLUSIVE MODE")
                await _flushed(primary)
                # (Within the old delay, 30 s, should the startup process not have reloaded.)
                async with asyncio.timeout(2 * CATCH_UP_BOUND):
                    response = await read
                await second_tx.rollback()
                await first_tx.rollback()
                after = await client.get("/meetings")
        finally:
            for conn in (first, second, replica):
                await conn.close()
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "/problems/cancelled", response.text
    assert response.headers["Retry-After"] == "1"
    assert after.status_code == 200, after.text
