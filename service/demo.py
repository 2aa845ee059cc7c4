"""``diplofeed serve --demo``: a running Diplofeed in one command, on a fresh machine.

Without ``DATABASE_URL`` it starts an embedded PostgreSQL (``pgserver``, whose wheel carries
the server binaries) in the data folder, so a newcomer needs nothing but Python. Either way it
migrates, records the seed article (idempotently: a second start records nothing), makes sure
a demo API key exists, and then serves the API with the projections in the same process. The
data folder survives restarts; stopping the API stops the embedded server, keeping its data.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec

from events.connect import APP_ROLE
from events.domain.handler import CommandHandler
from events.domain.seed import SeedReport, load_seed
from events.migrate import migrate
from service.keys import KeyRing, create_key
from service.runtime import open_store
from service.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = (
    "DemoSetup",
    "embedded_postgres",
    "embedded_settings",
    "has_embedded_data",
    "keep_demo_key",
    "prepare_demo",
    "read_demo_key",
)

DEMO_DATABASE: Final = "diplofeed"
KEY_FILE: Final = "demo-key"


class DemoSetup(msgspec.Struct, frozen=True, kw_only=True):
    """What the demo prepared."""

    settings: Settings
    seed: SeedReport
    token: str
    embedded: bool


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """An embedded PostgreSQL keeping its data in ``data_dir/pgdata``; its admin URL. Started
    if it is not running, else joined (``diplofeed keys list --demo`` beside a running demo);
    stopped when the last process using it lets go."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver  # noqa: PLC0415 (only the demo needs the embedded server)

    folder = data_dir / "pgdata"
    folder.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(folder), cleanup_mode="stop")  # type: ignore[attr-defined]
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def embedded_settings(settings: Settings, admin_url: str) -> Settings:
    """``settings`` pointed at the demo's database on the embedded server whose admin URL is
    ``admin_url``, connecting as the demo does."""
    dsn = _with_database(admin_url, DEMO_DATABASE)
    return msgspec.structs.replace(
        settings, database_url=dsn, migration_database_url=dsn, db_role=APP_ROLE
    )


def has_embedded_data(settings: Settings) -> bool:
    """Whether the data folder holds an embedded server's data (the demo ran there)."""
    return (Path(settings.data_dir) / "pgdata" / "PG_VERSION").exists()


async def _ensure_database(admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DEMO_DATABASE)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{DEMO_DATABASE}"')
    finally:
        await conn.close()


def read_demo_key(settings: Settings) -> str | None:
    """The demo key kept in the data folder, if any."""
    key_file = Path(settings.data_dir) / KEY_FILE
    return key_file.read_text().strip() if key_file.exists() else None


def keep_demo_key(settings: Settings, token: str) -> None:
    """Keep the demo key in the data folder (readable by its owner only)."""
    key_file = Path(settings.data_dir) / KEY_FILE
    key_file.write_text(token + "\n")
    key_file.chmod(0o600)


async def prepare_demo(
    settings: Settings, *, admin_url: str | None, known_token: str | None
) -> DemoSetup:
    """Migrate, record the seed and make sure a demo key works; ``admin_url`` is the embedded
    server's (``None``: use the configured database as it is), ``known_token`` the key kept
    from an earlier start."""
    if admin_url is not None:
        await _ensure_database(admin_url)
        settings = embedded_settings(settings, admin_url)
    owner = await asyncpg.connect(settings.migration_dsn())
    try:
        await migrate(owner)
    finally:
        await owner.close()
    async with open_store(settings) as store:
        seed = await load_seed(CommandHandler(store))
        token = known_token
        if token is None or await KeyRing(store.pool, ttl=0).verify(token) is None:
            token = (await create_key(store.pool, "demo", ("admin",))).token
    return DemoSetup(settings=settings, seed=seed, token=token, embedded=admin_url is not None)
