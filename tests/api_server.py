"""The real API for tests: ``create_app`` served by uvicorn on a free loopback port, on the
test run's own event loop, with its own migrated database and keys of each scope.

A real server rather than Litestar's test client: the live stream never ends, a dropped
connection must really drop, and the 2.x test client runs the app on another loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import msgspec
import uvicorn

from events import APP_ROLE
from events.domain.commands import RecordInteraction
from service.app import create_app
from service.keys import create_key
from service.routes.commands import COMMAND_ROUTES, CommandRoute
from service.settings import Settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Litestar

    from events.domain.commands import Command

__all__ = ("ApiServer", "request_for", "running_api")


class ApiServer:
    """A running API and what tests need to talk to it."""

    def __init__(
        self, url: str, dsn: str, settings: Settings, tokens: dict[str, str], app: Litestar
    ) -> None:
        self.app = app
        """The application (its ``state.runtime`` once started), for drills that inspect it."""
        self.url = url
        self.dsn = dsn
        self.settings = settings
        self.tokens = tokens

    def client(self, scope: str | None = "admin", **kwargs: Any) -> httpx.AsyncClient:
        """An HTTP client sending the key of ``scope`` (``None``: no key)."""
        headers = dict(kwargs.pop("headers", {}))
        if scope is not None:
            headers["Authorization"] = f"Bearer {self.tokens[scope]}"
        return httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=kwargs.pop("timeout", 30.0), **kwargs
        )


def test_settings(dsn: str, **overrides: Any) -> Settings:
    """Settings for an API under test: fast heartbeats and bounded waits."""
    values: dict[str, Any] = {
        "database_url": dsn,
        "db_role": APP_ROLE,
        "rate_limit_per_minute": 0,
        "sse_heartbeat_s": 0.5,
        "long_poll_max_s": 10.0,
        "read_your_writes_max_s": 10.0,
        "log_level": "warning",
        "pool_max_size": 20,
    }
    values.update(overrides)
    return msgspec.convert(values, Settings)


@contextlib.asynccontextmanager
async def running_api(
    dsn: str, *, tokens: dict[str, str] | None = None, **overrides: Any
) -> AsyncIterator[ApiServer]:
    """Serve ``create_app`` over ``dsn`` until the block ends. ``tokens``: the keys to send, by
    scope (default: made now in ``dsn``'s database; a standby's come from its primary)."""
    settings = test_settings(dsn, **overrides)
    if tokens is None:
        tokens = {}
        conn = await asyncpg.connect(dsn)
        try:
            for scope in ("read", "write", "admin"):
                created = await create_key(conn, f"test {scope}", (scope,))
                tokens[scope] = created.token
        finally:
            await conn.close()
    app = create_app(settings)
    logging.getLogger().setLevel(logging.WARNING)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    # The test run owns the process's signals.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.get_running_loop().create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield ApiServer(f"http://127.0.0.1:{port}", dsn, settings, tokens, app)
    finally:
        server.should_exit = True
        # Open live streams would hold a graceful shutdown: end them after a moment.
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(5):
                await task
        if not task.done():
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _route_for(command: Command) -> CommandRoute:
    for route in COMMAND_ROUTES:
        if type(command) is not route.command:
            continue
        fixed = dict(route.fixed)
        if all(getattr(command, k) == v for k, v in fixed.items()):
            if isinstance(command, RecordInteraction) and not fixed and command.kind == "apology":
                continue
            return route
    raise LookupError(f"no route records {type(command).__name__}")


def request_for(command: Command) -> tuple[str, dict[str, Any]]:
    """The path and JSON body that record ``command`` over HTTP."""
    route = _route_for(command)
    fields: dict[str, Any] = msgspec.to_builtins(command)
    fields.pop("type", None)
    path = route.path
    for name in route.path_fields:
        value = fields.pop(name)
        path = path.replace(f"{{{name}:str}}", str(value))
    for name, _ in route.fixed:
        fields.pop(name, None)
    return path, fields
