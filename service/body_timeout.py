"""A bound on how long a client may take to send its request body.

uvicorn reads a body as slowly as the client sends it: a byte every few seconds held a socket
(and a request's worth of memory) for as long as the client liked, and a few hundred such
clients held as many sockets. ``BodyTimeoutMiddleware`` gives each request ``timeout`` seconds
from its start to deliver its whole body; past that the request ends with a 408 problem. And
whenever a response starts before the body has all been read (that 408, a 401 sent without
reading it, a 404, a 413), ``close_unread`` first reads and drops what remains of the body,
within a bound, so that a client still sending gets the answer rather than a reset
connection; past the bound the response says ``Connection: close``, so that the server closes
the socket instead of reading on. A hook on every message the app sends, not a send
wrapper in the middleware: Litestar answers errors raised in middleware, and requests no route
matches, outside every middleware.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware

from service.problems import problem

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

__all__ = ("BodyTimeoutMiddleware", "close_unread")

_CLOSE: Final = (b"connection", b"close")
_READ: Final = "body_read"
"""The key in the scope's state saying the request's body has all been read."""
_RECEIVE: Final = "body_receive"
"""The key in the scope's state holding the request's bounded ``receive``."""
DRAIN_MAX_BYTES: Final = 8 * 1024 * 1024
"""How much of an unread body is read and dropped before a response, so that the client,
still sending, gets the response instead of a reset connection (as servers' lingering close
does); a longer body, or one slower than its deadline, closes the connection."""


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

        state[_RECEIVE] = bounded_receive
        await next_app(scope, bounded_receive, send)


async def _drained(receive: Receive) -> bool:
    """Whether the rest of the body could be read and dropped within ``DRAIN_MAX_BYTES`` (and
    the body's deadline: the bounded ``receive`` raises past it)."""
    dropped = 0
    try:
        while dropped <= DRAIN_MAX_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return False
            dropped += len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
    except HTTPException:
        return False
    return False


async def close_unread(message: Message, scope: Scope) -> None:
    """A ``before_send`` hook: a response that starts before its request's body has all been
    read closes the connection."""
    if (
        message["type"] == "http.response.start"
        and not scope.get("state", {}).get(_READ)
        and _has_body(scope)
    ):
        receive = scope["state"].get(_RECEIVE)
        if receive is not None and await _drained(receive):
            return
        headers = list(message.get("headers", []))
        if _CLOSE not in headers:
            message["headers"] = [*headers, _CLOSE]
