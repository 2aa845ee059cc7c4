"""``diplofeed serve`` starting up, run as a real process: a database that never answers is one
``error:`` line with a hint, one that comes up during the wait is waited for, and a taken port
is reported before anything else happens."""

from __future__ import annotations

import asyncio
import signal
import socket

import asyncpg
import httpx
import pytest

from service.settings import Settings, SettingsError
from tests.database import scratch_database
from tests.own_postgres import own_postgres
from tests.served import cli_env, diplofeed, free_port, until_answers

CLOSED = "postgresql://postgres@127.0.0.1:1/x"


async def _serve(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        diplofeed(), "serve", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


def test_the_wait_is_a_setting() -> None:
    assert Settings.from_env({}).db_wait_s == 30.0
    assert Settings.from_env({"DIPLOFEED_DB_WAIT_S": "2.5"}).db_wait_s == 2.5
    with pytest.raises(SettingsError, match="db_wait_s"):
        Settings.from_env({"DIPLOFEED_DB_WAIT_S": "-1"})


@pytest.mark.parametrize("demo", [False, True], ids=["serve", "serve --demo"])
async def test_a_database_that_never_answers_is_one_error_line_with_a_hint(demo: bool) -> None:
    process = await _serve(
        "--port", str(free_port()), *(["--demo"] if demo else []),
        env=cli_env(DATABASE_URL=CLOSED, DIPLOFEED_DB_WAIT_S="1"),
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2, err.decode()
    assert out == b""  # no banner for a server that never ran
    text = err.decode()
    assert "Traceback" not in text and '"event"' not in text, text
    lines = text.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == [lines[-1]], text
    assert "127.0.0.1:1/x" in errors[0] and "1 s" in errors[0], errors
    assert "DATABASE_URL" in errors[0] and "--demo" in errors[0], errors
    # It said it was waiting before it gave up.
    assert any("retrying" in line for line in lines[:-1]), text


async def test_a_refusal_waiting_cannot_change_fails_at_once(server_url: str) -> None:
    missing = server_url.rsplit("/", 1)[0] + "/diplofeed_no_such_database"
    process = await _serve(
        "--port", str(free_port()), env=cli_env(DATABASE_URL=missing, DIPLOFEED_DB_WAIT_S="600")
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert err.decode().splitlines() == [
        line for line in err.decode().splitlines() if line.startswith("error: database:")
    ]
    assert "does not exist" in err.decode()


async def test_serve_waits_for_a_database_that_comes_up() -> None:
    port = free_port()
    async with own_postgres(migrated=True) as pg:
        await asyncio.to_thread(pg.stop)
        process = await _serve(
            "--port", str(port), env=cli_env(DATABASE_URL=pg.url, DIPLOFEED_DB_WAIT_S="120")
        )
        assert process.stderr is not None
        try:
            # Started only once serve has found the database down and said it waits.
            waiting = await asyncio.wait_for(process.stderr.readline(), 60)
            assert b"does not answer yet" in waiting, waiting
            assert process.returncode is None
            await asyncio.to_thread(pg.start)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                health = await until_answers(client, "/health", within=60)
            assert health.json() == {"status": "ok"}
        finally:
            process.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert f"http://127.0.0.1:{port}/schema" in out.decode()


async def test_a_taken_port_is_reported_before_the_demo_does_anything(server_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with scratch_database(server_url, migrated=False) as dsn:
            process = await _serve("--demo", "--port", str(port), env=cli_env(DATABASE_URL=dsn))
            out, err = await asyncio.wait_for(process.communicate(), 60)
            conn = await asyncpg.connect(dsn)
            try:
                prepared = await conn.fetchval("SELECT to_regclass('events') IS NOT NULL")
            finally:
                await conn.close()
    assert process.returncode == 1
    assert out == b""  # no banner, no key
    assert err.decode().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: address already in use; "
        "choose another with --port or DIPLOFEED_PORT"
    ]
    assert not prepared  # the demo neither migrated nor seeded the database
