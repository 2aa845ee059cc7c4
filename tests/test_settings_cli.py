"""Settings from the environment, and the ``diplofeed`` command run as a real process."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from events import ConnectionOptions
from events.migrate import available_migrations, is_current
from service.settings import Settings, SettingsError
from tests.database import fresh_database_name, scratch_database, with_database
from tests.served import free_port, until_answers

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"


# -- settings ----------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.statement_timeout_ms == 30_000
    assert settings.migration_dsn() == settings.database_url


def test_http_settings_from_an_environment() -> None:
    settings = Settings.from_env(
        {
            "DIPLOFEED_PUBLIC_READS": "true",
            "DIPLOFEED_CORS_ORIGINS": "https://a.example, https://b.example",
            "DIPLOFEED_MAX_BODY_BYTES": "4096",
            "DIPLOFEED_RATE_LIMIT_PER_MINUTE": "0",
            "DIPLOFEED_RUN_PROJECTIONS": "false",
            "DIPLOFEED_LOG_FORMAT": "console",
        }
    )
    assert settings.public_reads is True
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert (settings.max_body_bytes, settings.rate_limit_per_minute) == (4096, 0)
    assert settings.run_projections is False
    assert settings.log_format == "console"
    for bad in ({"DIPLOFEED_LOG_FORMAT": "xml"}, {"DIPLOFEED_MAX_BODY_BYTES": "1"}):
        with pytest.raises(SettingsError):
            Settings.from_env(bad)


def test_settings_from_an_environment() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://app@db/feed",
            "MIGRATION_DATABASE_URL": "postgresql://owner@db/feed",
            "DIPLOFEED_DB_ROLE": "diplofeed_app",
            "DIPLOFEED_STATEMENT_TIMEOUT_MS": "1500",
            "DIPLOFEED_IDLE_IN_TRANSACTION_TIMEOUT_MS": "2500",
            "DIPLOFEED_POOL_MIN_SIZE": "3",
            "DIPLOFEED_POOL_MAX_SIZE": "7",
            "DIPLOFEED_UNKNOWN_THING": "ignored",
            "STATEMENT_TIMEOUT_MS": "1",  # not prefixed: not ours
        }
    )
    assert settings == Settings(
        database_url="postgresql://app@db/feed",
        migration_database_url="postgresql://owner@db/feed",
        db_role="diplofeed_app",
        database_url_given=True,
        statement_timeout_ms=1500,
        idle_in_transaction_timeout_ms=2500,
        pool_min_size=3,
        pool_max_size=7,
    )
    assert settings.migration_dsn() == "postgresql://owner@db/feed"
    assert settings.connection_options() == ConnectionOptions(
        dsn="postgresql://app@db/feed",
        role="diplofeed_app",
        statement_timeout_ms=1500,
        idle_in_transaction_timeout_ms=2500,
        min_pool_size=3,
        max_pool_size=7,
    )


def test_empty_values_mean_the_default() -> None:
    settings = Settings.from_env({"DIPLOFEED_STATEMENT_TIMEOUT_MS": "", "DATABASE_URL": ""})
    assert settings == Settings()


def test_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://from-env@db/x")
    monkeypatch.setenv("DIPLOFEED_POOL_MAX_SIZE", "4")
    settings = Settings.from_env()
    assert (settings.database_url, settings.pool_max_size) == ("postgresql://from-env@db/x", 4)


@pytest.mark.parametrize("value", ["abc", "1.5", "12ms"])
def test_an_invalid_integer_is_a_settings_error(value: str) -> None:
    with pytest.raises(SettingsError, match="statement_timeout_ms"):
        Settings.from_env({"DIPLOFEED_STATEMENT_TIMEOUT_MS": value})


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("DIPLOFEED_STATEMENT_TIMEOUT_MS", "0", "statement_timeout_ms"),
        ("DIPLOFEED_IDLE_IN_TRANSACTION_TIMEOUT_MS", "-5", "idle_in_transaction_timeout_ms"),
        ("DIPLOFEED_POOL_MAX_SIZE", "0", "pool_max_size"),
        ("DIPLOFEED_POOL_MIN_SIZE", "-1", "pool_min_size"),
    ],
)
def test_out_of_range_values_are_settings_errors(key: str, value: str, field: str) -> None:
    with pytest.raises(SettingsError, match=field):
        Settings.from_env({key: value})


def test_a_pool_minimum_above_its_maximum_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="pool_min_size"):
        Settings.from_env({"DIPLOFEED_POOL_MIN_SIZE": "8", "DIPLOFEED_POOL_MAX_SIZE": "4"})


# -- the command line --------------------------------------------------------------------------


def _diplofeed() -> str:
    found = shutil.which("diplofeed", path=str(Path(sys.executable).parent)) or shutil.which(
        "diplofeed"
    )
    assert found is not None, "the diplofeed command is not installed next to this Python"
    return found


async def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DIPLOFEED_") and not k.endswith("DATABASE_URL")
    }
    process = await asyncio.create_subprocess_exec(
        _diplofeed(),
        *args,
        env={**base, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_help() -> None:
    status, out, err = await _cli("--help")
    assert status == 0, err
    assert "Usage:" in out
    assert "migrate" in out
    assert "verify" in out
    status, out, err = await _cli("migrate", "--help")
    assert status == 0, err
    assert "MIGRATION_DATABASE_URL" in out


async def test_migrate_applies_then_finds_the_schema_current(empty_dsn: str) -> None:
    status, out, err = await _cli("migrate", env={"DATABASE_URL": empty_dsn})
    assert status == 0, err
    assert out.splitlines() == [f"applied {m.version:04d}_{m.name}" for m in available_migrations()]

    status, out, err = await _cli("migrate", env={"DATABASE_URL": empty_dsn})
    assert status == 0, err
    assert out.splitlines() == ["schema is current; nothing to apply"]

    conn = await asyncpg.connect(empty_dsn)
    try:
        assert await is_current(conn)
    finally:
        await conn.close()


async def test_migrate_prefers_the_migration_url(empty_dsn: str) -> None:
    status, out, err = await _cli(
        "migrate", env={"DATABASE_URL": UNREACHABLE, "MIGRATION_DATABASE_URL": empty_dsn}
    )
    assert status == 0, err
    assert out.startswith("applied 0001_events")


async def test_migrate_against_an_unreachable_database_fails_in_one_line() -> None:
    status, out, err = await _cli("migrate", env={"DATABASE_URL": UNREACHABLE})
    assert status != 0
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: database:")


async def test_migrate_against_a_missing_database_fails_in_one_line(server_url: str) -> None:
    missing = with_database(server_url, fresh_database_name())
    status, _out, err = await _cli("migrate", env={"DATABASE_URL": missing})
    assert status != 0
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert "does not exist" in err


async def test_an_invalid_setting_fails_in_one_line(empty_dsn: str) -> None:
    status, out, err = await _cli(
        "migrate", env={"DATABASE_URL": empty_dsn, "DIPLOFEED_POOL_MIN_SIZE": "many"}
    )
    assert status != 0
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: invalid setting")
    assert "pool_min_size" in lines[0]
    # Nothing was applied.
    conn = await asyncpg.connect(empty_dsn)
    try:
        assert not await is_current(conn)
    finally:
        await conn.close()


async def test_verify_against_an_unreachable_database_fails_in_one_line() -> None:
    status, out, err = await _cli("verify", env={"DATABASE_URL": UNREACHABLE})
    assert status != 0
    assert out == ""
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


async def test_serve_runs_the_api_until_interrupted(server_url: str) -> None:
    port = free_port()
    async with scratch_database(server_url, migrated=True) as dsn:
        base = {k: v for k, v in os.environ.items() if not k.startswith("DIPLOFEED_")}
        process = await asyncio.create_subprocess_exec(
            _diplofeed(), "serve", "--port", str(port),
            env={**base, "DATABASE_URL": dsn, "DIPLOFEED_LOG_LEVEL": "warning"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                health = await until_answers(client, "/health", within=30)
                assert health.json() == {"status": "ok"}
                assert (await client.get("/ready")).status_code == 200
            # uvicorn's "auto" picked uvloop and httptools (uvicorn[standard]): their compiled
            # modules are mapped into the serving process.
            maps = await asyncio.to_thread(Path(f"/proc/{process.pid}/maps").read_text)
        finally:
            process.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert f"http://127.0.0.1:{port}/schema" in out.decode()
    assert re.search(r"/uvloop/loop\.cpython[^/]*\.so", maps), "not on uvloop"
    assert re.search(r"/httptools/parser/parser\.cpython[^/]*\.so", maps), "not on httptools"
