"""The command line reaches the demo's data: ``--demo`` on every data command uses the embedded
PostgreSQL that ``diplofeed serve --demo`` runs (joined while the demo runs, started and stopped
again when it does not), and the demo's banner prints its ``DATABASE_URL``. Run as real
processes on a real embedded server (pgserver)."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.served import cli_env, diplofeed, free_port, until_answers

if TYPE_CHECKING:
    from pathlib import Path

DATA_COMMANDS = (
    "migrate", "verify", "project", "rebuild", "keys create", "keys list", "keys revoke",
    "load", "export", "tail", "quarantine list", "quarantine release",
)  # fmt: skip


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        diplofeed(), *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("command", DATA_COMMANDS)
async def test_every_data_command_takes_demo(command: str) -> None:
    status, out, err = await _cli(*command.split(), "--help", env=cli_env())
    assert status == 0, err
    assert "--demo" in out, out


async def test_demo_without_demo_data_says_so(tmp_path: Path) -> None:
    env = cli_env(DIPLOFEED_DATA_DIR=str(tmp_path / "none"))
    status, out, err = await _cli("keys", "list", "--demo", env=env)
    assert status == 1
    assert out == ""
    assert err.splitlines() == [
        f"error: no demo data in {tmp_path / 'none'}: start the demo once with "
        "`diplofeed serve --demo` (or set DIPLOFEED_DATA_DIR to its folder)"
    ]
    assert not (tmp_path / "none").exists()  # nothing was made there


async def _banner(stdout: asyncio.StreamReader) -> list[str]:
    lines: list[str] = []
    async with asyncio.timeout(120):
        while not lines or not lines[-1].startswith("Ctrl-C"):
            line = await stdout.readline()
            assert line, f"the demo ended before its banner: {lines}"
            lines.append(line.decode().rstrip("\n"))
    return lines


async def test_data_commands_reach_the_demo_running_or_not(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    env = cli_env(DIPLOFEED_DATA_DIR=str(data))
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        diplofeed(), "serve", "--demo", "--port", str(port), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        banner = await _banner(process.stdout)
        token = next(line for line in banner if "Bearer" in line).split()[-1]
        url_line = next(line for line in banner if "DATABASE_URL=" in line)
        database_url = url_line.split("DATABASE_URL=", 1)[1].split()[0]
        assert str(data / "pgdata") in database_url  # the embedded server, not 127.0.0.1:5432
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await until_answers(client, "/ready")

        # Beside the running demo: its keys, its log, its exports.
        demo_key_id = token.split("_")[1]
        status, out, err = await _cli("keys", "create", "newsroom", "--demo", env=env)
        assert status == 0, err
        status, out, err = await _cli("keys", "list", "--demo", env=env)
        assert status == 0, err
        listed = {line.split()[0]: line.split()[-1] for line in out.splitlines()}
        assert listed[demo_key_id] == "demo"
        assert "newsroom" in listed.values()
        status, out, err = await _cli("verify", "--demo", env=env)
        assert status == 0, err
        assert "checked 73 events" in out and "all chains intact" in out
        status, out, err = await _cli("export", "--demo", "--format", "cloudevents", env=env)
        assert status == 0, err
        assert len([json.loads(line) for line in out.splitlines()]) == 73
        # The banner's DATABASE_URL reaches the same data without --demo.
        status, out, err = await _cli("keys", "list", env={**env, "DATABASE_URL": database_url})
        assert status == 0, err
        assert demo_key_id in out and "newsroom" in out
    finally:
        process.send_signal(signal.SIGINT)
        _, err_bytes = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err_bytes.decode()
    # The commands let go of the server without stopping it under the demo; the demo's stop
    # stopped it.
    assert not (data / "pgdata" / "postmaster.pid").exists()

    # With the demo stopped, --demo starts the server for the command and stops it after.
    status, out, err = await _cli("verify", "--demo", env=env)
    assert status == 0, err
    assert "all chains intact" in out
    status, out, err = await _cli("keys", "list", "--demo", env=env)
    assert status == 0, err
    assert demo_key_id in out
    assert not (data / "pgdata" / "postmaster.pid").exists()
