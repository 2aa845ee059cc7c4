"""The contact graph kept by the contacts projection (``projections.graph``): the same answer
as the query that aggregated every interaction on each request (kept here as the oracle), the
same tables whatever the batches, pages that walk the whole answer in each order, reads
through indexes, and the route's parameters."""

from __future__ import annotations

import uuid
from itertools import groupby
from typing import TYPE_CHECKING, Any, Final, cast

import asyncpg
import msgspec
import pytest

from bench.projections import COPY_COLUMNS, Synth, _rows
from events import APP_ROLE, ConnectionOptions
from events.connect import create_pool
from events.domain.catalogue import EventCorrected, EventRetracted, RoleAssigned
from events.domain.valid_time import valid_time
from events.domain.vocabulary import Participant
from projections.common import table_names
from projections.contacts import ContactsProjection
from projections.graph import GraphEdge, contact_graph, graph_page
from projections.graph.schema import (
    COUNTERPARTS_BY_WEIGHT_SQL,
    EDGES_BY_PAIR_SQL,
    EDGES_OF_PAIRS_SQL,
    ROWS_AS_A_SQL,
    ROWS_AS_B_SQL,
    TABLES,
)
from tests.api_server import running_api
from tests.database import scratch_database
from tests.synthetic_log import WEIGHTS, SyntheticLog

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx

    from events import RecordedEvent
    from events.rows import StreamHead

EVENTS: Final = 3_000
KINDS: Final = ("phone_call", "meeting", "visit", "contacts", "statement", "address")

# The query the graph was read with before it was kept by the projection: every live
# interaction aggregated on each request, an open bound stopped by the spans of what the log
# knows of each actor (its interactions and its roles, held or held in it), taken from all of it
# (the contacts module docstring states the rule).
# $1 actor (NULL: every pair), $2 kind (NULL: every kind).
ORACLE_SQL: Final = """
WITH live AS (
    SELECT interaction_id, kind, lower, upper
    FROM projections.{interactions}
    WHERE sys_to IS NULL AND NOT retracted AND NOT negated AND view IS NOT NULL
),
links AS (
    SELECT DISTINCT l.interaction_id, l.actor_id
    FROM projections.{links} AS l JOIN live USING (interaction_id)
    WHERE l.sys_to IS NULL
),
roles AS (
    SELECT actor_id, organisation_id, lower, upper FROM projections.{roles} WHERE sys_to IS NULL
),
known AS (
    SELECT links.actor_id, live.lower, live.upper FROM links JOIN live USING (interaction_id)
    UNION ALL
    SELECT actor_id, lower, upper FROM roles
    UNION ALL
    SELECT organisation_id, lower, upper FROM roles
),
span AS (
    SELECT actor_id,
           min(extract(year FROM coalesce(lower, upper)))::int AS first_year,
           max(extract(year FROM coalesce(upper, lower)))::int AS last_year
    FROM known
    GROUP BY actor_id
),
pairs AS (
    SELECT a.interaction_id, a.actor_id AS a, b.actor_id AS b
    FROM links AS a JOIN links AS b
        ON a.interaction_id = b.interaction_id AND a.actor_id < b.actor_id
    WHERE $1::text IS NULL OR $1 IN (a.actor_id, b.actor_id)
),
counted AS (
    SELECT p.a, p.b, live.kind, year,
           coalesce(extract(year FROM live.lower) = extract(year FROM live.upper), false)
               AS certain
    FROM pairs AS p
    JOIN live USING (interaction_id)
    LEFT JOIN span AS sa ON sa.actor_id = p.a
    LEFT JOIN span AS sb ON sb.actor_id = p.b
    CROSS JOIN LATERAL generate_series(
        coalesce(extract(year FROM live.lower)::int, least(sa.first_year, sb.first_year)),
        coalesce(extract(year FROM live.upper)::int, greatest(sa.last_year, sb.last_year))
    ) AS year
    WHERE $2::text IS NULL OR live.kind = $2
)
SELECT a, b, kind, year, count(*) FILTER (WHERE certain) AS certain, count(*) AS possible
FROM counted
GROUP BY a, b, kind, year
ORDER BY a, b, kind, year
"""


class _GraphSynth(Synth):
    """The benchmark's generator with more of what the graph must get right: open and unknown
    bounds on either side, corrections that change who took part (a lone participant, one
    actor named twice in two roles) as well as the date, and roles corrected (their window) or
    retracted, which move the spans open bounds stop at."""

    def __init__(self) -> None:
        super().__init__(20261207, "", WEIGHTS)
        self.roles: list[tuple[str, str]] = []
        self.times += [
            valid_time("2015/..", "since 2015"),
            valid_time("2009-05/..", "since May 2009"),
            valid_time("../..", "undated"),
            valid_time("../2012", "before 2013"),
            valid_time("2008/2019", "from 2008 to 2019"),
        ]

    def remember(self, stream_id: str, event: Any, event_id: str) -> None:
        super().remember(stream_id, event, event_id)
        if isinstance(event, RoleAssigned):
            self.roles.append((stream_id, event_id))

    def _amendment(self) -> tuple[str, Any] | None:
        rng = self.rng
        if self.roles and rng.random() < 0.25:
            # A role amended once: its window corrected, or the role retracted.
            stream_id, event_id = self.roles.pop(rng.randrange(len(self.roles)))
            if rng.random() < 0.6:
                window = msgspec.to_builtins(rng.choice(self.times))
                return stream_id, EventCorrected(
                    target_event_id=event_id, changes={"valid_time": window}, reason="misdated"
                )
            return stream_id, EventRetracted(target_event_id=event_id, reason="misreported")
        made = super()._amendment()
        if made is None:
            return None
        stream_id, event = made
        corrects_an_interaction = stream_id.startswith("interaction-")
        if isinstance(event, EventCorrected) and corrects_an_interaction and rng.random() < 0.5:
            people = rng.sample(self.persons + self.orgs, 3)[: rng.randint(1, 3)]
            named = [Participant(actor_id=p, role="participant") for p in people]
            if rng.random() < 0.3:
                named.append(Participant(actor_id=people[0], role="host"))
            changes = dict(event.changes)
            changes["participants"] = msgspec.to_builtins(named)
            if rng.random() < 0.5:
                del changes["valid_time"]
            event = msgspec.structs.replace(event, changes=changes)
        return stream_id, event


class _Log:
    def __init__(self, synthetic: SyntheticLog, events: list[RecordedEvent], dsn: str) -> None:
        self.synthetic, self.events, self.dsn = synthetic, events, dsn
        self.pool = synthetic.pool


@pytest.fixture(scope="module")
async def log(server_url: str) -> AsyncIterator[_Log]:
    """A database with the synthetic log and a contacts projection (prefix ``g_``) built over
    it in batches of 100."""
    async with scratch_database(server_url, migrated=True) as dsn:
        owner = await asyncpg.connect(dsn)
        synth = _GraphSynth()
        heads: dict[str, StreamHead] = {}
        try:
            for _ in range(5):
                rows = _rows(synth, heads, EVENTS // 5)
                await owner.copy_records_to_table("events", records=rows, columns=COPY_COLUMNS)
        finally:
            await owner.close()
        options = ConnectionOptions(dsn=dsn, role=APP_ROLE, min_pool_size=1, max_pool_size=4)
        synthetic = SyntheticLog(await create_pool(options), options)
        events = await synthetic.read(ContactsProjection.filter)
        await synthetic.apply(ContactsProjection(name="g", prefix="g_"), events, 100)
        yield _Log(synthetic, events, dsn)
        await synthetic.close()


async def _oracle(
    log: _Log, actor: str | None, kind: str | None, prefix: str = "g_"
) -> list[GraphEdge]:
    names = table_names(
        prefix,
        1,
        {"interactions": "interactions", "links": "interaction_actors", "roles": "actor_roles"},
    )
    rows = await log.pool.fetch(ORACLE_SQL.format(**names), actor, kind)
    return [GraphEdge(**dict(r)) for r in rows]


def _other(edge: GraphEdge, actor: str) -> str:
    return edge.b if edge.a == actor else edge.a


def _by_weight(edges: list[GraphEdge], actor: str) -> list[GraphEdge]:
    """An actor's ``edges`` in weight order, as ``projections.graph.queries`` defines it."""

    def other(e: GraphEdge) -> str:
        return _other(e, actor)

    groups = [list(g) for _, g in groupby(sorted(edges, key=other), key=other)]
    groups.sort(
        key=lambda g: (-sum(e.possible for e in g), -sum(e.certain for e in g), other(g[0]))
    )
    return [e for g in groups for e in sorted(g, key=lambda e: (e.kind, e.year))]


async def _actors(log: _Log) -> list[str]:
    """Actors of the graph: the busiest few, a few quiet ones, one that has none."""
    rows = await log.pool.fetch(
        "SELECT actor_id, count(*) AS n FROM projections.g_interaction_actors_v1 "
        "GROUP BY actor_id ORDER BY n DESC, actor_id"
    )
    ids = [r["actor_id"] for r in rows]
    return [*ids[:4], *ids[len(ids) // 2 : len(ids) // 2 + 3], *ids[-3:], "nobody_at_all"]


async def test_the_log_has_what_the_graph_must_get_right(log: _Log) -> None:
    counts = await log.pool.fetchrow(
        """SELECT count(*) FILTER (WHERE negated) AS negated,
                  count(*) FILTER (WHERE retracted) AS retracted,
                  count(*) FILTER (WHERE lower IS NULL AND upper IS NULL AND view IS NOT NULL)
                      AS unbounded,
                  count(*) FILTER (WHERE lower IS NULL AND upper IS NOT NULL) AS open_lower,
                  count(*) FILTER (WHERE upper IS NULL AND lower IS NOT NULL) AS open_upper
           FROM projections.g_interactions_v1"""
    )
    assert counts is not None
    found = dict(counts)
    assert all(n > 0 for n in found.values()), found
    corrected = await log.pool.fetchval(
        "SELECT count(*) FROM events WHERE type = 'record.event_corrected.v1' "
        "AND data -> 'changes' ? 'participants'"
    )
    assert corrected > 10
    roles = await log.pool.fetchrow(
        """SELECT count(*) FILTER (WHERE type = 'record.event_corrected.v1') AS corrected,
                  count(*) FILTER (WHERE type = 'record.event_retracted.v1') AS retracted
           FROM events WHERE stream_id LIKE 'actor-%'"""
    )
    assert roles is not None
    assert roles["corrected"] > 5 and roles["retracted"] > 2, dict(roles)


async def test_the_graph_equals_the_query_over_every_interaction(log: _Log) -> None:
    pool = log.pool
    for kind in (None, *KINDS):
        expected = await _oracle(log, None, kind)
        for page in (2, 97):
            got = await contact_graph(pool, kind=kind, prefix="g_", page=page)
            assert got == expected, (kind, page)
    for actor in await _actors(log):
        for kind in (None, "meeting"):
            expected = await _oracle(log, actor, kind)
            expected.sort(key=lambda e: (_other(e, actor), e.kind, e.year))
            for page in (1, 13):
                got = await contact_graph(pool, actor_id=actor, kind=kind, prefix="g_", page=page)
                assert got == expected, (actor, kind, page)


async def test_an_actor_page_reads_a_pair_longer_than_the_page(log: _Log) -> None:
    """A page of an actor's edges is summed from chunks of its rows; a pair and kind with more
    rows than a chunk holds is read whole before it is summed."""
    longest = await log.pool.fetchrow(
        "SELECT a, b, kind, count(*) AS n FROM projections.g_graph_pairs_v1 "
        "GROUP BY a, b, kind ORDER BY n DESC, a, b, kind LIMIT 1"
    )
    assert longest is not None
    assert longest["n"] >= 3  # more than the two rows a one-edge page reads at first
    for actor in (longest["a"], longest["b"]):
        expected = await _oracle(log, actor, longest["kind"])
        expected.sort(key=lambda e: (_other(e, actor), e.kind, e.year))
        got = await contact_graph(
            log.pool, actor_id=actor, kind=longest["kind"], prefix="g_", page=1
        )
        assert got == expected, actor


async def test_weight_order_is_heaviest_first_with_ties_by_id(log: _Log) -> None:
    pool = log.pool
    for actor in await _actors(log):
        for kind in (None, "visit"):
            expected = _by_weight(await _oracle(log, actor, kind), actor)
            for page in (1, 5, 1_000):
                got = await contact_graph(
                    pool, actor_id=actor, kind=kind, order="weight", prefix="g_", page=page
                )
                assert got == expected, (actor, kind, page)
    with pytest.raises(ValueError, match="give an actor"):
        await graph_page(pool, limit=10, order="weight", prefix="g_")


async def _graph_tables(log: _Log, prefix: str) -> dict[str, list[dict[str, Any]]]:
    tables: dict[str, list[dict[str, Any]]] = {}
    for key, name in table_names(prefix, 1, TABLES).items():
        rows = await log.pool.fetch(f"SELECT * FROM projections.{name}")
        tables[key] = sorted((dict(r) for r in rows), key=lambda r: [str(v) for v in r.values()])
    return tables


async def test_the_same_tables_whatever_the_batches(log: _Log) -> None:
    incremental = await _graph_tables(log, "g_")
    assert all(incremental.values())
    for batch in (1, 7, 1_000):
        prefix = f"g{uuid.uuid4().hex[:6]}_"
        projection = ContactsProjection(name=prefix, prefix=prefix)
        await log.synthetic.apply(projection, log.events, batch)
        assert await _graph_tables(log, prefix) == incremental, batch
        async with log.pool.acquire() as proxy:
            await projection.drop(cast("asyncpg.Connection", proxy))


async def test_reads_go_through_indexes(log: _Log) -> None:
    """On tables large enough that a scan would cost: every read is an index lookup, with the
    planner's custom plans and with the generic plans a prepared statement ends up with."""
    prefix = f"x{uuid.uuid4().hex[:6]}_"
    names = table_names(prefix, 1, TABLES)
    async with log.pool.acquire() as proxy:
        conn = cast("asyncpg.Connection", proxy)
        await ContactsProjection(name=prefix, prefix=prefix).setup(conn)
        fill = f"""
        INSERT INTO projections.{names["pairs"]}
        SELECT 'a' || (i % 5000), 'b' || (i / 5000), k, y, y + i % 2 - i % 3, 'i' || i
        FROM generate_series(1, 40000) AS i, unnest(ARRAY['meeting', 'visit']) AS k,
             generate_series(2010, 2011) AS y;
        INSERT INTO projections.{names["pairs"]}
        SELECT 'a' || (i % 5000), 'b' || (i / 5000), 'meeting', NULL, 2012, 'o' || i
        FROM generate_series(1, 20000) AS i;
        INSERT INTO projections.{names["spans"]}
        SELECT 'a' || i, 2000, 2020 FROM generate_series(0, 5000) AS i;
        ANALYZE projections.{names["pairs"]}, projections.{names["spans"]}
        """
        await conn.execute(fill)
        reads = [
            (EDGES_BY_PAIR_SQL, (None, "a1", "b0", "meeting", 2010, 101)),
            (ROWS_AS_A_SQL, ("a17", None, "", "", 101)),
            (ROWS_AS_B_SQL, ("b3", "visit", "a20", "meeting", 101)),
            (COUNTERPARTS_BY_WEIGHT_SQL, ("a17", None, 2**31 - 1, 2**31 - 1, "", 102)),
            (EDGES_OF_PAIRS_SQL, (["a1", "a2"], ["b0", "b0"], None)),
        ]
        try:
            for mode in ("force_custom_plan", "force_generic_plan"):
                await conn.execute(f"SET plan_cache_mode = {mode}")
                for statement, args in reads:
                    plan = await conn.fetch("EXPLAIN " + statement.format(**names), *args)
                    text = "\n".join(r[0] for r in plan)
                    assert "Seq Scan" not in text, (mode, statement, text)
                    assert "Index" in text
        finally:
            await conn.execute("RESET plan_cache_mode")
            await ContactsProjection(name=prefix, prefix=prefix).drop(conn)


async def _walk(client: httpx.AsyncClient, params: dict[str, Any]) -> list[GraphEdge]:
    edges: list[GraphEdge] = []
    url: str | None = "/graph"
    query: dict[str, Any] | None = params
    pages = 0
    while url is not None:
        response = await client.get(url, params=query)
        assert response.status_code == 200, response.text
        page = msgspec.convert(response.json(), list[GraphEdge])
        assert 1 <= len(page) <= int(params["limit"]) or (not page and pages == 0)
        edges += page
        pages += 1
        url = response.links.get("next", {}).get("url")
        query = None
    return edges


async def test_pages_walk_the_whole_answer_in_every_order(log: _Log, server_url: str) -> None:
    del server_url
    last = log.events[-1].cursor.encode()
    actors = (await _actors(log))[:2]
    async with running_api(log.dsn) as api, api.client("read") as client:
        # The app's own contacts projection (no prefix), caught up with the log.
        first = await client.get("/graph", params={"limit": 1, "reflect": last})
        assert first.headers["Diplofeed-Stale"] == "false"
        everything = await _oracle(log, None, None, prefix="")
        assert await _walk(client, {"limit": 7}) == everything
        assert await _walk(client, {"limit": 1_000, "kind": "visit"}) == await _oracle(
            log, None, "visit", prefix=""
        )
        for actor in actors:
            mine = await _oracle(log, actor, None, prefix="")
            by_pair = sorted(mine, key=lambda e: (_other(e, actor), e.kind, e.year))
            assert await _walk(client, {"limit": 3, "actor": actor}) == by_pair
            assert await _walk(
                client, {"limit": 2, "actor": actor, "order": "weight"}
            ) == _by_weight(mine, actor)


async def test_bad_parameters_are_400s(log: _Log) -> None:
    actor = (await _actors(log))[0]
    async with running_api(log.dsn) as api, api.client("read") as client:
        page = await client.get("/graph", params={"limit": 2})
        token = page.links["next"]["url"].split("after=")[1]
        for params in (
            {"limit": 0},
            {"limit": 1_001},
            {"limit": "many"},
            {"after": "not-a-token"},
            {"order": "heaviest"},
            {"kind": "visit", "after": token},  # a token of another query
            {"order": "weight"},  # the weight order is of an actor's counterparts
        ):
            response = await client.get("/graph", params=params)
            assert response.status_code == 400, (params, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        allowed = await client.get(
            "/graph", params={"order": "weight", "kind": "visit", "actor": actor}
        )
        assert allowed.status_code == 200
        unknown = await client.get("/graph", params={"actor": "no such actor anywhere"})
        assert unknown.status_code in (404, 422)
