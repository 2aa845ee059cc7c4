"""What every ``diplofeed`` subcommand shares: settings (the demo's, with ``--demo``), and
turning failures into one clear line on standard error with a non-zero exit status."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import asyncpg
import click

from events.errors import EventStoreError
from service.demo import embedded_postgres, embedded_settings, has_embedded_data
from service.keys import KeyError_
from service.loading import LoadError
from service.settings import Settings, SettingsError
from service.startup import DatabaseUnavailable, wait_for_database

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

__all__ = ("DATABASE_HINT", "demo_option", "run", "settings_or_exit", "wait_or_exit")

DATABASE_HINT: Final = (
    "point DATABASE_URL at a running PostgreSQL, or run `diplofeed serve --demo` for an "
    "embedded one"
)
_DEMO: Final = "diplofeed.demo"

_Command = TypeVar("_Command", bound="Callable[..., Any]")


def _remember_demo(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_DEMO] = True


def demo_option(command: _Command) -> _Command:
    """Give ``command`` a ``--demo`` flag: ``settings_or_exit`` then answers the demo's."""
    return click.option(
        "--demo",
        is_flag=True,
        expose_value=False,
        callback=_remember_demo,
        help="Use the demo's data: the embedded PostgreSQL that `diplofeed serve --demo` runs "
        "in DIPLOFEED_DATA_DIR (./.diplofeed), joined if the demo runs, started for this "
        "command if not (with DATABASE_URL set, the demo uses that and so does this).",
    )(command)


def settings_or_exit() -> Settings:
    """The settings from the environment, or exit 1 saying which one is wrong. Under a
    command given ``--demo`` without ``DATABASE_URL``: the demo's database, its embedded
    server running until the command ends."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    ctx = click.get_current_context(silent=True)
    if ctx is None or not ctx.meta.get(_DEMO) or settings.database_url_given:
        return settings
    if not has_embedded_data(settings):
        click.echo(
            f"error: no demo data in {Path(settings.data_dir).resolve()}: start the demo once "
            "with `diplofeed serve --demo` (or set DIPLOFEED_DATA_DIR to its folder)",
            err=True,
        )
        sys.exit(1)
    admin_url = ctx.with_resource(embedded_postgres(Path(settings.data_dir)))
    return embedded_settings(settings, admin_url)


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
