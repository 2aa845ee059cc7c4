"""Requests as their route declares them: a route that reads a JSON body is sent JSON.

Litestar decodes a route's ``data`` as JSON whatever the request's ``Content-Type`` says, so
a form or ``text/plain`` body that happened to parse went through as if it were JSON. This
middleware reads the route's own signature (a ``data`` parameter) and the raw headers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

from service.problems import problem

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ("ConformanceMiddleware",)

_JSON_SUFFIXES: Final = ("/json", "+json")


def _not_json(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The media type raw ASGI headers declare when it is not JSON (``""``: none)."""
    for name, value in headers:
        if name == b"content-type":
            media_type = value.decode("latin-1").split(";", 1)[0].strip().lower()
            if media_type.startswith("application/") and media_type.endswith(_JSON_SUFFIXES):
                return None
            return media_type
    return ""


class ConformanceMiddleware(ASGIMiddleware):
    """Refuses a request its route cannot read as declared."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Check, then pass the request on."""
        if scope["route_handler"].parsed_data_field is not None:
            media_type = _not_json(scope["headers"])
            if media_type is not None:
                raise problem(
                    415,
                    "send the body as JSON with Content-Type: application/json, not "
                    f"{media_type or 'no content type'!r}",
                )
        await next_app(scope, receive, send)
