"""The roster's row writer: folds each batch's facts into the meetings' rows."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final, cast

import msgspec

from events.records import FeedFilter, RecordedEvent, category_of
from projections.collector import collector_paused
from projections.common import RESTART_SQL, first_versions, layout_outdated, stamp_layout
from projections.roster.fold import Draft, Fact, fold_each, refold_each
from projections.roster.routes import Routes, decode, may_belong, route_all, route_rows
from projections.roster.schema import (
    CATEGORIES,
    CLOSE_SQL,
    CREATE_SQL,
    CUSTOM_PLANS_SQL,
    DROP_SQL,
    EARLIER_FACTS_SQL,
    LOAD_DRAFTS_SQL,
    LOAD_LINKS_SQL,
    LZ4_SQL,
    OPEN_COLUMNS,
    PLAIN_COLUMNS_SQL,
    SAVE_LINKS_SQL,
    USE_LZ4_SQL,
    tables,
)
from projections.system_time import key_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg


__all__ = ("RosterProjection",)

log = logging.getLogger(__name__)

_DRAFT_DECODER: Final = msgspec.msgpack.Decoder(Draft)
_DRAFT_ENCODER: Final = msgspec.msgpack.Encoder()
_ENCODER: Final = msgspec.json.Encoder()


class RosterProjection:
    """Keeps ``projections.<prefix>_v<version>`` (the versions of each meeting's view, see
    ``projections.roster.schema``) and ``<prefix>_links_v<version>`` (declaration/interaction
    stream -> meeting).

    Each fact routed to a meeting opens a version of its view (the view after that fact) and
    closes the one before, so the versions depend on the facts alone: a rebuild in batches of
    any size equals the tables built incrementally, row for row. A batch's facts are folded
    into each meeting's stored draft, in order. When they hold an amendment (which changes
    facts folded earlier), the meeting is folded again from its facts in the log, so that an
    amendment has exactly the effect it has in ``roster_from``.

    ``name`` and ``table_prefix`` default to ``roster``; tests give each instance its own so
    that several can be built side by side over one feed.
    """

    layout: Final = 3
    """What the code makes of the log (``projections.common``): 2, a meeting's ``purpose``;
    3, attendance histories and the status ``held`` in the stored views."""

    def __init__(
        self, *, name: str = "roster", table_prefix: str = "roster", version: int = 1
    ) -> None:
        self.name = name
        self.version = version
        self.filter: FeedFilter | None = FeedFilter(categories=CATEGORIES)
        self._table = tables(table_prefix, version)["table"]
        self.tables = tuple(tables(table_prefix, version).values())
        self._sql = {
            key: sql.format(**tables(table_prefix, self.version))
            for key, sql in (
                ("create", CREATE_SQL),
                ("use_lz4", USE_LZ4_SQL),
                ("drop", DROP_SQL),
                ("load_links", LOAD_LINKS_SQL),
                ("save_links", SAVE_LINKS_SQL),
                ("load_drafts", LOAD_DRAFTS_SQL),
                ("earlier", EARLIER_FACTS_SQL),
                ("close", CLOSE_SQL),
            )
        }

    async def setup(self, conn: asyncpg.Connection) -> None:
        """Create the tables if they do not exist.

        Tables of an older layout (``projections.common``) are replaced by empty ones and the
        projection's checkpoint goes back to the start, so the runner folds the whole log
        again (the view meanwhile catches up, saying it is stale): the API sends the stored
        bytes as they are, and those hold what the older code made of each fact. Before
        system time (layout 1 too) the tables held no past versions to answer "as of" from,
        and no version can be made up for them.
        """
        async with conn.transaction():
            if await layout_outdated(conn, self._table, self.layout):
                log.warning(
                    "%s: tables of an older layout replaced; folding the log again", self.name
                )
                await conn.execute(self._sql["drop"])
                await conn.execute(RESTART_SQL, self.name, self.version)
            await conn.execute(self._sql["create"])
            await stamp_layout(conn, self._table, self.layout)
        if await conn.fetchval(LZ4_SQL) and await conn.fetchval(
            PLAIN_COLUMNS_SQL, f"projections.{self._table}"
        ):
            await conn.execute(self._sql["use_lz4"])

    async def drop(self, conn: asyncpg.Connection) -> None:
        """Drop this version's tables (after a newer version took over)."""
        await conn.execute(self._sql["drop"])

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        """Route the batch's facts to meetings, fold them into each meeting's draft (or fold
        the meeting again from the log) and write a version per fact."""
        await self.apply_prepared(conn, events, await self.prepare(conn, events))

    async def prepare(
        self, conn: asyncpg.Connection | asyncpg.Pool, events: Sequence[RecordedEvent]
    ) -> dict[int, Fact | None]:
        """Decode, ahead of the batch's turn, every event that may belong to a meeting (by
        position in the batch): routing needs the stored links, decoding does not."""
        del conn  # decoding reads nothing
        with collector_paused():
            return {index: decode(event) for index, event in enumerate(events) if may_belong(event)}

    async def apply_prepared(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], prepared: object
    ) -> None:
        """``apply``, with the facts ``prepare`` decoded."""
        if not events:
            return
        decoded = cast("dict[int, Fact | None]", prepared)
        await conn.execute(CUSTOM_PLANS_SQL)
        # Only a stream that began in an earlier batch can have a stored link.
        continuing = [
            stream_id
            for stream_id, first in first_versions(events).items()
            if first > 1 and category_of(stream_id) != "meeting"
        ]
        rows = await conn.fetch(self._sql["load_links"], continuing) if continuing else []
        routes = Routes({r["stream_id"]: r["meeting_id"] for r in rows})
        with collector_paused():
            grouped = route_all(events, routes, decoded)
        if routes.new_links:
            await conn.execute(
                self._sql["save_links"], list(routes.new_links), list(routes.new_links.values())
            )
        if not grouped:
            return
        meetings = list(grouped)
        stored: dict[str, bytes] = {
            r["meeting_id"]: r["draft"]
            for r in await conn.fetch(self._sql["load_drafts"], meetings)
        }
        folded: dict[str, tuple[list[bytes], Draft]] = {}
        refold: list[str] = []
        with collector_paused():
            for meeting_id in meetings:
                raw = stored.get(meeting_id)
                draft = _DRAFT_DECODER.decode(raw) if raw else Draft(meeting_id=meeting_id)
                views = fold_each(draft, meeting_id, grouped[meeting_id], _ENCODER.encode)
                if views is None:
                    refold.append(meeting_id)
                else:
                    folded[meeting_id] = views, draft
        if refold:
            first = events[0]
            rows = await conn.fetch(
                self._sql["earlier"], refold, first.transaction_id, first.position
            )
            with collector_paused():
                earlier = route_rows(rows, set(refold))
                for meeting_id in refold:
                    folded[meeting_id] = refold_each(
                        earlier.get(meeting_id, []),
                        meeting_id,
                        grouped[meeting_id],
                        _ENCODER.encode,
                    )
        with collector_paused():
            versions = _Versions()
            for meeting_id in meetings:
                views, draft = folded[meeting_id]
                versions.add(meeting_id, grouped[meeting_id], views, draft)
        if stored:
            closing = [m for m in meetings if m in stored]
            await conn.execute(self._sql["close"], closing, [versions.first[m] for m in closing])
        await conn.copy_records_to_table(
            self._table, schema_name="projections", records=versions.rows, columns=OPEN_COLUMNS
        )


class _Versions:
    """The rows a batch opens (``OPEN_COLUMNS``): one per fact routed to a meeting, each closed
    where the next of its meeting opens, the last left open with the meeting's draft."""

    def __init__(self) -> None:
        self.first: dict[str, bytes] = {}
        """Where each meeting's first new version opens (and its open one closes)."""
        self.rows: list[tuple[str, bytes, bytes | None, bytes | None, bytes]] = []

    def add(
        self,
        meeting_id: str,
        facts: Sequence[Fact],
        views: Sequence[bytes],
        draft: Draft,
    ) -> None:
        """The versions of ``meeting_id``: the view after each of ``facts`` (encoded), then
        ``draft``."""
        keys = [key_of(fact.cursor) for fact in facts]
        self.first[meeting_id] = keys[0]
        rows = self.rows
        for n in range(len(keys) - 1):
            rows.append((meeting_id, keys[n], keys[n + 1], None, views[n]))
        rows.append((meeting_id, keys[-1], None, _DRAFT_ENCODER.encode(draft), views[-1]))
