"""The ``diplofeed`` command."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import asyncpg
import click
import uvicorn

from events.errors import EventStoreError
from events.migrate import migrate as run_migrations
from events.verify import verify_chains
from service.app import create_app
from service.keys import KeyError_, create_key, list_keys, revoke_key
from service.settings import Settings, SettingsError

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from typing import Any

__all__ = ("main",)


def _run(work: Coroutine[Any, Any, int]) -> None:
    """Run ``work``; turn expected failures into one clear line and a non-zero status."""
    try:
        status = asyncio.run(work)
    except (EventStoreError, SettingsError, KeyError_) as exc:
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


@main.command()
@click.option("--host", default=None, help="Address to listen on (default DIPLOFEED_HOST).")
@click.option("--port", type=int, default=None, help="Port (default DIPLOFEED_PORT, 8000).")
def serve(host: str | None, port: int | None) -> None:
    """Run the HTTP API (and, unless DIPLOFEED_RUN_PROJECTIONS=false, the projections).

    Example: DATABASE_URL=postgresql://app@db/diplofeed diplofeed serve --port 8000
    """
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    host = host or settings.host
    port = settings.port if port is None else port
    click.echo(f"Diplofeed API on http://{host}:{port}  (docs: http://{host}:{port}/schema)")
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False)


@main.group()
def keys() -> None:
    """Create, list and revoke API keys (run against the application's database)."""


@keys.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(["read", "write", "admin"]),
    default=("read",),
    show_default=True,
    help="Repeat for several; admin implies write, write implies read.",
)
def keys_create(name: str, scopes: tuple[str, ...]) -> None:
    """Create a key and print its token (shown this once; only its hash is stored).

    Example: diplofeed keys create "newsroom ingest" --scope write
    """

    async def work() -> int:
        conn = await asyncpg.connect(Settings.from_env().database_url)
        try:
            created = await create_key(conn, name, scopes)  # type: ignore[arg-type]
        finally:
            await conn.close()
        click.echo(f"id:     {created.key.id}\nscopes: {', '.join(created.key.scopes)}")
        click.echo(f"token:  {created.token}")
        click.echo("Store the token now: it cannot be shown again.", err=True)
        return 0

    _run(work())


@keys.command("list")
def keys_list() -> None:
    """List keys (never their secrets).

    Example: diplofeed keys list
    """

    async def work() -> int:
        conn = await asyncpg.connect(Settings.from_env().database_url)
        try:
            found = await list_keys(conn)
        finally:
            await conn.close()
        for key in found:
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            click.echo(f"{key.id}  {','.join(key.scopes):<16} {state:<24} {key.name}")
        if not found:
            click.echo("no keys yet: diplofeed keys create NAME --scope read")
        return 0

    _run(work())


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id; API processes stop accepting it within seconds.

    Example: diplofeed keys revoke 3f9a0c1b2d4e
    """

    async def work() -> int:
        conn = await asyncpg.connect(Settings.from_env().database_url)
        try:
            key = await revoke_key(conn, key_id)
        finally:
            await conn.close()
        click.echo(f"revoked {key.id} ({key.name})")
        return 0

    _run(work())
