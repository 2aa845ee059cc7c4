"""Requests as their route declares them: a route that reads a JSON body is sent JSON, and a
query parameter that holds one value is given once.

Litestar decodes a route's ``data`` as JSON whatever the request's ``Content-Type`` says, so
a form or ``text/plain`` body that happened to parse went through as if it were JSON; and it
takes one of the values of a repeated single-valued parameter (``?limit=1&limit=2``), so the
request meant something else to every cache, proxy or log that read the other. This
middleware reads the route's own signature and the raw request.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl

from litestar.constants import RESERVED_KWARGS
from litestar.enums import ParamType, ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.params import ParameterKwarg

from service.problems import problem

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar.handlers import BaseRouteHandler
    from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ("ConformanceMiddleware",)

_JSON_SUFFIXES: Final = ("/json", "+json")
_PATH_PARAMETER: Final = re.compile(r"\{(\w+)(?::\w+)?\}")


def _not_json(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The media type raw ASGI headers declare when it is not JSON (``""``: none)."""
    for name, value in headers:
        if name == b"content-type":
            media_type = value.decode("latin-1").split(";", 1)[0].strip().lower()
            if media_type.startswith("application/") and media_type.endswith(_JSON_SUFFIXES):
                return None
            return media_type
    return ""


def _single_valued(handler: BaseRouteHandler) -> frozenset[str]:
    """The query parameters of ``handler`` that hold one value (not a list)."""
    in_path = {m for path in handler.paths for m in _PATH_PARAMETER.findall(path)}
    names: set[str] = set()
    for name, field in handler.parsed_fn_signature.parameters.items():
        if name in RESERVED_KWARGS or name in in_path:
            continue
        kwarg = field.kwarg_definition
        if kwarg is None:
            alias = name
        elif isinstance(kwarg, ParameterKwarg):
            where = kwarg.param_type or (
                ParamType.HEADER if kwarg.header else ParamType.COOKIE if kwarg.cookie else None
            )
            if where not in (None, ParamType.QUERY):
                continue
            alias = kwarg.name or kwarg.query or name
        else:
            continue  # a body or a dependency
        if not field.is_non_string_sequence:
            names.add(alias)
    return frozenset(names)


def _repeated(query_string: bytes) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return repeated


class ConformanceMiddleware(ASGIMiddleware):
    """Refuses a request its route cannot read as declared."""

    scopes = (ScopeType.HTTP,)

    def __init__(self) -> None:
        self._single_valued: dict[int, frozenset[str]] = {}
        """By route handler (one entry per route, kept for the process's life)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Check, then pass the request on."""
        handler: BaseRouteHandler = scope["route_handler"]
        query = scope["query_string"]
        # Only a query with two parameters or more can repeat one; most have fewer.
        if b"&" in query:
            self._check_query(handler, query)
        if handler.parsed_data_field is not None:
            media_type = _not_json(scope["headers"])
            if media_type is not None:
                raise problem(
                    415,
                    "send the body as JSON with Content-Type: application/json, not "
                    f"{media_type or 'no content type'!r}",
                )
        await next_app(scope, receive, send)

    def _check_query(self, handler: BaseRouteHandler, query: bytes) -> None:
        single = self._single_valued.get(id(handler))
        if single is None:
            single = self._single_valued[id(handler)] = _single_valued(handler)
        twice = [name for name in _repeated(query) if name in single]
        if twice:
            raise problem(
                400,
                f"{', '.join(twice)}: give each of these query parameters once; "
                f"{'it takes' if len(twice) == 1 else 'they take'} a single value",
                errors=[
                    {"field": f"query:{name}", "reason": "given more than once"} for name in twice
                ],
            )
