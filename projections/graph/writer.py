"""Keeps the contact graph's aggregates in step with the contacts projection, inside the
transaction that writes the projection's batch.

The graph holds live counts only: it is not system-versioned (no ``sys_from``/``sys_to``), so
it answers for the projection's checkpoint and nothing earlier. Its rows are sums over live
interactions, so a rebuild with any batch size equals the incrementally kept tables row for row
(rows whose counts fall to zero are deleted, never kept as zeros).
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
    DELETE_EMPTY_SPANS_SQL,
    DELETE_EMPTY_WEIGHTS_SQL,
    DELETE_EMPTY_YEARS_SQL,
    DROP_SQL,
    READ_SPANS_SQL,
    RECOMPUTE_SPANS_SQL,
    REWEIGH_OPEN_SQL,
    TABLES,
    UPSERT_EDGES_SQL,
    UPSERT_OPEN_SQL,
    UPSERT_SPANS_SQL,
    UPSERT_WEIGHTS_SQL,
    UPSERT_YEARS_SQL,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg

    from projections.interaction_rows import InteractionRow, LinkRow

__all__ = ("GraphWriter",)

CONTACTS_TABLES: Final = {"interactions": "interactions", "links": "interaction_actors"}
"""The contacts projection's tables the writer reads the earlier form of interactions from."""

Span = tuple[int | None, int | None]


class GraphWriter:
    """The graph tables of one contacts projection (its prefix and version).

    Args:
        prefix: The contacts projection's table prefix.
        version: The contacts projection's version.
    """

    def __init__(self, prefix: str, version: int) -> None:
        names = table_names(prefix, version, {**TABLES, **CONTACTS_TABLES})
        self._sql: dict[str, str] = {}
        self._names = names

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

    async def apply(
        self,
        conn: asyncpg.Connection,
        new: Sequence[InteractionRow],
        amended: Sequence[InteractionRow],
        links: Sequence[LinkRow],
    ) -> None:
        """Count a batch's interactions: call before their rows are written.

        Args:
            conn: The projection's connection, in the batch's transaction.
            new: Rows of interactions whose streams begin in the batch.
            amended: Rows of interactions from earlier batches (their stored form is read as
                the "before" of the change, so the tables must not hold this batch yet).
            links: Participant rows of both.
        """
        after = live_forms((*new, *amended), links)
        deltas = Deltas()
        if amended:
            before = await self._before(conn, [row[0] for row in amended])
            for row in amended:
                deltas.change(before.get(row[0]), after[row[0]])
        for row in new:
            live = after[row[0]]
            if live is not None:
                deltas.add(live, 1)
        await self._write(conn, deltas)

    async def _before(self, conn: asyncpg.Connection, items: list[str]) -> dict[str, Live]:
        rows = await conn.fetch(self.q(BEFORE_SQL), items)
        return {
            r["interaction_id"]: Live(
                r["kind"], r["lower_year"], r["upper_year"], tuple(sorted(r["actors"] or ()))
            )
            for r in rows
        }

    async def _write(self, conn: asyncpg.Connection, deltas: Deltas) -> None:
        edges = {k: v for k, v in deltas.edges.items() if v[0] or v[1]}
        if edges:
            await conn.execute(self.q(UPSERT_EDGES_SQL), *_columns(edges, 4, 2))
            await self._delete_empty(conn, DELETE_EMPTY_EDGES_SQL, edges, 4)
        opened = {k: [v] for k, v in deltas.open.items() if v}
        if opened:
            await conn.execute(self.q(UPSERT_OPEN_SQL), *_columns(opened, 5, 1))
            await self._delete_empty(conn, DELETE_EMPTY_OPEN_SQL, opened, 3)
        moved = await self._years(conn, {k: v for k, v in deltas.years.items() if v[0] or v[1]})
        weights = {k: v for k, v in deltas.weights.items() if v[0] or v[1]}
        if weights:
            await conn.execute(self.q(UPSERT_WEIGHTS_SQL), *_columns(weights, 3, 2))
        empty = [k for k, v in weights.items() if v[1] < 0]
        if opened or moved:
            pairs = sorted({(k[0], k[1]) for k in opened})
            rows = await conn.fetch(
                self.q(REWEIGH_OPEN_SQL),
                [p[0] for p in pairs],
                [p[1] for p in pairs],
                moved,
            )
            empty += [(r["a"], r["b"], r["kind"]) for r in rows if r["possible"] == 0]
        if empty:
            await conn.execute(
                self.q(DELETE_EMPTY_WEIGHTS_SQL), *(list(c) for c in zip(*empty, strict=True))
            )

    async def _years(
        self, conn: asyncpg.Connection, years: dict[tuple[str, int], list[int]]
    ) -> list[str]:
        """Write the year counts and the spans they change; return the actors whose span
        changed (the open part of their pairs' weights follows it)."""
        if not years:
            return []
        rows = await conn.fetch(self.q(UPSERT_YEARS_SQL), *_columns(years, 2, 2))
        actors = sorted({k[0] for k in years})
        old: dict[str, Span] = {
            r["actor_id"]: (r["first_year"], r["last_year"])
            for r in await conn.fetch(self.q(READ_SPANS_SQL), actors)
        }
        new: dict[str, Span] = {}
        recompute: set[str] = set()
        vanished: list[tuple[str, int]] = []
        for r in rows:
            actor, year, starts, ends = r["actor_id"], r["year"], r["starts"], r["ends"]
            delta = years[(actor, year)]
            first, last = new.get(actor) or old.get(actor) or (None, None)
            old_first, old_last = old.get(actor, (None, None))
            if starts > 0 and starts - delta[0] <= 0:
                first = year if first is None else min(first, year)
            elif starts <= 0 < starts - delta[0] and year == old_first:
                recompute.add(actor)
            if ends > 0 and ends - delta[1] <= 0:
                last = year if last is None else max(last, year)
            elif ends <= 0 < ends - delta[1] and year == old_last:
                recompute.add(actor)
            new[actor] = (first, last)
            if starts == 0 and ends == 0:
                vanished.append((actor, year))
        if vanished:
            await conn.execute(
                self.q(DELETE_EMPTY_YEARS_SQL), [v[0] for v in vanished], [v[1] for v in vanished]
            )
        if recompute:
            for r in await conn.fetch(self.q(RECOMPUTE_SPANS_SQL), sorted(recompute)):
                new[r["actor_id"]] = (r["first_year"], r["last_year"])
        changed = sorted(a for a, span in new.items() if span != old.get(a, (None, None)))
        if changed:
            await conn.execute(
                self.q(UPSERT_SPANS_SQL),
                changed,
                [new[a][0] for a in changed],
                [new[a][1] for a in changed],
            )
            if recompute:
                await conn.execute(self.q(DELETE_EMPTY_SPANS_SQL), sorted(recompute))
        return changed

    async def _delete_empty(
        self, conn: asyncpg.Connection, statement: str, counts: dict[Any, list[int]], width: int
    ) -> None:
        """Delete the rows of ``counts``' keys that fell to zero (only a decrease can)."""
        keys = [k[:width] for k, v in counts.items() if v[-1] < 0]
        if keys:
            await conn.execute(self.q(statement), *(list(c) for c in zip(*keys, strict=True)))


def _columns(counts: dict[Any, list[int]], width: int, values: int) -> list[list[Any]]:
    """Keys and counts as one list per column, for an ``unnest`` upsert."""
    columns: list[list[Any]] = [[] for _ in range(width + values)]
    for key, count in counts.items():
        for column, cell in zip(columns, (*key, *count), strict=True):
            column.append(cell)
    return columns
