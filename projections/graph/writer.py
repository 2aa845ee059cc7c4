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
    UPSERT_SPANS_SQL,
    WRITE_SQL,
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
        opened = {k: [v] for k, v in deltas.open.items() if v}
        weights = {k: v for k, v in sorted(deltas.weights.items()) if v[0] or v[1]}
        widened = dict(sorted(deltas.extended.items()))
        # Spans a removal may have shrunk are counted again; read what they were first.
        recount = await self._ends_reached(conn, deltas.shrunk)
        moved = await conn.fetch(
            self.q(WRITE_SQL),
            *_columns(edges, 4, 2),
            *_columns(opened, 5, 1),
            *_columns(weights, 2, 2),
            *_columns(widened, 1, 2),
        )
        if edges:
            await self._delete_empty(conn, DELETE_EMPTY_EDGES_SQL, edges, 4)
        if opened:
            await self._delete_empty(conn, DELETE_EMPTY_OPEN_SQL, opened, 3)
        actors = {r["actor_id"] for r in moved}
        if recount:
            actors.update(await self._recount(conn, recount, batch))
        empty = [k for k, v in weights.items() if v[1] < 0]
        if opened or actors:
            pairs = sorted({(k[0], k[1]) for k in opened})
            rows = await conn.fetch(
                self.q(REWEIGH_OPEN_SQL),
                [p[0] for p in pairs],
                [p[1] for p in pairs],
                sorted(actors),
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

    async def _ends_reached(
        self, conn: asyncpg.Connection, shrunk: dict[str, list[int]]
    ) -> dict[str, Span]:
        """The stored spans of the actors whose first or last year the batch took an
        interaction from: the extreme may be gone."""
        if not shrunk:
            return {}
        rows = await conn.fetch(self.q(READ_SPANS_SQL), sorted(shrunk))
        spans = {r["actor_id"]: (r["first_year"], r["last_year"]) for r in rows}
        return {
            actor: span
            for actor, span in spans.items()
            if shrunk[actor][0] <= span[0] or shrunk[actor][1] >= span[1]
        }

    async def _recount(
        self, conn: asyncpg.Connection, old: dict[str, Span], batch: GraphBatch
    ) -> list[str]:
        """Count the spans of ``old``'s actors again: from the interactions the tables hold,
        but the batch's, and the batch's new forms. Return the actors whose span moved."""
        actors = sorted(old)
        new: dict[str, Span | None] = dict.fromkeys(actors)
        for r in await conn.fetch(self.q(RECOMPUTE_SPANS_SQL), actors, batch.amended):
            if r["first_year"] is not None:
                new[r["actor_id"]] = (r["first_year"], r["last_year"])
        for live in batch.after.values():
            if live is None or live.first is None or live.last is None:
                continue
            for actor in live.actors:
                if actor in new:
                    new[actor] = added_to(new[actor], live.first, live.last)
        kept = [(a, span) for a, span in new.items() if span is not None]
        if kept:
            await conn.execute(
                self.q(UPSERT_SPANS_SQL),
                [a for a, _ in kept],
                [span[0] for _, span in kept],
                [span[1] for _, span in kept],
            )
        gone = [a for a, span in new.items() if span is None]
        if gone:
            await conn.execute(self.q(DELETE_SPANS_SQL), gone)
        return [a for a in actors if new[a] != old[a]]

    async def _delete_empty(
        self, conn: asyncpg.Connection, statement: str, counts: dict[Any, list[int]], width: int
    ) -> None:
        """Delete the rows of ``counts``' keys that fell to zero (only a decrease can)."""
        keys = [k[:width] for k, v in counts.items() if v[-1] < 0]
        if keys:
            await conn.execute(self.q(statement), *(list(c) for c in zip(*keys, strict=True)))


def added_to(span: Span | None, first: int, last: int) -> Span:
    """``span`` widened to hold ``first`` and ``last``."""
    if span is None:
        return (first, last)
    return (min(span[0], first), max(span[1], last))


def _columns(counts: dict[Any, Any], width: int, values: int) -> list[list[Any]]:
    """Keys (``width`` parts) and counts (``values``) as one list per column, for ``unnest``."""
    columns: list[list[Any]] = [[] for _ in range(width + values)]
    for key, count in counts.items():
        cells = (*key, *count) if width > 1 else (key, *count)
        for column, cell in zip(columns, cells, strict=True):
            column.append(cell)
    return columns
