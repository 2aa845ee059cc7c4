"""The data commands of ``diplofeed``: load commands, export the log, tail the feed."""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from events.connect import connect
from events.domain.handler import CommandHandler
from events.records import START, Cursor, FeedFilter, Metadata
from projections.rebuild import live_version
from projections.runner import projection_lag
from service.cli_support import demo_option, run, settings_or_exit
from service.cloudevents import encode_event
from service.exporting import FORMATS, Format, count_for
from service.exporting import export as write_export
from service.loading import load_commands
from service.progress import Progress
from service.projectors import PROJECTIONS
from service.runtime import open_store

if TYPE_CHECKING:
    from events.records import RecordedEvent
    from service.settings import Settings

__all__ = ("export", "load", "tail")


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--keep-going", is_flag=True, help="Report refused lines and go on.")
@demo_option
def load(file: str, keep_going: bool) -> None:
    """Record the commands in FILE, one JSON object per line with its "type" (the seed
    article's format); '-' reads standard input. Commands with a command_id are recorded once
    however often the file is loaded.

    Example: diplofeed load events/domain/seed_article.jsonl
    """
    settings = settings_or_exit()
    if file == "-":
        total, lines = 0, sys.stdin
    else:
        with Path(file).open(encoding="utf-8") as counting:
            total = sum(1 for _ in counting)
        lines = Path(file).open(encoding="utf-8")  # noqa: SIM115 (closed below, after the run)

    async def work() -> int:
        async with open_store(settings) as store:
            with Progress(f"loading {file}", total, unit="lines") as bar:
                report = await load_commands(
                    CommandHandler(store),
                    lines,
                    metadata=Metadata(recorded_by=f"cli:load:{Path(file).name}"),
                    keep_going=keep_going,
                    on_line=bar.advance,
                )
        click.echo(
            f"{report.commands} commands: {report.recorded} recorded ({report.events} events), "
            f"{report.already_recorded} recorded before, {report.nothing_to_record} with "
            f"nothing new, {len(report.refused)} refused"
        )
        for line in report.refused:
            click.echo(f"refused {line}", err=True)
        return 1 if report.refused else 0

    try:
        run(work())
    finally:
        lines.close()


@click.command()
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="plover", show_default=True,
    help="plover: PLOVER JSON lines; gdelt: a GDELT-style tab-separated table; "
    "cloudevents: the whole feed as CloudEvents JSON lines.",
)  # fmt: skip
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              show_default=True, help="Where to write ('-': standard output).")  # fmt: skip
@click.option("--source", default=None, help="CloudEvents source base URL (DIPLOFEED_PUBLIC_URL).")
@demo_option
def export(fmt: Format, output: str, source: str | None) -> None:
    """Export the interactions (corrections applied, retractions left out) or the feed,
    streaming in constant memory, with progress on standard error; the summary names the
    interactions a format left out, and why.

    Example: diplofeed export --format gdelt -o interactions.tsv
    """
    settings = settings_or_exit()
    with contextlib.ExitStack() as stack:
        out: TextIO = (
            sys.stdout
            if output == "-"
            else stack.enter_context(Path(output).open("w", encoding="utf-8"))
        )
        run(_export(settings, fmt, out, source))


async def _export(settings: Settings, fmt: Format, out: TextIO, source: str | None) -> int:
    async with open_store(settings) as store:
        conn = await connect(settings.connection_options())
        try:
            version = await live_version(conn, "contacts") or 1
            if fmt != "cloudevents":
                lag = await projection_lag(conn, PROJECTIONS["contacts"](version))
                if lag.events:
                    click.echo(
                        f"warning: the contacts projection is {lag.events} events behind; "
                        "run `diplofeed project` (or serve) to bring it up to date",
                        err=True,
                    )
            total = await count_for(conn, fmt, version=version)
            base = source or settings.public_url or "urn:diplofeed"
            unit = "events" if fmt == "cloudevents" else "interactions"
            with Progress(f"exporting {fmt}", total, unit=unit) as bar:
                report = await write_export(
                    fmt, out, store=store, conn=conn, contacts_version=version,
                    source=base, on_item=bar.advance,
                )  # fmt: skip
        finally:
            await conn.close()
    for line in report.summary():
        click.echo(line, err=True)
    return 0


def _line(event: RecordedEvent) -> str:
    when = event.recorded_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{when}  {event.cursor.encode()}  {event.stream_id:<40} {event.type}"


@click.command()
@click.option("--from-start", is_flag=True, help="Begin at the start of the feed, not now.")
@click.option("--after", default=None, help="Begin after this feed cursor.")
@click.option("--type", "type_prefix", default=None, help="Only types with this prefix.")
@click.option("--category", "categories", multiple=True, help="Only these categories.")
@click.option("--actor", default=None, help="Only events about this actor id.")
@click.option("--stream", default=None, help="Only this stream.")
@click.option("--json", "as_json", is_flag=True, help="CloudEvents JSON lines instead of text.")
@click.option("--max", "most", type=int, default=None, help="Stop after this many events.")
@demo_option
def tail(
    *,
    from_start: bool,
    after: str | None,
    type_prefix: str | None,
    categories: tuple[str, ...],
    actor: str | None,
    stream: str | None,
    as_json: bool,
    most: int | None,
) -> None:
    """Follow the feed in the terminal, one line per event, until Ctrl-C.

    Example: diplofeed tail --category meeting
    """
    settings = settings_or_exit()
    flt = FeedFilter.of(
        type_prefix=type_prefix, categories=categories, actor=actor, stream_id=stream
    )

    async def work() -> int:
        async with open_store(settings) as store:
            start = (
                Cursor.decode(after) if after else START if from_start else await store.horizon()
            )
            seen = 0
            base = settings.public_url or "urn:diplofeed"
            async for event in store.follow(start, filter=flt):
                click.echo(encode_event(event, base).decode() if as_json else _line(event))
                seen += 1
                if most is not None and seen >= most:
                    break
        return 0

    with contextlib.suppress(KeyboardInterrupt):
        run(work())
