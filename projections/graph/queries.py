"""Pages of the contact graph, read from the rows ``projections.graph.writer`` keeps.

Two orders, each walked by keyset (a page is the rows after the previous page's last key):

``pair``
    Edges by ``(a, b, kind, year)``; with an actor, by ``(counterpart, kind, year)``.
``weight``
    An actor's counterparts by total weight, the sum of ``possible`` over the pair's edges
    (of ``kind`` only, when given) and then of ``certain``, heaviest first, ties by id; each
    pair's edges by ``(kind, year)``. The weights are summed over the actor's rows when read:
    that page costs the actor's rows, its own answer, not the graph's.

An edge counts the pair's interactions of its kind that cover its year: certainly when both
bounds fall in it, possibly when they overlap it (the contacts module docstring says which
years an open bound covers). A page reads the rows of the pairs it shows through an index; the
size of the log does not enter. The graph is live only: a walk reads the graph as it stands
at each page, so in weight order a counterpart whose weight changes between two pages may
move past the walk's position (be seen twice or not at all).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec

from projections.common import table_names
from projections.graph.schema import (
    COUNTERPARTS_BY_WEIGHT_SQL,
    EDGES_BY_PAIR_SQL,
    EDGES_OF_PAIRS_SQL,
    ROWS_AS_A_SQL,
    ROWS_AS_B_SQL,
    TABLES,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import asyncpg

__all__ = ("GraphEdge", "GraphKey", "GraphOrder", "contact_graph", "graph_page")

GraphOrder = Literal["pair", "weight"]
GraphKey = tuple[str | int, ...]
"""An edge's position in its order (see ``graph_page``)."""

_LOWEST_YEAR: Final = -(2**31)
_HEAVIEST: Final = 2**31 - 1


class GraphEdge(msgspec.Struct, frozen=True, kw_only=True):
    """How often two actors interacted in one way in one year (``a < b``)."""

    a: str
    b: str
    kind: str
    year: int
    certain: int
    """Interactions that certainly fall in this year (both bounds in it)."""
    possible: int
    """Interactions whose bounds overlap this year (the certain ones included)."""


@functools.cache
def _sql(statement: str, prefix: str, version: int) -> str:
    return statement.format(**table_names(prefix, version, TABLES))


def _sql_for(prefix: str, version: int) -> Callable[[str], str]:
    return lambda statement: _sql(statement, prefix, version)


def _edge(row: asyncpg.Record) -> GraphEdge:
    return GraphEdge(
        a=row["a"],
        b=row["b"],
        kind=row["kind"],
        year=row["year"],
        certain=row["certain"],
        possible=row["possible"],
    )


async def graph_page(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    limit: int,
    actor_id: str | None = None,
    kind: str | None = None,
    order: GraphOrder = "pair",
    after: GraphKey | None = None,
    version: int = 1,
    prefix: str = "",
) -> list[tuple[GraphKey, GraphEdge]]:
    """Up to ``limit`` + 1 edges after ``after`` in ``order``, each with its key.

    Keys: ``pair`` order ``(a, b, kind, year)``, with an actor ``(counterpart, kind, year)``;
    ``weight`` order ``(possible, certain, counterpart, kind, year)``, the first two the
    pair's totals.

    Args:
        conn: A connection or pool.
        limit: Edges per page (one more is returned when more remain).
        actor_id: Only pairs with this actor in them.
        kind: Only this kind of interaction.
        order: ``pair`` or ``weight`` (see the module docstring).
        after: The key of the previous page's last edge (``None``: the first page).
        version: The contacts projection's version.
        prefix: The contacts projection's table prefix.

    Raises:
        ValueError: ``after`` is not a key of this order, or the weight order was asked
            for without an actor.
    """
    rows = limit + 1
    match order:
        case "pair" if actor_id is None:
            a, b, k, year = _key(after, (str, str, str, int), ("", "", "", _LOWEST_YEAR))
            records = await conn.fetch(
                _sql(EDGES_BY_PAIR_SQL, prefix, version), kind, a, b, k, year, rows
            )
            return [((r["a"], r["b"], r["kind"], r["year"]), _edge(r)) for r in records]
        case "pair":
            start = _key(after, (str, str, int), ("", "", _LOWEST_YEAR))
            return await _by_counterpart(
                conn,
                rows,
                actor_id=actor_id or "",
                kind=kind,
                start=start,
                sql=_sql_for(prefix, version),
            )
        case "weight":
            return await _by_weight(
                conn, rows, actor_id=actor_id, kind=kind, after=after, sql=_sql_for(prefix, version)
            )


async def _by_counterpart(
    conn: asyncpg.Connection | asyncpg.Pool,
    rows: int,
    *,
    actor_id: str,
    kind: str | None,
    start: tuple[Any, ...],
    sql: Callable[[str], str],
) -> list[tuple[GraphKey, GraphEdge]]:
    """The actor's edges after ``start`` in (counterpart, kind, year) order, summed from its
    rows a chunk at a time: a chunk that fills its limit may end inside its last group
    (counterpart, kind), which the next chunk begins with; the others are whole."""
    group: tuple[str, str] = (start[0], start[1])
    chunk = rows + 1
    page: list[tuple[GraphKey, GraphEdge]] = []
    while True:
        # Counterparts before the actor are the rows where it is b (a < b), then the others.
        before = group[0] < actor_id
        statement = sql(ROWS_AS_B_SQL if before else ROWS_AS_A_SQL)
        records = await conn.fetch(statement, actor_id, kind, group[0], group[1], chunk)
        cut = (records[-1]["other"], records[-1]["kind"]) if len(records) == chunk else None
        page += _summed(records, start, cut)
        if len(page) >= rows:
            return page[:rows]
        if cut is not None:
            # A group longer than the chunk is read whole the next time round.
            chunk = chunk * 2 if cut == group else chunk
            group = cut
        elif before:
            group = (actor_id, "")
        else:
            return page


def _summed(
    records: list[asyncpg.Record], start: tuple[Any, ...], cut: tuple[str, str] | None
) -> list[tuple[GraphKey, GraphEdge]]:
    """The edges after ``start`` of the groups before ``cut``, summed per year."""
    counts: dict[tuple[str, str, int], list[Any]] = {}
    for r in records:
        if cut is not None and (r["other"], r["kind"]) >= cut:
            continue
        low, high = _years(r)
        certain = int(r["lower_year"] is not None and r["lower_year"] == r["upper_year"])
        for year in range(low, high + 1):
            key = (r["other"], r["kind"], year)
            if key <= start:
                continue
            got = counts.get(key)
            if got is None:
                counts[key] = [r["a"], r["b"], certain, 1]
            else:
                got[2] += certain
                got[3] += 1
    return [
        ((other, kind, year), GraphEdge(a=a, b=b, kind=kind, year=year, certain=c, possible=p))
        for (other, kind, year), (a, b, c, p) in sorted(counts.items())
    ]


def _years(r: asyncpg.Record) -> tuple[int, int]:
    """The years a row covers: its known bounds', an open one the pair's span's (``range``
    of them is empty when neither actor has a dated interaction)."""
    low: int | None = r["lower_year"]
    high: int | None = r["upper_year"]
    if low is None:
        firsts = [y for y in (r["a_first"], r["b_first"]) if y is not None]
        low = min(firsts) if firsts else None
    if high is None:
        lasts = [y for y in (r["a_last"], r["b_last"]) if y is not None]
        high = max(lasts) if lasts else None
    if low is None or high is None:
        return 0, -1
    return low, high


async def _by_weight(
    conn: asyncpg.Connection | asyncpg.Pool,
    rows: int,
    *,
    actor_id: str | None,
    kind: str | None,
    after: GraphKey | None,
    sql: Callable[[str], str],
) -> list[tuple[GraphKey, GraphEdge]]:
    if actor_id is None:
        raise ValueError("the weight order is of an actor's counterparts: give an actor")
    possible, certain, other, last_kind, last_year = _key(
        after, (int, int, str, str, int), (_HEAVIEST, _HEAVIEST, "", "", 0)
    )
    start = (possible, certain, other)
    # Every counterpart has an edge, but the key's may have none left: one more.
    pairs = await conn.fetch(
        sql(COUNTERPARTS_BY_WEIGHT_SQL), actor_id, kind, possible, certain, other, rows + 1
    )
    if not pairs:
        return []
    edges: dict[tuple[str, str], list[GraphEdge]] = {}
    for r in await conn.fetch(
        sql(EDGES_OF_PAIRS_SQL),
        [p["a"] for p in pairs],
        [p["b"] for p in pairs],
        kind,
    ):
        edges.setdefault((r["a"], r["b"]), []).append(_edge(r))
    page: list[tuple[GraphKey, GraphEdge]] = []
    for p in pairs:
        pair_key: GraphKey = (p["possible"], p["certain"], _other(p, actor_id))
        for edge in edges.get((p["a"], p["b"]), ()):
            seen = (edge.kind, edge.year) <= (last_kind, last_year)
            if after is not None and pair_key == start and seen:
                continue
            page.append(((*pair_key, edge.kind, edge.year), edge))
            if len(page) == rows:
                return page
    return page


def _other(row: asyncpg.Record, actor_id: str) -> str:
    a: str = row["a"]
    return row["b"] if a == actor_id else a


def _key(
    after: GraphKey | None, types: tuple[type, ...], first: tuple[str | int, ...]
) -> tuple[Any, ...]:
    """``after`` checked against the key's types, or the key before every row."""
    if after is None:
        return first
    if len(after) != len(types) or not all(type(v) is t for v, t in zip(after, types, strict=True)):
        raise ValueError("not a key of this order")
    return after


async def contact_graph(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    actor_id: str | None = None,
    kind: str | None = None,
    order: GraphOrder = "pair",
    version: int = 1,
    prefix: str = "",
    page: int = 1_000,
) -> list[GraphEdge]:
    """Every edge, in ``order``, walked page by page (for scripts and tests: the service
    answers one page at a time)."""
    edges: list[GraphEdge] = []
    after: GraphKey | None = None
    while True:
        rows = await graph_page(
            conn,
            limit=page,
            actor_id=actor_id,
            kind=kind,
            order=order,
            after=after,
            version=version,
            prefix=prefix,
        )
        edges.extend(edge for _, edge in rows[:page])
        if len(rows) <= page:
            return edges
        after = rows[page - 1][0]
