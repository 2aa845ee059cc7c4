"""``diplofeed export``: the log's interactions as PLOVER JSON lines or a GDELT-style table,
or the whole feed as CloudEvents JSON lines, each streamed to a file in constant memory."""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING, Final, Literal

import msgspec

from events.records import START, FeedFilter
from projections.exports import (
    GDELT_COLUMNS,
    LeftOut,
    count_interactions,
    gdelt_rows,
    interaction_views,
    load_directory,
    plover_record,
)
from service.cloudevents import encode_event

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

    import asyncpg

    from events.store import EventStore

__all__ = ("FORMATS", "Format", "count_for", "export")

Format = Literal["plover", "gdelt", "cloudevents"]
FORMATS: Final[tuple[Format, ...]] = ("plover", "gdelt", "cloudevents")

COUNT_FEED_SQL: Final = "SELECT count(*) FROM events"
_PAGE: Final = 1_000
_ENCODER = msgspec.json.Encoder()


async def count_for(conn: asyncpg.Connection, fmt: Format, *, version: int) -> int:
    """How many items the export will go through (for its progress bar)."""
    if fmt == "cloudevents":
        total: int = await conn.fetchval(COUNT_FEED_SQL)
        return total
    return await count_interactions(conn, version=version)


async def export(
    fmt: Format,
    out: TextIO,
    *,
    store: EventStore,
    conn: asyncpg.Connection,
    contacts_version: int,
    source: str,
    feed_filter: FeedFilter | None = None,
    on_item: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Write the export to ``out``; returns (items read, records written). ``conn`` is a
    connection of its own (the PLOVER and GDELT exports hold a cursor on it)."""
    read = written = 0
    if fmt == "cloudevents":
        after = START
        while True:
            page = await store.read_all(after, limit=_PAGE, filter=feed_filter)
            for event in page.events:
                out.write(encode_event(event, source).decode())
                out.write("\n")
            read += len(page.events)
            written += len(page.events)
            if on_item is not None and page.events:
                on_item(len(page.events))
            after = page.next_cursor
            if not page.full:
                return read, written
    directory = await load_directory(conn, version=contacts_version)
    table = csv.writer(out, delimiter="\t", lineterminator="\n") if fmt == "gdelt" else None
    if table is not None:
        table.writerow(GDELT_COLUMNS)
    async for view in interaction_views(conn, version=contacts_version):
        read += 1
        if table is not None:
            rows = gdelt_rows(view, directory)
            table.writerows(rows)
            written += len(rows)
        else:
            record = plover_record(view, directory)
            if not isinstance(record, LeftOut):
                out.write(_ENCODER.encode(record).decode())
                out.write("\n")
                written += 1
        if on_item is not None:
            on_item(1)
    return read, written
