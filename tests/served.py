"""Helpers for tests that run ``diplofeed serve`` as a real process."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from pathlib import Path

import httpx

__all__ = ("cli_env", "diplofeed", "free_port", "run_diplofeed", "until_answers")


def diplofeed() -> str:
    """The ``diplofeed`` command installed beside this Python."""
    found = shutil.which("diplofeed", path=str(Path(sys.executable).parent))
    assert found is not None, "the diplofeed command is not installed next to this Python"
    return found


def cli_env(**extra: str) -> dict[str, str]:
    """This process's environment without any Diplofeed setting, plus ``extra``."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DIPLOFEED_") and not k.endswith("DATABASE_URL")
    }
    return {**base, "DIPLOFEED_LOG_LEVEL": "warning", **extra}


async def run_diplofeed(
    *args: str, env: dict[str, str], within: float = 120
) -> tuple[int, str, str]:
    """Run ``diplofeed ARGS`` to its end (killed after ``within`` seconds): its exit status,
    standard output and standard error."""
    process = await asyncio.create_subprocess_exec(
        diplofeed(), *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    # Shielded: what a process wrote before it was killed is kept.
    communicating = asyncio.ensure_future(process.communicate())
    try:
        out, err = await asyncio.wait_for(asyncio.shield(communicating), within)
    except TimeoutError:
        process.kill()
        out, err = await communicating
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def until_answers(
    client: httpx.AsyncClient, path: str, *, status: int = 200, within: float = 90
) -> httpx.Response:
    """GET ``path`` until the server is up and answers it with ``status``."""
    async with asyncio.timeout(within):
        while True:
            try:
                response = await client.get(path)
                if response.status_code == status:
                    return response
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.25)
