"""A bound on how long a client may take to send its request body.

uvicorn reads a body as slowly as the client sends it: a byte every few seconds held a socket
(and a request's worth of memory) for as long as the client liked, and a few hundred such
clients held as many sockets. ``BodyTimeoutMiddleware`` gives each request ``timeout`` seconds
from its start to deliver its whole body; past that the request ends with a 408 problem. And
whenever a response starts before the body has all been read (that 408, a 401 sent without
reading it, a 404), ``close_unread`` makes it say ``Connection: close``, so that the server
closes the socket instead of reading on. A hook on every message the app sends, not a send
wrapper in the middleware: Litestar answers errors raised in middleware, and requests no route
matches, outside every middleware.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

from service.problems import problem

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

__all__ = ("BodyTimeoutMiddleware", "close_unread")

_CLOSE: Final = (b"connection", b"close")
_READ: Final = "body_read"
"""The key in the scope's state saying the request's body has all been read."""


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


class BodyTimeoutMiddleware(ASGIMiddleware):
    """Ends a request whose body has not all arrived ``timeout`` seconds after it started."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Pass the request on with its body's arrival bounded."""
        if not _has_body(scope):
            await next_app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self._timeout
        state = scope.setdefault("state", {})

        async def bounded_receive() -> ReceiveMessage:
            if state.get(_READ):
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise problem(
                    408,
                    f"the request body did not arrive within {self._timeout:g} s",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                state[_READ] = True
            return message

        await next_app(scope, bounded_receive, send)


async def close_unread(message: Message, scope: Scope) -> None:
    """A ``before_send`` hook: a response that starts before its request's body has all been
    read closes the connection."""
    if (
        message["type"] == "http.response.start"
        and not scope.get("state", {}).get(_READ)
        and _has_body(scope)
    ):
        headers = list(message.get("headers", []))
        if _CLOSE not in headers:
            message["headers"] = [*headers, _CLOSE]
