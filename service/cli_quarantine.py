"""``diplofeed quarantine``: see the events projections could not apply, and release them."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import click

from events.connect import connect
from projections.quarantine import QuarantinedEvent, list_quarantine, release
from service.cli_support import demo_option, run, settings_or_exit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg

    from service.settings import Settings

__all__ = ("quarantine",)


@contextlib.asynccontextmanager
async def _connected(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(settings.connection_options())
    try:
        yield conn
    finally:
        await conn.close()


def _line(entry: QuarantinedEvent) -> str:
    return (
        f"{entry.name} v{entry.version}  {entry.status:<7}  position {entry.position}  "
        f"{entry.event_id}  {entry.type}  {entry.attempts} attempts, "
        f"{entry.quarantined_at:%Y-%m-%d %H:%M:%S}\n    {entry.error}"
    )


@click.group()
def quarantine() -> None:
    """Events a projection could not apply, however often it tried. The projection pauses
    before such an event (its view stays what the log says up to there; every other
    projection goes on) until it is released.

    Example: diplofeed quarantine list
    """


@quarantine.command("list")
@click.option("--all", "everything", is_flag=True, help="Also events since applied or skipped.")
@demo_option
def quarantine_list(everything: bool) -> None:
    """List quarantined events: held, or released and not yet acted on.

    Example: diplofeed quarantine list --all
    """
    settings = settings_or_exit()

    async def work() -> int:
        async with _connected(settings) as conn:
            found = await list_quarantine(conn, everything=everything)
        click.echo("\n".join(_line(entry) for entry in found) or "no quarantined events")
        return 0

    run(work())


@quarantine.command("release")
@click.argument("name")
@click.option(
    "--skip",
    is_flag=True,
    help="Go past the event instead of trying it again: the view lacks it until the next "
    "`diplofeed rebuild`.",
)
@demo_option
def quarantine_release(name: str, skip: bool) -> None:
    """Release the event projection NAME is paused before: its runner tries it again (deploy
    the fix first), or with --skip goes past it.

    Example: diplofeed quarantine release roster --skip
    """
    settings = settings_or_exit()

    async def work() -> int:
        async with _connected(settings) as conn:
            released = await release(conn, name, skip=skip)
        for entry in released:
            click.echo(f"released ({entry.status}): {_line(entry)}")
        if not released:
            click.echo(f"error: projection {name!r} holds no quarantined event", err=True)
            return 1
        return 0

    run(work())
