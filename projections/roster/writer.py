"""The roster's row writer: folds each batch's facts into the meetings' rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, cast

import msgspec

from events.records import FeedFilter, RecordedEvent, category_of
from projections.collector import collector_paused
from projections.common import first_versions
from projections.roster.fold import Draft, Fact, as_of_fact, draft_of, fold_further, view_of
from projections.roster.routes import Routes, decode, may_belong, route_all, route_rows
from projections.roster.schema import (
    CATEGORIES,
    COLUMNS_SQL,
    CREATE_SQL,
    DROP_SQL,
    EARLIER_FACTS_SQL,
    LOAD_DRAFTS_SQL,
    LOAD_LINKS_SQL,
    LZ4_SQL,
    PLAIN_COLUMNS_SQL,
    SAVE_LINKS_SQL,
    SAVE_SQL,
    UPGRADE_SQL,
    USE_LZ4_SQL,
    tables,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg

__all__ = ("RosterProjection",)

_DRAFT_DECODER: Final = msgspec.msgpack.Decoder(Draft)
_DRAFT_ENCODER: Final = msgspec.msgpack.Encoder()
_ENCODER: Final = msgspec.json.Encoder()


class RosterProjection:
    """Keeps ``projections.<prefix>_v<version>`` (draft and view per meeting) and
    ``<prefix>_links_v<version>`` (declaration/interaction stream -> meeting).

    A batch's facts are folded into each meeting's stored draft, in order. When they hold an
    amendment (which changes facts folded earlier), the meeting is folded again from its facts
    in the log, so that an amendment has exactly the effect it has in ``roster_from``.

    ``name`` and ``table_prefix`` default to ``roster``; tests give each instance its own so
    that several can be built side by side over one feed.
    """

    def __init__(
        self, *, name: str = "roster", table_prefix: str = "roster", version: int = 1
    ) -> None:
        self.name = name
        self.version = version
        self.filter: FeedFilter | None = FeedFilter(categories=CATEGORIES)
        self._table = tables(table_prefix, version)["table"]
        self._sql = {
            key: sql.format(**tables(table_prefix, self.version))
            for key, sql in (
                ("create", CREATE_SQL),
                ("upgrade", UPGRADE_SQL),
                ("use_lz4", USE_LZ4_SQL),
                ("drop", DROP_SQL),
                ("load_links", LOAD_LINKS_SQL),
                ("save_links", SAVE_LINKS_SQL),
                ("load_drafts", LOAD_DRAFTS_SQL),
                ("earlier", EARLIER_FACTS_SQL),
                ("save", SAVE_SQL),
            )
        }

    async def setup(self, conn: asyncpg.Connection) -> None:
        """Create the tables if they do not exist, and upgrade an older layout."""
        await conn.execute(self._sql["create"])
        columns = {r["column_name"] for r in await conn.fetch(COLUMNS_SQL, self._table)}
        # Asked first: ALTER TABLE locks out readers even when it has nothing to do.
        if "facts" in columns or "draft" not in columns:
            await conn.execute(self._sql["upgrade"])
        if await conn.fetchval(LZ4_SQL) and await conn.fetchval(
            PLAIN_COLUMNS_SQL, f"projections.{self._table}"
        ):
            await conn.execute(self._sql["use_lz4"])

    async def drop(self, conn: asyncpg.Connection) -> None:
        """Drop this version's tables (after a newer version took over)."""
        await conn.execute(self._sql["drop"])

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        """Route the batch's facts to meetings, fold them into each meeting's draft (or fold
        the meeting again from the log) and write each affected meeting once."""
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
        stored: dict[str, bytes | None] = {
            r["meeting_id"]: r["draft"]
            for r in await conn.fetch(self._sql["load_drafts"], meetings)
        }
        drafts: dict[str, Draft] = {}
        refold: list[str] = []
        with collector_paused():
            for meeting_id in meetings:
                raw = stored.get(meeting_id, b"")
                if raw is None:  # a row from before drafts were kept
                    refold.append(meeting_id)
                    continue
                draft = _DRAFT_DECODER.decode(raw) if raw else Draft(meeting_id=meeting_id)
                if fold_further(draft, meeting_id, grouped[meeting_id]):
                    drafts[meeting_id] = draft
                else:
                    refold.append(meeting_id)
        if refold:
            first = events[0]
            rows = await conn.fetch(
                self._sql["earlier"], refold, first.transaction_id, first.position
            )
            with collector_paused():
                earlier = route_rows(rows, set(refold))
                for meeting_id in refold:
                    facts = earlier.get(meeting_id, []) + grouped[meeting_id]
                    drafts[meeting_id] = draft_of(facts, meeting_id)
        drafts_out: list[bytes] = []
        views_out: list[str] = []
        with collector_paused():
            for meeting_id in meetings:
                draft = drafts[meeting_id]
                view = view_of(draft, as_of_fact(grouped[meeting_id][-1]))
                drafts_out.append(_DRAFT_ENCODER.encode(draft))
                views_out.append(_ENCODER.encode(view).decode())
        await conn.execute(self._sql["save"], meetings, drafts_out, views_out)
