"""Helpers for tests that run ``diplofeed serve`` as a real process."""

from __future__ import annotations

import asyncio
import socket

import httpx

__all__ = ("free_port", "until_answers")


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
