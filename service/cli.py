"""The ``diplofeed`` command."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import asyncpg
import click

from events.errors import EventStoreError
from events.migrate import migrate as run_migrations
from events.verify import verify_chains
from service.settings import Settings, SettingsError

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from typing import Any

__all__ = ("main",)


def _run(work: Coroutine[Any, Any, int]) -> None:
    """Run ``work``; turn expected failures into one clear line and a non-zero status."""
    try:
        status = asyncio.run(work)
    except (EventStoreError, SettingsError) as exc:
        click.echo(f"error: {exc}", err=True)
        status = 1
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        click.echo(f"error: database: {exc}", err=True)
        status = 2
    sys.exit(status)


@click.group()
def main() -> None:
    """Diplofeed: an event-sourced feed of diplomatic interactions."""


@main.command()
def migrate() -> None:
    """Apply pending schema migrations (as the owner role; safe to run twice or concurrently).

    Example: MIGRATION_DATABASE_URL=postgresql://owner@db/diplofeed diplofeed migrate
    """

    async def work() -> int:
        settings = Settings.from_env()
        conn = await asyncpg.connect(settings.migration_dsn())
        try:
            applied = await run_migrations(conn)
        finally:
            await conn.close()
        for m in applied:
            click.echo(f"applied {m.version:04d}_{m.name}")
        if not applied:
            click.echo("schema is current; nothing to apply")
        return 0

    _run(work())


@main.command()
def verify() -> None:
    """Recompute every stream's hash chain; exit 1 at the first broken link of any stream.

    Example: DATABASE_URL=postgresql://app@db/diplofeed diplofeed verify
    """

    async def work() -> int:
        settings = Settings.from_env()
        conn = await asyncpg.connect(settings.database_url)
        try:
            report = await verify_chains(conn)
        finally:
            await conn.close()
        for link in report.broken:
            click.echo(
                f"BROKEN stream={link.stream_id} version={link.stream_version} "
                f"expected={link.expected_hash} found={link.found_hash} ({link.reason})"
            )
        click.echo(
            f"checked {report.events} events in {report.streams} streams: "
            + ("all chains intact" if report.ok else f"{len(report.broken)} broken")
        )
        return 0 if report.ok else 1

    _run(work())
