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
from projections.left_out import Tally
from service.cloudevents import encode_event

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

    import asyncpg

    from events.store import EventStore
    from projections.contacts import InteractionView
    from projections.exports import Directory

__all__ = ("FORMATS", "Format", "Report", "count_for", "export")

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


class Report:
    """What an export read, wrote and left out."""

    def __init__(self, fmt: Format) -> None:
        self.format = fmt
        self.read = 0
        self.written = 0
        self.left_out = Tally()

    def summary(self) -> list[str]:
        """The lines that end the command: the counts, then what was left out and why."""
        if self.format == "cloudevents":
            return [f"wrote {self.written:,} events"]
        unit = "rows" if self.format == "gdelt" else "records"
        return [
            f"{self.read:,} interactions: wrote {self.written:,} {unit}, "
            f"left out {self.left_out.total:,}",
            *self.left_out.lines(),
        ]


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
) -> Report:
    """Write the export to ``out``; what it read, wrote and left out. ``conn`` is a
    connection of its own (the PLOVER and GDELT exports hold a cursor on it)."""
    report = Report(fmt)
    if fmt == "cloudevents":
        await _feed(out, report, store, source=source, feed_filter=feed_filter, on_item=on_item)
        return report
    directory = await load_directory(conn, version=contacts_version)
    table = csv.writer(out, delimiter="\t", lineterminator="\n") if fmt == "gdelt" else None
    if table is not None:
        table.writerow(GDELT_COLUMNS)
    async for view in interaction_views(conn, version=contacts_version):
        report.read += 1
        if table is not None:
            rows = gdelt_rows(view, directory)
            if isinstance(rows, LeftOut):
                report.left_out.leave_out(view.interaction_id, rows)
            else:
                table.writerows(rows)
                report.written += len(rows)
        else:
            _plover(out, report, view, directory)
        if on_item is not None:
            on_item(1)
    return report


def _plover(out: TextIO, report: Report, view: InteractionView, directory: Directory) -> None:
    record = plover_record(view, directory)
    if isinstance(record, LeftOut):
        report.left_out.leave_out(view.interaction_id, record)
        return
    out.write(_ENCODER.encode(record).decode())
    out.write("\n")
    report.written += 1
    if view.negated:
        report.left_out.negations_marked += 1


async def _feed(
    out: TextIO,
    report: Report,
    store: EventStore,
    *,
    source: str,
    feed_filter: FeedFilter | None,
    on_item: Callable[[int], None] | None,
) -> None:
    after = START
    while True:
        page = await store.read_all(after, limit=_PAGE, filter=feed_filter)
        for event in page.events:
            out.write(encode_event(event, source).decode())
            out.write("\n")
        report.read += len(page.events)
        report.written += len(page.events)
        if on_item is not None and page.events:
            on_item(len(page.events))
        after = page.next_cursor
        if not page.full:
            return
