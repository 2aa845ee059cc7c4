"""The ``diplofeed`` command: serve, project, migrate, rebuild, quarantine, verify, keys, load,
export, tail. Each has ``--help`` with an example; failures are one line on standard error and a
non-zero exit status."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import click
import msgspec
import uvicorn

from events.connect import connect
from events.migrate import migrate as run_migrations
from events.verify import verify_chains
from projections.collector import long_lived_collector
from projections.rebuild import live_version
from projections.rebuild import rebuild as run_rebuild
from projections.runner import projection_lag
from service.app import create_app
from service.cli_data import export, load, tail
from service.cli_quarantine import quarantine
from service.cli_support import demo_option, settings_or_exit, wait_or_exit
from service.cli_support import run as _run
from service.demo import embedded_postgres, keep_demo_key, prepare_demo, read_demo_key
from service.keys import create_key, list_keys, revoke_key
from service.progress import Progress
from service.projectors import PROJECTIONS
from service.runtime import open_store, run_projections
from service.startup import PortUnavailable, listen, redacted

if TYPE_CHECKING:
    import socket

    from service.settings import Settings

__all__ = ("cli", "main")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Diplofeed: an event-sourced feed of diplomatic interactions.

    Settings come from the environment (DATABASE_URL, DIPLOFEED_*); see the README. Every
    command that reads or writes data takes --demo to use the demo's (`serve --demo`).
    Example: diplofeed serve --demo
    """


main.add_command(load)
main.add_command(export)
main.add_command(tail)
main.add_command(quarantine)


@main.command()
@demo_option
def migrate() -> None:
    """Apply pending schema migrations (as the owner role; safe to run twice or concurrently).

    Example: MIGRATION_DATABASE_URL=postgresql://owner@db/diplofeed diplofeed migrate
    """

    settings = settings_or_exit()

    async def work() -> int:
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
@demo_option
def verify() -> None:
    """Recompute every stream's hash chain; exit 1 at the first broken link of any stream.

    Example: DATABASE_URL=postgresql://app@db/diplofeed diplofeed verify
    """

    settings = settings_or_exit()

    async def work() -> int:
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
@click.option(
    "--demo",
    is_flag=True,
    help="Migrate, record the seed article and make a demo key first; without DATABASE_URL, "
    "run an embedded PostgreSQL in the data folder (DIPLOFEED_DATA_DIR, ./.diplofeed).",
)
def serve(host: str | None, port: int | None, demo: bool) -> None:
    """Run the HTTP API (and, unless DIPLOFEED_RUN_PROJECTIONS=false, the projections).
    A database that does not answer yet is waited for (DIPLOFEED_DB_WAIT_S, 30 s).

    Example: diplofeed serve --demo          (a running demo on a fresh machine)
    Example: DATABASE_URL=postgresql://app@db/diplofeed diplofeed serve --port 8000
    """
    settings = settings_or_exit()
    # Bound first: a taken port is reported before any database work or banner.
    try:
        sock = listen(host or settings.host, settings.port if port is None else port)
    except PortUnavailable as exc:
        click.echo(f"error: {exc}; choose another with --port or DIPLOFEED_PORT", err=True)
        sys.exit(1)
    with sock:
        if demo:
            _serve_demo(settings, sock)
        else:
            wait_or_exit(settings)
            _serve(settings, sock)


def _serve_demo(settings: Settings, sock: socket.socket) -> None:
    embedded = None if settings.database_url_given else Path(settings.data_dir)
    with contextlib.ExitStack() as stack:
        admin_url = None
        if embedded is not None:
            click.echo(f"starting the embedded PostgreSQL in {embedded / 'pgdata'} ...", err=True)
            admin_url = stack.enter_context(embedded_postgres(embedded))
        else:
            wait_or_exit(settings)
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        known = read_demo_key(settings)
        try:
            setup = asyncio.run(prepare_demo(settings, admin_url=admin_url, known_token=known))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            click.echo(f"error: database: {exc}", err=True)
            sys.exit(2)
        if setup.token != known:
            keep_demo_key(settings, setup.token)
        seed = setup.seed
        click.echo(
            f"seed article: {seed.recorded} commands recorded now, {seed.already_recorded} "
            "recorded before",
            err=True,
        )
        base = _base_url(sock)
        click.echo(f"Diplofeed demo: {base}")
        click.echo(f"  interactive docs: {base}/schema")
        click.echo(f"  the Moscow roster: {base}/meetings/moscow_2024")
        click.echo(f"  Hamas's contact history: {base}/actors/hamas/contacts")
        click.echo(f"  the live feed: {base}/feed/stream")
        click.echo(f"  reads are public; write with: Authorization: Bearer {setup.token}")
        click.echo(
            f"  its database: DATABASE_URL={redacted(setup.settings.database_url)}"
            "  (or add --demo to any diplofeed command)"
        )
        click.echo("Ctrl-C stops it; the data stays for the next start.")
        demo_settings = msgspec.structs.replace(setup.settings, public_reads=True)
        _serve(demo_settings, sock, announce=False)


def _base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _serve(settings: Settings, sock: socket.socket, *, announce: bool = True) -> None:
    base = _base_url(sock)
    if announce:
        click.echo(f"Diplofeed API on {base}  (docs: {base}/schema)")
    host, port = sock.getsockname()[:2]
    # The loop and the HTTP parser are uvicorn's "auto": uvloop and httptools, which the
    # uvicorn[standard] dependency installs (measured with `python -m bench.http --loops`).
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            timeout_keep_alive=settings.keep_alive_s,
            # Under h11, a request line and headers larger than this are refused (uvicorn's
            # default, stated so that it is a decision); httptools applies llhttp's own limit.
            h11_max_incomplete_event_size=16 * 1024,
        )
    )
    # As uvicorn.run: the Ctrl-C that uvicorn re-raises once shut down is a clean stop.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    if not server.started:
        sys.exit(3)  # uvicorn's status for a failed start-up; its log says why


@main.command()
@click.option(
    "--only",
    "names",
    multiple=True,
    type=click.Choice(sorted(PROJECTIONS)),
    help="Run only these projections (repeatable; default: all).",
)
@demo_option
def project(names: tuple[str, ...]) -> None:
    """Run the projection runners only (any number of replicas: one is active per
    projection, a standby takes over within seconds). SIGTERM or Ctrl-C stops it. A database
    that does not answer yet is waited for (DIPLOFEED_DB_WAIT_S, 30 s).

    Example: DATABASE_URL=postgresql://app@db/diplofeed diplofeed project
    """
    settings = settings_or_exit()
    wait_or_exit(settings)

    async def work() -> int:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 (inside asyncio.run)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        click.echo(f"running projections: {', '.join(names or PROJECTIONS)}", err=True)
        try:
            await run_projections(settings, names or None)
        except asyncio.CancelledError:
            click.echo("projections stopped", err=True)
        return 0

    _run(work())


@main.command()
@click.argument("name", type=click.Choice(sorted(PROJECTIONS)))
@click.option("--batch-size", default=5_000, show_default=True, help="Events per batch.")
@demo_option
def rebuild(name: str, batch_size: int) -> None:
    """Rebuild projection NAME without downtime: build the next version beside the live one,
    switch to it once caught up, drop the old one. Safe to interrupt: running it again
    resumes where it stopped.

    Example: diplofeed rebuild roster
    """
    settings = settings_or_exit()

    async def work() -> int:
        options = settings.connection_options()
        async with open_store(settings) as store:
            # What the next version still has to apply (a rebuild interrupted before resumes).
            upcoming = (await live_version(store.pool, name) or 1) + 1
            total = (await projection_lag(store.pool, PROJECTIONS[name](upcoming))).events
            with long_lived_collector(), Progress(f"rebuilding {name}", total) as bar:

                def progress(applied: int) -> None:
                    bar.advance(max(applied - bar.done, 0))

                report = await run_rebuild(
                    store,
                    PROJECTIONS[name],
                    lambda: connect(options),
                    name,
                    batch_size=batch_size,
                    # Past an API's pointer cache (1 s) and its longest wait to read a write:
                    # a request may have chosen the old version just before the switch.
                    retire_after=settings.read_your_writes_max_s + 5.0,
                    on_progress=progress,
                )
                progress(report.events)
        click.echo(
            f"{name}: version {report.old_version} -> {report.new_version} is live "
            f"({report.events:,} events in {report.seconds:.1f} s)"
        )
        return 0

    _run(work())


@main.group()
def keys() -> None:
    """Create, list and revoke API keys (run against the application's database).

    Example: diplofeed keys create "newsroom ingest" --scope write
    """


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
@demo_option
def keys_create(name: str, scopes: tuple[str, ...]) -> None:
    """Create a key and print its token (shown this once; only its hash is stored).

    Example: diplofeed keys create "newsroom ingest" --scope write
    """

    settings = settings_or_exit()

    async def work() -> int:
        conn = await asyncpg.connect(settings.database_url)
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
@demo_option
def keys_list() -> None:
    """List keys (never their secrets).

    Example: diplofeed keys list
    """

    settings = settings_or_exit()

    async def work() -> int:
        conn = await asyncpg.connect(settings.database_url)
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
@demo_option
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id; API processes stop accepting it within seconds.

    Example: diplofeed keys revoke 3f9a0c1b2d4e
    """

    settings = settings_or_exit()

    async def work() -> int:
        conn = await asyncpg.connect(settings.database_url)
        try:
            key = await revoke_key(conn, key_id)
        finally:
            await conn.close()
        click.echo(f"revoked {key.id} ({key.name})")
        return 0

    _run(work())


def cli() -> None:
    """The ``diplofeed`` entry point: ``main``, with usage errors as one line too."""
    try:
        main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "diplofeed"
        click.echo(f"error: {exc.format_message()} (see `{command} --help`)", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
