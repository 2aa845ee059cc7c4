"""Keeps the contact graph's aggregates in step with the contacts projection, inside the
transaction that writes the projection's batch.

The graph holds live counts only: it is not system-versioned (no ``sys_from``/``sys_to``), so
it answers for the projection's checkpoint and nothing earlier. Its rows are sums over live
interactions, so a rebuild with any batch size equals the incrementally kept tables row for row
(rows whose counts fall to zero are deleted, never kept as zeros).

Most interactions of a batch begin in it: their whole contribution is computed with the rest
of the batch's rows (``prepare``, which reads no table), and only the interactions from
earlier batches cost a read, of their stored form, before the batch overwrites it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from projections.common import table_names
from projections.graph.deltas import Deltas, Live, live_forms
from projections.graph.schema import (
    BEFORE_SQL,
    CREATE_SQL,
    DELETE_EMPTY_EDGES_SQL,
    DELETE_EMPTY_OPEN_SQL,
    DELETE_EMPTY_WEIGHTS_SQL,
    DELETE_SPANS_SQL,
    DROP_SQL,
    READ_SPANS_SQL,
    RECOMPUTE_SPANS_SQL,
    REWEIGH_OPEN_SQL,
    TABLES,
    UPSERT_EDGES_SQL,
    UPSERT_OPEN_SQL,
    UPSERT_SPANS_SQL,
    UPSERT_WEIGHTS_SQL,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg

    from projections.interaction_rows import InteractionRow, LinkRow

__all__ = ("GraphBatch", "GraphWriter")

CONTACTS_TABLES: Final = {"interactions": "interactions", "links": "interaction_actors"}
"""The contacts projection's tables the writer reads the stored form of interactions from."""

Span = tuple[int, int]


class GraphBatch:
    """A batch's contribution as far as the batch alone gives it: the new interactions counted,
    the amended ones' new forms waiting for their stored forms."""

    def __init__(self, deltas: Deltas, after: dict[str, Live | None], amended: list[str]) -> None:
        self.deltas = deltas
        self.after = after
        self.amended = amended


class GraphWriter:
    """The graph tables of one contacts projection (its prefix and version).

    Args:
        prefix: The contacts projection's table prefix.
        version: The contacts projection's version.
    """

    def __init__(self, prefix: str, version: int) -> None:
        self._names = table_names(prefix, version, {**TABLES, **CONTACTS_TABLES})
        self._sql: dict[str, str] = {}

    def q(self, statement: str) -> str:
        """``statement`` with this projection's table names filled in."""
        text = self._sql.get(statement)
        if text is None:
            text = self._sql[statement] = statement.format(**self._names)
        return text

    async def setup(self, conn: asyncpg.Connection) -> None:
        """Create the graph's tables if they do not exist."""
        await conn.execute(self.q(CREATE_SQL))

    async def drop(self, conn: asyncpg.Connection) -> None:
        """Drop the graph's tables."""
        await conn.execute(self.q(DROP_SQL))

    @staticmethod
    def prepare(
        new: Sequence[InteractionRow], amended: Sequence[InteractionRow], links: Sequence[LinkRow]
    ) -> GraphBatch:
        """What the batch's rows alone say (no table is read).

        Args:
            new: Rows of interactions whose streams begin in the batch.
            amended: Rows of interactions from earlier batches.
            links: Participant rows of both.
        """
        after = live_forms((*new, *amended), links)
        deltas = Deltas()
        for row in new:
            live = after[row[0]]
            if live is not None:
                deltas.add(live, 1)
        return GraphBatch(deltas, after, [row[0] for row in amended])

    async def apply(self, conn: asyncpg.Connection, batch: GraphBatch | None) -> None:
        """Write a prepared batch's changes: call before the contacts rows of the batch are
        written (the stored form of its amended interactions is the "before" of the change).
        """
        if batch is None:
            return
        deltas = batch.deltas
        if batch.amended:
            before = await self._before(conn, batch.amended)
            for item in batch.amended:
                deltas.change(before.get(item), batch.after[item])
        edges = {k: v for k, v in sorted(deltas.edges.items()) if v[0] or v[1]}
        if edges:
            await conn.execute(self.q(UPSERT_EDGES_SQL), *_columns(edges, 4))
            await self._delete_empty(conn, DELETE_EMPTY_EDGES_SQL, edges, 4)
        opened = {k: [v] for k, v in deltas.open.items() if v}
        if opened:
            await conn.execute(self.q(UPSERT_OPEN_SQL), *_columns(opened, 5))
            await self._delete_empty(conn, DELETE_EMPTY_OPEN_SQL, opened, 3)
        moved = await self._spans(conn, deltas, batch)
        weights = {k: v for k, v in sorted(deltas.weights.items()) if v[0] or v[1]}
        if weights:
            await conn.execute(self.q(UPSERT_WEIGHTS_SQL), *_columns(weights, 2))
        empty = [k for k, v in weights.items() if v[1] < 0]
        if opened or moved:
            pairs = sorted({(k[0], k[1]) for k in opened})
            rows = await conn.fetch(
                self.q(REWEIGH_OPEN_SQL), [p[0] for p in pairs], [p[1] for p in pairs], moved
            )
            empty += [(r["a"], r["b"]) for r in rows if r["possible"] == 0]
        if empty:
            await conn.execute(
                self.q(DELETE_EMPTY_WEIGHTS_SQL), [k[0] for k in empty], [k[1] for k in empty]
            )

    async def _before(self, conn: asyncpg.Connection, items: list[str]) -> dict[str, Live]:
        rows = await conn.fetch(self.q(BEFORE_SQL), items)
        return {
            r["interaction_id"]: Live(
                r["kind"], r["lower_year"], r["upper_year"], tuple(sorted(r["actors"] or ()))
            )
            for r in rows
        }

    async def _spans(
        self, conn: asyncpg.Connection, deltas: Deltas, batch: GraphBatch
    ) -> list[str]:
        """Write the spans the batch moves; return the actors whose span moved (the open part
        of their pairs' weights follows it)."""
        actors = sorted(deltas.extended.keys() | deltas.shrunk.keys())
        if not actors:
            return []
        old: dict[str, Span] = {
            r["actor_id"]: (r["first_year"], r["last_year"])
            for r in await conn.fetch(self.q(READ_SPANS_SQL), actors)
        }
        new: dict[str, Span | None] = {}
        recount: list[str] = []
        for actor in actors:
            span = old.get(actor)
            if _reaches_an_end(deltas.shrunk.get(actor), span):
                # An extreme year may have lost its last interaction: count the actor again.
                recount.append(actor)
                continue
            added = deltas.extended.get(actor)
            if added is not None:
                span = added_to(span, added[0], added[1])
            new[actor] = span
        if recount:
            for r in await conn.fetch(self.q(RECOMPUTE_SPANS_SQL), recount, batch.amended):
                first, last = r["first_year"], r["last_year"]
                new[r["actor_id"]] = None if first is None else (first, last)
            for actor in recount:
                span = new.get(actor)
                for live in batch.after.values():
                    if live is None or actor not in live.actors:
                        continue
                    first, last = live.first, live.last
                    if first is not None and last is not None:
                        span = added_to(span, first, last)
                new[actor] = span
        moved = [a for a in actors if new.get(a) != old.get(a)]
        kept = [(a, span) for a in moved if (span := new.get(a)) is not None]
        if kept:
            await conn.execute(
                self.q(UPSERT_SPANS_SQL),
                [a for a, _ in kept],
                [span[0] for _, span in kept],
                [span[1] for _, span in kept],
            )
        gone = [a for a in moved if new.get(a) is None]
        if gone:
            await conn.execute(self.q(DELETE_SPANS_SQL), gone)
        return moved

    async def _delete_empty(
        self, conn: asyncpg.Connection, statement: str, counts: dict[Any, list[int]], width: int
    ) -> None:
        """Delete the rows of ``counts``' keys that fell to zero (only a decrease can)."""
        keys = [k[:width] for k, v in counts.items() if v[-1] < 0]
        if keys:
            await conn.execute(self.q(statement), *(list(c) for c in zip(*keys, strict=True)))


def _reaches_an_end(taken: list[int] | None, span: Span | None) -> bool:
    """Whether years ``taken`` from ``span`` include its first or its last."""
    if taken is None or span is None:
        return False
    return taken[0] <= span[0] or taken[1] >= span[1]


def added_to(span: Span | None, first: int, last: int) -> Span:
    """``span`` widened to hold ``first`` and ``last``."""
    if span is None:
        return (first, last)
    return (min(span[0], first), max(span[1], last))


def _columns(counts: dict[Any, list[int]], width: int) -> list[list[Any]]:
    """Keys and counts as one list per column, for an ``unnest`` upsert."""
    columns: list[list[Any]] = [[] for _ in range(width + len(next(iter(counts.values()))))]
    for key, count in counts.items():
        for column, cell in zip(columns, (*key, *count), strict=True):
            column.append(cell)
    return columns
