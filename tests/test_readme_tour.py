"""The README's curl tour, run as a newcomer would: against ``diplofeed serve --demo`` (here
over a scratch database of the test server), with ``B`` and ``KEY`` set to what the demo
printed, every command failing on an HTTP error (``curl -f``). So the guide cannot rot.

The README marks the tour's blocks: ``<!-- tour: settings -->`` before the variables to set,
``<!-- tour -->`` before each block to run, ``<!-- tour: background -->`` before the one left
running in another terminal (the live stream, which must show the write made meanwhile)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Final

import httpx

from tests.database import scratch_database
from tests.served import cli_env, diplofeed, free_port, until_answers

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"<!-- tour(?:: (?P<kind>\w+))? -->\n```bash\n(?P<code>.*?)\n```", re.DOTALL)
# What the settings block says and what a newcomer replaces it with.
_BASE_LINE: Final = "B=http://127.0.0.1:8000"
_KEY_LINE: Final = re.compile(r"^KEY=dfk_\.\.\..*$", re.MULTILINE)
# Every curl of the tour fails on an HTTP error and shows why; none hangs.
_STRICT_CURL = 'curl() { command curl --fail-with-body --show-error --max-time 60 "$@"; }\n'
_WRITTEN = "call_bogdanov_abu_marzook_2024_03"


def _tour() -> list[tuple[str, str]]:
    return [(m["kind"] or "run", m["code"]) for m in _BLOCK.finditer(README.read_text())]


def test_the_readme_marks_a_tour_with_settings_a_background_block_and_a_write() -> None:
    blocks = _tour()
    kinds = [kind for kind, _ in blocks]
    assert kinds[0] == "settings" and kinds.count("settings") == 1, kinds
    assert kinds.count("background") == 1 and kinds.count("run") >= 3, kinds
    settings = blocks[0][1]
    assert _BASE_LINE in settings.splitlines() and _KEY_LINE.search(settings), settings
    assert any(_WRITTEN in code for kind, code in blocks if kind == "run")


@contextlib.asynccontextmanager
async def _demo(dsn: str, data: Path) -> AsyncIterator[tuple[str, str]]:
    """``diplofeed serve --demo`` over ``dsn``: its base URL and the key it printed, once the
    views the tour reads have caught up with the seed article."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        diplofeed(), "serve", "--demo", "--port", str(port),
        env=cli_env(DATABASE_URL=dsn, DIPLOFEED_DATA_DIR=str(data)),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        banner: list[str] = []
        async with asyncio.timeout(120):
            while not banner or not banner[-1].startswith("Ctrl-C"):
                line = await process.stdout.readline()
                assert line, f"the demo ended before its banner: {banner}"
                banner.append(line.decode().strip())
        base = banner[0].split()[-1]
        key = next(line for line in banner if "Bearer" in line).split()[-1]
        async with httpx.AsyncClient(base_url=base) as client:
            await until_answers(client, "/ready")
            await _caught_up(client)
        yield base, key
    finally:
        process.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()[-2000:]


async def _caught_up(client: httpx.AsyncClient) -> None:
    """Wait until the roster and the contact history show the seed article."""
    async with asyncio.timeout(90):
        while True:
            roster = await client.get("/meetings/moscow_2024")
            contacts = await client.get("/actors/hamas/contacts")
            if (
                roster.status_code == contacts.status_code == 200
                and len(roster.json()["factions"]) == 5
                and contacts.json()
            ):
                return
            await asyncio.sleep(0.25)


async def _bash(script: str) -> asyncio.subprocess.Process:
    # A session of its own, so that stopping it stops its curl too.
    return await asyncio.create_subprocess_exec(
        "bash", "-c", script, start_new_session=True,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_the_readme_tour_runs_against_the_demo(server_url: str, tmp_path: Path) -> None:
    blocks = _tour()
    async with scratch_database(server_url, migrated=False) as dsn, _demo(dsn, tmp_path) as demo:
        base, key = demo
        settings = blocks[0][1].replace(_BASE_LINE, f"B={base}")
        settings = _KEY_LINE.sub(f"KEY={key}", settings)
        prelude = f"set -euo pipefail\n{_STRICT_CURL}{settings}\n"
        stream: asyncio.subprocess.Process | None = None
        try:
            for kind, code in blocks[1:]:
                if kind == "background":
                    stream = await _bash(prelude + code)
                    continue
                process = await _bash(prelude + code)
                out, err = await asyncio.wait_for(process.communicate(), 120)
                assert process.returncode == 0, f"{code}\n--- out\n{out.decode()}\n{err.decode()}"
                assert out.strip(), code
            assert stream is not None and stream.stdout is not None
            # The other terminal's stream showed the write.
            seen = b""
            async with asyncio.timeout(30):
                while _WRITTEN.encode() not in seen:
                    chunk = await stream.stdout.read(65_536)
                    assert chunk, seen.decode()[-2000:]
                    seen += chunk
        finally:
            if stream is not None and stream.returncode is None:
                os.killpg(stream.pid, signal.SIGTERM)
                await stream.communicate()


def test_every_body_the_tour_sends_is_json() -> None:
    bodies = [body for _, code in _tour() for body in re.findall(r"-d '([^']*)'", code)]
    assert bodies
    for body in bodies:
        json.loads(body)
