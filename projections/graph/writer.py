"""Keeps the contact graph in step with the contacts projection, inside the transaction that
writes the projection's batch.

The graph holds live rows only: it is not system-versioned (no ``sys_from``/``sys_to``), so it
answers for the projection's checkpoint and nothing earlier. Its rows are one per live
interaction and pair, and each actor's span is the extremes of the years of its live
interactions and current roles (held, or held in it), so a rebuild with any batch size equals
the incrementally kept tables row for row.

Most interactions and actors of a batch begin in it: their rows are computed with the rest of
the batch's rows (``prepare``, which reads no table) and copied in. Only the interactions and
actors from earlier batches cost a read, of their stored form, before the batch overwrites it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from projections.common import table_names
from projections.graph.deltas import (
    Deltas,
    Live,
    RoleYears,
    Span,
    live_form,
    participants,
    role_years,
    widen,
)
from projections.graph.schema import (
    BEFORE_ROLES_SQL,
    BEFORE_SQL,
    CREATE_SQL,
    DELETE_PAIRS_SQL,
    DELETE_SPANS_SQL,
    DROP_SQL,
    PAIR_COLUMNS,
    READ_SPANS_SQL,
    RECOUNT_SPANS_SQL,
    REPLACE_SPANS_SQL,
    TABLES,
    WIDEN_SPANS_SQL,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence, Set

    import asyncpg

    from projections.interaction_rows import InteractionRow, LinkRow

__all__ = ("GraphBatch", "GraphWriter")

CONTACTS_TABLES: Final = {
    "interactions": "interactions",
    "links": "interaction_actors",
    "roles": "actor_roles",
}
"""The contacts projection's tables the writer reads the stored form of interactions and roles
from."""


class GraphBatch:
    """A batch's changes as far as the batch alone gives them: the new interactions' rows and
    new actors' roles, and the new forms of the amended ones, waiting for their stored forms."""

    def __init__(
        self,
        deltas: Deltas,
        amended: dict[str, Live | None],
        amended_roles: dict[str, RoleYears] | None = None,
    ) -> None:
        self.deltas = deltas
        self.amended = amended
        self.amended_roles = amended_roles or {}


class GraphWriter:
    """The graph tables of one contacts projection (its prefix and version).

    Args:
        prefix: The contacts projection's table prefix.
        version: The contacts projection's version.
    """

    def __init__(self, prefix: str, version: int) -> None:
        self._names = table_names(prefix, version, {**TABLES, **CONTACTS_TABLES})
        self.tables = tuple(self._names[key] for key in TABLES)
        """The graph's own tables (the contacts tables it reads are the projection's)."""
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
        new: Sequence[InteractionRow],
        amended: Sequence[InteractionRow],
        links: Sequence[LinkRow],
        roles: Mapping[str, RoleYears] | None = None,
        continued: Set[str] = frozenset(),
    ) -> GraphBatch:
        """What the batch's rows alone say (no table is read).

        Args:
            new: Rows of interactions whose streams begin in the batch.
            amended: Rows of interactions from earlier batches.
            links: Participant rows of both.
            roles: The roles of every actor the batch touches, as its last version holds them.
            continued: The actors among them from earlier batches.
        """
        named = participants(links)
        deltas = Deltas()
        for row in new:
            deltas.add_row(row, named)
        amended_roles: dict[str, RoleYears] = {}
        for actor, held in (roles or {}).items():
            if actor in continued:
                amended_roles[actor] = held
            else:
                deltas.add_roles(actor, held)
        return GraphBatch(deltas, {row[0]: live_form(row, named) for row in amended}, amended_roles)

    async def apply(self, conn: asyncpg.Connection, batch: GraphBatch | None) -> None:
        """Write a prepared batch's changes: call before the contacts rows of the batch are
        written (the stored form of its amended interactions is the "before" of the change).
        """
        if batch is None:
            return
        deltas = batch.deltas
        if batch.amended:
            before = await self._before(conn, list(batch.amended))
            for item, after in batch.amended.items():
                deltas.change(item, before.get(item), after)
        if batch.amended_roles:
            held = await self._roles_before(conn, list(batch.amended_roles))
            for actor, after_roles in batch.amended_roles.items():
                deltas.change_roles(actor, held.get(actor, ()), after_roles)
        # Spans a removal may have shrunk are counted again; read what they were first.
        recount = await self._ends_reached(conn, deltas.shrunk)
        if deltas.deleted:
            columns = [list(c) for c in zip(*deltas.deleted, strict=True)]
            await conn.execute(self.q(DELETE_PAIRS_SQL), *columns)
        if deltas.inserted:
            await conn.copy_records_to_table(
                self._names["pairs"],
                schema_name="projections",
                columns=PAIR_COLUMNS,
                records=deltas.inserted,
            )
        if deltas.extended:
            widened = sorted(deltas.extended.items())
            await conn.execute(
                self.q(WIDEN_SPANS_SQL),
                [actor for actor, _ in widened],
                [span[0] for _, span in widened],
                [span[1] for _, span in widened],
            )
        if recount:
            await self._recount(conn, recount, deltas)

    async def _before(self, conn: asyncpg.Connection, items: list[str]) -> dict[str, Live]:
        rows = await conn.fetch(self.q(BEFORE_SQL), items)
        return {
            r["interaction_id"]: Live(
                r["kind"], r["lower_year"], r["upper_year"], tuple(sorted(r["actors"] or ()))
            )
            for r in rows
        }

    async def _roles_before(
        self, conn: asyncpg.Connection, actors: list[str]
    ) -> dict[str, RoleYears]:
        rows = await conn.fetch(self.q(BEFORE_ROLES_SQL), actors)
        held: dict[str, list[tuple[str, int | None, int | None]]] = {}
        for r in rows:
            held.setdefault(r["actor_id"], []).append(
                (r["organisation_id"], r["lower_year"], r["upper_year"])
            )
        return {actor: role_years(roles) for actor, roles in held.items()}

    async def _ends_reached(self, conn: asyncpg.Connection, shrunk: dict[str, Span]) -> list[str]:
        """The actors whose first or last year the batch took a fact from: that extreme may
        be gone."""
        if not shrunk:
            return []
        rows = await conn.fetch(self.q(READ_SPANS_SQL), sorted(shrunk))
        return [
            r["actor_id"]
            for r in rows
            if shrunk[r["actor_id"]][0] <= r["first_year"]
            or shrunk[r["actor_id"]][1] >= r["last_year"]
        ]

    async def _recount(self, conn: asyncpg.Connection, actors: list[str], deltas: Deltas) -> None:
        """Count the spans of ``actors`` again: from the interactions and roles the tables hold
        but those the batch replaces, and from the batch's new forms."""
        spans: dict[str, Span] = {}
        recounted = await conn.fetch(
            self.q(RECOUNT_SPANS_SQL), actors, deltas.replaced, deltas.replaced_roles
        )
        for r in recounted:
            if r["first_year"] is not None:
                spans[r["actor_id"]] = [r["first_year"], r["last_year"]]
        for actor in actors:
            added = deltas.extended.get(actor)
            if added is not None:
                widen(spans, actor, *added)
        kept = list(spans.items())
        if kept:
            await conn.execute(
                self.q(REPLACE_SPANS_SQL),
                [a for a, _ in kept],
                [span[0] for _, span in kept],
                [span[1] for _, span in kept],
            )
        gone = [a for a in actors if a not in spans]
        if gone:
            await conn.execute(self.q(DELETE_SPANS_SQL), gone)
