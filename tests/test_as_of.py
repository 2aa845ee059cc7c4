"""As of a past moment, by index: the contacts views read at a cursor equal what the live views
showed at that cursor, page by page, through corrections, retractions and role changes; the
system-time ranges are the same however the tables were built; a walk is pinned to its first
page's moment. Through the real app, over a real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime
import random
import uuid
from typing import TYPE_CHECKING, Any, cast

import asyncpg
import msgspec
import pytest

from events import START, Cursor
from events.connect import connect
from events.domain.commands import (
    AddAlias,
    AssignRole,
    ConfirmAttendance,
    CorrectEvent,
    InviteFaction,
    NameDelegationLeader,
    ParticipantRef,
    RecordInteraction,
    RegisterActor,
    RetractEvent,
    ScheduleMeeting,
)
from events.domain.handler import CommandHandler
from events.domain.vocabulary import Alias
from projections.contacts import ContactsProjection, contact_history, contact_history_page
from projections.contacts.schema import (
    HISTORY_SQL,
    MERGED_SCANS_SQL,
    ORDERED_SCANS_SQL,
    merged_history_sql,
    sql,
)
from projections.rebuild import live_version
from projections.roster import RosterProjection, get_roster
from projections.runner import ProjectionRunner, checkpoint_of
from tests.api_server import running_api
from tests.database import scratch_database
from tests.roster_oracle import fold_log
from tests.test_contacts_batches import TABLES

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx

    from events import ConnectionOptions, EventStore, RecordedEvent
    from events.domain.commands import Command
    from tests.api_server import ApiServer

PEOPLE = 4


@pytest.fixture(scope="module")
async def api(server_url: str) -> AsyncIterator[ApiServer]:
    """The real API over a database of this module's own: its writes stay out of the other
    modules' feeds, and its tables hold this module's rows alone."""
    async with (
        scratch_database(server_url, migrated=True) as dsn,
        running_api(dsn) as server,
    ):
        yield server


def _handler(api: ApiServer) -> CommandHandler:
    handler: CommandHandler = api.app.state.runtime.handler
    return handler


async def _register(handler: CommandHandler, tag: str) -> tuple[str, list[str]]:
    """A faction of ``tag`` and its members (roles over different years)."""
    faction = f"f_{tag}"
    people = [f"p{n}_{tag}" for n in range(PEOPLE)]
    await handler.handle(
        RegisterActor(actor_id=faction, kind="organisation", canonical_name=f"Front {tag}")
    )
    for n, person in enumerate(people):
        await handler.handle(
            RegisterActor(actor_id=person, kind="person", canonical_name=f"Envoy {n} {tag}")
        )
        await handler.handle(
            AssignRole(actor=person, organisation=faction, valid_time=f"{2000 + n}/{2012 + n}")
        )
    return faction, people


async def _load(
    handler: CommandHandler, tag: str, rounds: int, *, seed: str = "", pause: float = 0.01
) -> None:
    """Commands that keep changing the faction's history: interactions of its members (some
    with open dates) and of itself, corrections, retractions, roles given and withdrawn."""
    rng = random.Random(tag + seed)
    faction, people = f"f_{tag}", [f"p{n}_{tag}" for n in range(PEOPLE)]
    recorded: list[tuple[str, str]] = []
    roles: list[tuple[str, str]] = []
    dates = ["{y}-{m:02d}", "{y}", "{y}-{m:02d}/..", "../{y}", "{y}/{z}"]
    for n in range(rounds):
        draw = rng.random()
        if draw < 0.6 or len(recorded) < 3:
            a, b = rng.sample([*people, faction], 2)
            year = rng.randint(1998, 2018)
            outcome = await handler.handle(
                RecordInteraction(
                    kind=rng.choice(["phone_call", "meeting", "visit"]),
                    interaction_id=f"i{n}{seed}_{tag}",
                    participants=(
                        ParticipantRef(actor=a, role="initiator"),
                        ParticipantRef(actor=b, role="recipient"),
                    ),
                    valid_time=rng.choice(dates).format(
                        y=year, m=rng.randint(1, 12), z=year + rng.randint(1, 3)
                    ),
                )
            )
            recorded.append((outcome.stream_id, outcome.event_ids[0]))
        elif draw < 0.75:
            stream, event_id = rng.choice(recorded)
            await handler.handle(
                CorrectEvent(
                    stream=stream,
                    target_event_id=event_id,
                    changes={"valid_time": str(rng.randint(1998, 2018))},
                    reason="the source gives another year",
                )
            )
        elif draw < 0.85:
            stream, event_id = recorded.pop(rng.randrange(len(recorded)))
            await handler.handle(RetractEvent(stream=stream, target_event_id=event_id, reason="r"))
        elif draw < 0.95 or not roles:
            person = rng.choice(people)
            start = rng.randint(1995, 2015)
            outcome = await handler.handle(
                AssignRole(actor=person, organisation=faction, valid_time=f"{start}/{start + 2}")
            )
            roles.append((outcome.stream_id, outcome.event_ids[0]))
        else:
            stream, event_id = roles.pop(rng.randrange(len(roles)))
            await handler.handle(RetractEvent(stream=stream, target_event_id=event_id, reason="r"))
        await asyncio.sleep(rng.uniform(0, pause))


async def _get(client: httpx.AsyncClient, path: str, **params: Any) -> httpx.Response:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response


async def _walk(
    client: httpx.AsyncClient, path: str, **params: Any
) -> tuple[list[Any], list[httpx.Response]]:
    """Every entry of a paged view, following ``Link: rel="next"``; and each page."""
    pages = [await _get(client, path, **params)]
    while "next" in pages[-1].links:
        response = await client.get(pages[-1].links["next"]["url"])
        assert response.status_code == 200, response.text
        pages.append(response)
    return [entry for page in pages for entry in page.json()], pages


async def _caught_up(api: ApiServer, client: httpx.AsyncClient, cursor: Cursor) -> None:
    async with asyncio.timeout(30):
        await _get(client, "/actors", name="nobody", reflect=cursor.encode())


async def _last_cursor(api: ApiServer) -> Cursor:
    runtime = api.app.state.runtime
    head = await runtime.pool.fetchrow(
        "SELECT transaction_id, position FROM events "
        "ORDER BY transaction_id DESC, position DESC LIMIT 1"
    )
    return Cursor(head["transaction_id"], head["position"])


QUERIES: list[dict[str, Any]] = [
    {},
    {"members": "false"},
    {"kind": "meeting"},
    {"from": "2003-01-01", "to": "2009-12-31", "window": "certain"},
]


async def test_as_of_pages_equal_the_live_views_captured_at_their_cursor(api: ApiServer) -> None:
    tag = uuid.uuid4().hex[:8]
    handler = _handler(api)
    faction, people = await _register(handler, tag)
    captures: list[tuple[str, dict[str, Any], list[Any]]] = []
    stop = asyncio.Event()

    async def capture() -> None:
        async with api.client("read") as client:
            while not stop.is_set():
                for query in QUERIES:
                    # One page holding everything: the live answer, at its position.
                    page = await _get(client, f"/actors/{faction}/contacts", limit=1000, **query)
                    assert "next" not in page.links
                    captures.append((page.headers["Diplofeed-Position"], query, page.json()))
                await asyncio.sleep(0.02)

    capturing = asyncio.create_task(capture())
    try:
        await _load(handler, tag, rounds=60, pause=0.08)
        async with api.client("read") as client:
            await _caught_up(api, client, await _last_cursor(api))
        await asyncio.sleep(0.2)
    finally:
        stop.set()
        await capturing

    distinct = {(q.get("kind"), len(h)) for _, q, h in captures}
    assert len(distinct) > 10, "the captures did not see the history change"
    assert any(e["via"] for _, _, h in captures for e in h), "no member's interaction seen"
    async with api.client("read") as client:
        for position, query, history in captures[:: max(1, len(captures) // 16)]:
            walked, pages = await _walk(
                client, f"/actors/{faction}/contacts", as_of_cursor=position, limit=3, **query
            )
            assert walked == history, (position, query)
            assert all(p.headers["Diplofeed-Position"] == position for p in pages)
            # The person's own history, live then and as of then, agree too.
        for person in people:
            live = await _get(client, f"/actors/{person}/contacts", limit=1000)
            walked, _ = await _walk(
                client,
                f"/actors/{person}/contacts",
                as_of_cursor=live.headers["Diplofeed-Position"],
                limit=2,
            )
            assert walked == live.json()


async def test_an_organisation_through_its_members_pages_as_it_reads_whole(
    api: ApiServer,
) -> None:
    tag = uuid.uuid4().hex[:8]
    handler = _handler(api)
    faction, _ = await _register(handler, tag)
    await _load(handler, tag, rounds=40, seed="m")
    async with api.client("read") as client:
        await _caught_up(api, client, await _last_cursor(api))
        for query in QUERIES:
            whole = await _get(client, f"/actors/{faction}/contacts", limit=1000, **query)
            at = whole.headers["Diplofeed-Position"]
            for limit in (1, 4):
                walked, _ = await _walk(
                    client, f"/actors/{faction}/contacts", as_of_cursor=at, limit=limit, **query
                )
                assert walked == whole.json(), (query, limit)
        direct = await _get(client, f"/actors/{faction}/contacts", limit=1000)
    entries = direct.json()
    assert any(e["via"] for e in entries) and any(e["via"] is None for e in entries)
    assert len({e["interaction_id"] for e in entries}) == len(entries)


async def test_a_follower_sees_its_first_pages_moment_while_writes_land(api: ApiServer) -> None:
    tag = uuid.uuid4().hex[:8]
    handler = _handler(api)
    faction, _ = await _register(handler, tag)
    await _load(handler, tag, rounds=25, seed="a")
    async with api.client("read") as client:
        await _caught_up(api, client, await _last_cursor(api))
        first = await _get(client, f"/actors/{faction}/contacts", limit=2)
        at = first.headers["Diplofeed-Position"]
        seen = list(first.json())
        page = first
        rounds = 0
        while "next" in page.links:
            # Writes land between pages: new interactions, corrections, retractions.
            await _load(handler, tag, rounds=3, seed=f"b{rounds}")
            rounds += 1
            page = await client.get(page.links["next"]["url"])
            assert page.status_code == 200, page.text
            assert page.headers["Diplofeed-Position"] == at
            seen.extend(page.json())
        assert rounds >= 3
        snapshot = await _get(client, f"/actors/{faction}/contacts", as_of_cursor=at, limit=1000)
        keys = [e["interaction_id"] for e in seen]
        assert len(keys) == len(set(keys))
        assert seen == snapshot.json()
        # A deep page read again later is the page the walk read.
        deep_url = first.links["next"]["url"]
        again = await client.get(deep_url)
        assert again.json() == seen[2:4]
        await _caught_up(api, client, await _last_cursor(api))
        live = await _get(client, f"/actors/{faction}/contacts", limit=1000)
        assert live.json() != seen


async def test_tokens_and_limits_are_checked(api: ApiServer) -> None:
    tag = uuid.uuid4().hex[:8]
    handler = _handler(api)
    faction, people = await _register(handler, tag)
    await _load(handler, tag, rounds=12, seed="t")
    async with api.client("read") as client:
        await _caught_up(api, client, await _last_cursor(api))
        first = await _get(client, f"/actors/{faction}/contacts", limit=1)
        token = first.links["next"]["url"].split("after=")[1]
        for path, params in [
            (f"/actors/{people[0]}/contacts", {}),
            (f"/actors/{faction}/contacts", {"kind": "visit"}),
            ("/actors", {"name": "Envoy"}),
        ]:
            response = await client.get(path, params={**params, "after": token})
            assert response.status_code == 400, (path, response.text)
        garbled = await client.get(f"/actors/{faction}/contacts", params={"after": "x" + token})
        assert garbled.status_code == 400
        for limit in (0, 1001):
            for path in (f"/actors/{faction}/contacts", "/actors?name=Envoy"):
                response = await client.get(path, params={"limit": limit})
                assert response.status_code == 400, (path, limit)


async def test_actors_search_and_lookup_as_of(api: ApiServer) -> None:
    tag = uuid.uuid4().hex[:8]
    handler = _handler(api)
    _faction, people = await _register(handler, tag)
    async with api.client("read") as client:
        await _caught_up(api, client, before := await _last_cursor(api))
        await handler.handle(AddAlias(actor=people[0], alias=Alias(text=f"Zorro {tag}", lang="en")))
        await handler.handle(
            RegisterActor(actor_id=f"late_{tag}", kind="person", canonical_name=f"Envoy 9 {tag}")
        )
        await _caught_up(api, client, after := await _last_cursor(api))
        name = "Envoy"
        whole = await _get(client, "/actors", name="envoy", limit=1000)
        walked, pages = await _walk(client, "/actors", name=name.lower(), limit=2)
        assert walked == whole.json() and len(pages) > 2
        ours = [a["actor_id"] for a in walked if a["actor_id"].endswith(tag)]
        assert ours == [*people, f"late_{tag}"]
        exact = await _get(client, "/actors", name=f"Envoy 2 {tag}", limit=1)
        assert [a["actor_id"] for a in exact.json()] == [people[2]]
        then, _ = await _walk(
            client, "/actors", name="envoy", as_of_cursor=before.encode(), limit=3
        )
        assert f"late_{tag}" not in {a["actor_id"] for a in then}
        assert {a["actor_id"] for a in then} >= set(people)
        now = await _get(client, f"/actors/{people[0]}")
        was = await _get(client, f"/actors/{people[0]}", as_of_cursor=before.encode())
        assert f"Zorro {tag}" in now.json()["aliases"]
        assert f"Zorro {tag}" not in was.json().get("aliases", [])
        assert was.headers["Diplofeed-Position"] == before.encode()
        missing = await client.get(f"/actors/late_{tag}", params={"as_of_cursor": before.encode()})
        assert missing.status_code == 404
        assert (
            await client.get(f"/actors/late_{tag}", params={"as_of_cursor": after.encode()})
        ).status_code == 200


async def test_a_rebuild_in_any_batches_equals_the_tables_built_while_writes_landed(
    api: ApiServer,
) -> None:
    tag = uuid.uuid4().hex[:8]
    handler = _handler(api)
    await _register(handler, tag)
    await _load(handler, tag, rounds=30, seed="r")
    runtime = api.app.state.runtime
    async with api.client("read") as client:
        await _caught_up(api, client, await _last_cursor(api))
    version = await live_version(runtime.pool, "contacts") or 1
    live = ContactsProjection(version=version)
    checkpoint, _ = await checkpoint_of(runtime.pool, live.name, version)
    events: list[RecordedEvent] = []
    cursor = START
    while True:
        page = await runtime.store.read_all(cursor, limit=1000, filter=live.filter)
        events.extend(e for e in page.events if e.cursor <= checkpoint)
        cursor = page.next_cursor
        if not page.full or cursor >= checkpoint:
            break
    conn = await asyncpg.connect(api.dsn)
    try:
        expected = await _rows(conn, "", version)
        assert any(r["sys_to"] is not None for r in expected["interactions"])
        for batch in (1, 7, 1000):
            prefix = f"b{batch}_{tag}_"
            rebuilt = ContactsProjection(name=prefix, prefix=prefix)
            await rebuilt.setup(conn)
            for start in range(0, len(events), batch):
                async with conn.transaction():
                    await rebuilt.apply(conn, events[start : start + batch])
            assert await _rows(conn, prefix, 1) == expected, batch
            await rebuilt.drop(conn)
    finally:
        await conn.close()


async def _rows(conn: asyncpg.Connection, prefix: str, version: int) -> dict[str, list[Any]]:
    tables: dict[str, list[Any]] = {}
    for table, key in TABLES.items():
        rows = await conn.fetch(
            f"SELECT * FROM projections.{prefix}{table}_v{version} ORDER BY {key}"
        )
        tables[table] = [
            {
                k: (msgspec.json.decode(v) if k == "view" and isinstance(v, str) else v)
                for k, v in r.items()
            }
            for r in rows
        ]
    return tables


async def test_the_history_page_reads_the_links_index(pool: asyncpg.Pool) -> None:
    tag = uuid.uuid4().hex[:8]
    projection = ContactsProjection(name=f"x_{tag}", prefix=f"x_{tag}_")
    async with pool.acquire() as proxy:
        conn = cast("asyncpg.Connection", proxy)
        await projection.setup(conn)
        links = sql("{links}", projection.prefix, 1)
        roles = sql("{roles}", projection.prefix, 1)
        # 2,000 actors with 50 interactions each, two versions of every tenth one.
        await conn.execute(
            f"""
            INSERT INTO projections.{links}
            SELECT 'i' || n, 'a' || (n % 2000), 'participant', NULL, 'meeting',
                   date '2000-01-01' + (n % 7000), date '2000-01-01' + (n % 7000) + 3, false,
                   v.sys_from, v.sys_to
            FROM generate_series(1, 100000) AS n
            CROSS JOIN LATERAL (
                SELECT '\\x01'::bytea AS sys_from,
                       CASE WHEN n % 10 = 0 THEN '\\x02'::bytea END AS sys_to
                UNION ALL SELECT '\\x02'::bytea, NULL WHERE n % 10 = 0
            ) AS v
            """
        )
        await conn.execute(
            f"INSERT INTO projections.{roles} SELECT 'a' || n, 'org', NULL, NULL, NULL, "
            "'\\x01'::bytea, NULL FROM generate_series(1, 30) AS n"
        )
        await conn.execute(f"ANALYZE projections.{links}; ANALYZE projections.{roles}")
        members = [f"a{n}" for n in range(1, 31)]
        args = [
            "org",
            b"\x03",
            None,
            None,
            None,
            None,
            False,
            datetime.date.max,
            datetime.date.max,
            "",
            101,
            members,
            [None] * len(members),
            [None] * len(members),
        ]
        merged = sql(merged_history_sql(32), projection.prefix, 1)
        lateral = sql(HISTORY_SQL, projection.prefix, 1)
        for statement, settings in ((merged, MERGED_SCANS_SQL), (lateral, ORDERED_SCANS_SQL)):
            for generic in (False, True):
                async with conn.transaction():
                    if generic:
                        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                    await conn.execute(settings)  # as contact_history_page reads a page
                    plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {statement}", *args))
                # Each actor's links walked in page order, stopping after the page.
                assert f"Index Scan using {links}_history_idx" in plan, plan
                assert f"Seq Scan on {links}" not in plan, plan
                if statement is merged:
                    # One merge of the branches that stops when the page is full: no sort.
                    assert "Merge Append" in plan, plan
                    assert "Sort Key" not in plan.split("Merge Append")[0], plan
        await projection.drop(conn)


async def test_roster_views_as_of_a_cursor_equal_the_live_views_captured_then(
    store: EventStore, pool: asyncpg.Pool, app_options: ConnectionOptions
) -> None:
    tag = uuid.uuid4().hex[:8]
    roster = RosterProjection(name=f"r_{tag}", table_prefix=f"r_{tag}")
    runner = ProjectionRunner(store, roster, lambda: connect(app_options), batch_size=5)
    task = asyncio.create_task(runner.run())
    captures: list[tuple[Cursor, Any]] = []

    async def capture() -> None:
        async with pool.acquire() as proxy:
            conn = cast("asyncpg.Connection", proxy)
            while True:
                try:
                    # One snapshot: the checkpoint and the view it stands for, together.
                    async with conn.transaction(isolation="repeatable_read", readonly=True):
                        r_cursor, _ = await checkpoint_of(conn, roster.name, 1)
                        view = await get_roster(
                            conn, f"m_{tag}", at=r_cursor, table_prefix=f"r_{tag}"
                        )
                except asyncpg.UndefinedTableError:
                    pass  # the runner has not created its tables yet
                else:
                    captures.append((r_cursor, view))
                await asyncio.sleep(0.03)

    capturing = asyncio.create_task(capture())
    handler = CommandHandler(store)
    try:
        others = [f"o{n}_{tag}" for n in range(3)]
        _faction, people = await _register(handler, tag)
        for n, other in enumerate(others):
            await handler.handle(
                RegisterActor(actor_id=other, kind="organisation", canonical_name=f"P{n} {tag}")
            )
        meeting = f"m_{tag}"
        await handler.handle(
            ScheduleMeeting(meeting_id=meeting, title="Talks", valid_time="2024-03")
        )
        steps: list[Command] = [
            *(InviteFaction(meeting_id=meeting, faction=o) for o in others),
            ConfirmAttendance(meeting_id=meeting, faction=others[0]),
            NameDelegationLeader(meeting_id=meeting, faction=others[0], person=people[0]),
            ConfirmAttendance(meeting_id=meeting, faction=others[1]),
            NameDelegationLeader(meeting_id=meeting, faction=others[1], person=people[1]),
            ConfirmAttendance(meeting_id=meeting, faction=others[2]),
        ]
        for step in steps:
            await handler.handle(step)
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
    finally:
        for t in (task, capturing):
            t.cancel()
        await asyncio.gather(task, capturing, return_exceptions=True)

    assert len({v is not None and len(v.factions) for _, v in captures}) > 2
    for r_cursor, view in captures[:: max(1, len(captures) // 12)]:
        assert await fold_log(store, f"m_{tag}", r_cursor) == view
        assert await get_roster(pool, f"m_{tag}", at=r_cursor, table_prefix=f"r_{tag}") == view


async def test_an_organisation_merged_or_scanned_per_window_reads_the_same(
    api: ApiServer,
) -> None:
    # Past MERGED_WINDOWS role windows a page is read by one scan per window instead of one
    # merge: the same entries, page by page, for the whole history and a filtered one.
    tag = uuid.uuid4().hex[:8]
    handler = _handler(api)
    faction, people = await _register(handler, tag)
    await _load(handler, tag, rounds=30, seed="w")
    runtime = api.app.state.runtime
    async with api.client("read") as client:
        await _caught_up(api, client, await _last_cursor(api))
    version = await live_version(runtime.pool, "contacts") or 1
    read: dict[str, list[Any]] = {}
    choices: list[dict[str, Any]] = [{}, {"kind": "meeting"}, {"counterpart": people[0]}]
    for filters in choices:
        walks = []
        for merged_windows in (64, 0):
            walk: list[Any] = []
            after = None
            while True:
                page = await contact_history_page(
                    runtime.pool,
                    faction,
                    after=after,
                    limit=3,
                    version=version,
                    merged_windows=merged_windows,
                    **filters,
                )
                walk.extend(msgspec.json.decode(entry) for entry, _ in page)
                if len(page) < 3:
                    break
                after = page[-1][1]
            walks.append(walk)
        assert walks[0] == walks[1], filters
        read[str(filters)] = walks[0]
    assert any(e["via"] for e in read["{}"]) and any(e["via"] is None for e in read["{}"])


async def test_contact_history_reads_any_cursor_like_the_live_rows(api: ApiServer) -> None:
    # The library call: at=None (rows still open) equals at=<the checkpoint>.
    tag = uuid.uuid4().hex[:8]
    handler = _handler(api)
    faction, _ = await _register(handler, tag)
    await _load(handler, tag, rounds=15, seed="c")
    runtime = api.app.state.runtime
    async with api.client("read") as client:
        await _caught_up(api, client, await _last_cursor(api))
    version = await live_version(runtime.pool, "contacts") or 1
    async with runtime.pool.acquire() as proxy:
        conn = cast("asyncpg.Connection", proxy)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            at, _ = await checkpoint_of(conn, "contacts", version)
            now = await contact_history(conn, faction, version=version, limit=1000)
            then = await contact_history(conn, faction, at=at, version=version, limit=1000)
    assert now == then and now
    with pytest.raises(ValueError, match="history key"):
        await contact_history(runtime.pool, faction, after=("x", "y", "z"), version=version)
