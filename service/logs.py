"""Structured logs: JSON lines in production, console lines in development, every line of a
request carrying its request id.

structlog does the formatting and the context (``contextvars``); the middleware below gives
each request an id (the client's ``X-Request-ID`` when it sends a sane one), binds it for the
request's duration, echoes it in the response and writes one access line. Litestar 3 drops its
structlog plugin, so this is configured here rather than through it.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import TYPE_CHECKING, Any, Final

import structlog
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ("RequestIdMiddleware", "configure_logging")

_SANE_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access = structlog.get_logger("diplofeed.access")
_access_std = logging.getLogger("diplofeed.access")


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Route stdlib and structlog output through one renderer."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        # filter_by_level first: without it every call below the level (the access line per
        # request at "warning") still ran every processor before the stdlib logger dropped it.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())


def _request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"x-request-id":
            sent = value.decode("latin-1")
            if _SANE_ID.match(sent):
                return sent
            break
    # As long as a uuid4's hex, made without building a UUID (a few us a request).
    return os.urandom(16).hex()


class RequestIdMiddleware:
    """Pure ASGI middleware (it must wrap streaming responses too): request id and access log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope["headers"])
        scope.setdefault("state", {})["request_id"] = request_id
        echoed = (b"x-request-id", request_id.encode())
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*(message.get("headers") or ()), echoed]
            await send(message)

        # bind/reset rather than bound_contextvars(), which snapshots every bound variable first.
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except HTTPException as exc:
            # Raised by a middleware (a key that does not verify): answered by Litestar's outer
            # exception handler, past this send.
            status = exc.status_code
            raise
        finally:
            # The level checked here: below it, structlog would still build the event and run
            # the level filter for a line that is dropped (at "warning", every request).
            if _access_std.isEnabledFor(logging.INFO):
                access.info(
                    "request",
                    method=scope.get("method"),
                    path=scope.get("path"),
                    status=status,
                    ms=round((time.perf_counter() - started) * 1000, 2),
                )
            structlog.contextvars.reset_contextvars(**tokens)
