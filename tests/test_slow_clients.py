"""Slow clients against ``diplofeed serve`` as deployed: a body sent a byte at a time is cut
off after ``DIPLOFEED_BODY_TIMEOUT_S`` (408), and a response sent before the body has all
arrived closes the connection, so no client holds a socket for as long as it likes.

Bounds, not timings: with a 2 s limit, each connection must end within 30 s, where the server
used to read on for the whole declared body (1,000 s at a byte a second)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import TYPE_CHECKING

import asyncpg
import httpx
import pytest

from service.keys import create_key
from tests.database import scratch_database
from tests.served import diplofeed, free_port, until_answers

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

_BODY_BYTES = 1_000


@contextlib.asynccontextmanager
async def _served(server_url: str, log: Path) -> AsyncIterator[tuple[int, str]]:
    """``diplofeed serve`` with a 2 s body limit: its port and a write key."""
    port = free_port()
    async with scratch_database(server_url, migrated=True) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            token = (await create_key(conn, "slow client", ("write",))).token
        finally:
            await conn.close()
        base = {k: v for k, v in os.environ.items() if not k.startswith("DIPLOFEED_")}
        env = {
            **base,
            "DATABASE_URL": dsn,
            "DIPLOFEED_LOG_LEVEL": "warning",
            "DIPLOFEED_RUN_PROJECTIONS": "false",
            "DIPLOFEED_BODY_TIMEOUT_S": "2",
        }
        with log.open("wb") as errors:
            process = await asyncio.create_subprocess_exec(
                diplofeed(), "serve", "--port", str(port),
                env=env, stdout=asyncio.subprocess.DEVNULL, stderr=errors,
            )  # fmt: skip
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                    await until_answers(client, "/health", within=60)
                yield port, token
            finally:
                process.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def _trickle(port: int, head: str) -> bytes:
    """Send ``head``, then a byte of body a second, until the server closes the connection
    (at most 30 s); everything it answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode())
    answer = b""
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), 1.0)
                except TimeoutError:
                    with contextlib.suppress(ConnectionError):
                        writer.write(b" ")
                        await writer.drain()
                    continue
                if not chunk:
                    return answer
                answer += chunk
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def _request(method: str, path: str, *headers: str) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", *headers]
    lines += ["Content-Type: application/json", f"Content-Length: {_BODY_BYTES}"]
    return "\r\n".join(lines) + "\r\n\r\n"


@pytest.mark.parametrize(
    ("route", "authorized", "status"),
    [
        ("POST /meetings", True, b"408"),  # read, too slowly
        ("POST /meetings", False, b"401"),  # refused before the body is read
        ("GET /health", False, b"200"),  # answered without reading the body
        ("POST /nowhere", True, b"404"),  # no route: nothing reads the body
    ],
)
async def test_a_body_sent_a_byte_a_second_is_cut_off(
    server_url: str, tmp_path: Path, route: str, authorized: bool, status: bytes
) -> None:
    async with _served(server_url, tmp_path / "serve.log") as (port, token):
        method, path = route.split()
        headers = [f"Authorization: Bearer {token}"] if authorized else []
        try:
            answer = await _trickle(port, _request(method, path, *headers))
        except TimeoutError:
            pytest.fail(f"{route}: the connection was still open after 30 s")
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 " + status), answer[:300]
    assert b"connection: close" in answer.lower(), answer[:300]
    if status == b"408":
        assert b"/problems/request-timeout" in answer
