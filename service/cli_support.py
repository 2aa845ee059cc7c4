"""What every ``diplofeed`` subcommand shares: settings, waiting for the database, and turning
failures into one clear line on standard error with a non-zero exit status."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import click

from events.errors import EventStoreError
from service.keys import KeyError_
from service.loading import LoadError
from service.settings import Settings, SettingsError
from service.startup import DatabaseUnavailable, wait_for_database

if TYPE_CHECKING:
    from collections.abc import Coroutine

__all__ = ("DATABASE_HINT", "run", "settings_or_exit", "wait_or_exit")

DATABASE_HINT: Final = (
    "point DATABASE_URL at a running PostgreSQL, or run `diplofeed serve --demo` for an "
    "embedded one"
)


def settings_or_exit() -> Settings:
    """The settings from the environment, or exit 1 saying which one is wrong."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


def wait_or_exit(settings: Settings) -> None:
    """Wait (bounded) for the database; exit 2 with a hint if it never answers."""
    try:
        asyncio.run(
            wait_for_database(settings, on_first_failure=lambda why: click.echo(why, err=True))
        )
    except DatabaseUnavailable as exc:
        click.echo(f"error: database: {exc}; {DATABASE_HINT}", err=True)
        sys.exit(2)


def run(work: Coroutine[Any, Any, int]) -> None:
    """Run ``work``; turn expected failures into one clear line and a non-zero status
    (1: refused or invalid, 2: the database, 130: interrupted)."""
    try:
        status = asyncio.run(work)
    except (EventStoreError, SettingsError, KeyError_, LoadError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        status = 1
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        click.echo(f"error: database: {exc}", err=True)
        status = 2
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        status = 130
    sys.exit(status)
