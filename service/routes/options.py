"""``OPTIONS`` on every path, whose ``Allow`` names exactly the methods the path serves.

Litestar 2 gives each route an ``OPTIONS`` handler as handlers are registered one by one, and
when another method's handler joins a path, the path keeps the first one's, which lists the
first method only (litestar-org/litestar#4169, fixed in 3.0). Registered before every other
handler of their path, these take its place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Response, route
from litestar.enums import HttpMethod

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar.handlers import HTTPRouteHandler

__all__ = ("options_handlers",)


def _options(path: str, methods: frozenset[str]) -> HTTPRouteHandler:
    allow = ", ".join(sorted(methods | {"OPTIONS"}))

    async def options() -> Response[None]:
        return Response(None, status_code=204, headers={"Allow": allow})

    return route(path, http_method=HttpMethod.OPTIONS, include_in_schema=False)(options)


def options_handlers(handlers: Iterable[HTTPRouteHandler]) -> list[HTTPRouteHandler]:
    """One ``OPTIONS`` handler per path of ``handlers``; register them first."""
    methods: dict[str, set[str]] = {}
    for handler in handlers:
        for path in handler.paths:
            methods.setdefault(path, set()).update(handler.http_methods)
    return [_options(path, frozenset(served)) for path, served in methods.items()]
