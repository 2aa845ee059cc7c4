"""Who is calling: API keys on each request, and the scope each route needs.

One middleware identifies the key (``Authorization: Bearer dfk_...`` or ``X-API-Key``) and
checks it against the scope the route declares (``opt=require("write")``). A request without
a key is anonymous, which reads may allow (``public_reads``); a key that does not verify is
refused at once, so a typo never silently becomes an anonymous request.

Both used to be Litestar's own parts, ``AbstractAuthenticationMiddleware`` and a guard per
route. Measured on the write benchmark they cost ~70 us of ~1.4 ms of server CPU per request:
the base class builds an ``ASGIConnection`` and parses every header to read one, and Litestar
``copy()``s the route handler for each guard call. This is Litestar's lighter
``ASGIMiddleware`` base, reading the raw headers and the route's ``opt`` instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import ASGIMiddleware

from service.keys import ApiKey, Scope

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar.connection import ASGIConnection
    from litestar.types import ASGIApp, Receive, Send
    from litestar.types import Scope as AsgiScope

    from service.runtime import Runtime

__all__ = ("SCOPE_OPT", "ApiKeyMiddleware", "principal_of", "require", "token_of")

SCOPE_OPT: Final = "diplofeed_scope"
"""The route handler ``opt`` key naming the scope its requests need."""
_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="diplofeed"'}


def require(scope: Scope) -> dict[str, Any]:
    """A route's ``opt``: the request's key must hold ``scope`` (reads may also be public)."""
    return {SCOPE_OPT: scope}


def token_of(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The API key raw ASGI request headers carry, if any."""
    api_key: bytes | None = None
    for name, raw in headers:
        if name == b"authorization":
            header = raw.decode("latin-1")
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip()
            return header.strip() or None
        if name == b"x-api-key" and api_key is None:
            api_key = raw
    if api_key is None:
        return None
    return api_key.decode("latin-1") or None


def principal_of(connection: ASGIConnection) -> str:  # type: ignore[type-arg]
    """Who a request acts as, for idempotency keys, rate limits and event metadata."""
    user = connection.scope.get("user")
    if isinstance(user, ApiKey):
        return f"key:{user.id}"
    client = connection.client
    return f"anonymous:{client.host if client else 'unknown'}"


def _authorize(runtime: Runtime, user: ApiKey | None, scope: Scope) -> None:
    if user is None:
        if scope == "read" and runtime.settings.public_reads:
            return
        raise NotAuthorizedException(
            detail=f"this route needs an API key with the {scope!r} scope; send it as "
            "'Authorization: Bearer <key>'",
            headers=_CHALLENGE,
        )
    if not user.allows(scope):
        raise PermissionDeniedException(detail=f"this API key lacks the {scope!r} scope")


def _is_schema(scope: AsgiScope) -> bool:
    path: str = scope["path"]
    return path == "/schema" or path.startswith("/schema/")


class ApiKeyMiddleware(ASGIMiddleware):
    """Resolves the request's API key (or none) as ``scope["user"]`` and refuses the request
    unless it holds the scope its route requires."""

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)
    # Health, readiness and metrics say so in their opt; the OpenAPI documents are Litestar's
    # routes. An exact test, not a path pattern: those match anywhere in the path, so
    # "/health" would have let "/actors/health-minister" through unchecked.
    exclude_opt_key = "exclude_from_auth"
    should_bypass_for_scope = staticmethod(_is_schema)

    async def handle(
        self, scope: AsgiScope, receive: Receive, send: Send, next_app: ASGIApp
    ) -> None:
        """Identify, authorize, then pass the request on."""
        # CORS preflights carry no credentials.
        if scope.get("method") != "OPTIONS":
            runtime: Runtime = scope["litestar_app"].state.runtime
            token = token_of(scope["headers"])
            user: ApiKey | None = None
            if token is not None:
                user = await runtime.keyring.verify(token)
                if user is None:
                    raise NotAuthorizedException(
                        detail="the API key is unknown, malformed or revoked", headers=_CHALLENGE
                    )
            scope["user"] = user
            scope["auth"] = token
            needed: Scope | None = scope["route_handler"].opt.get(SCOPE_OPT)
            if needed is not None:
                _authorize(runtime, user, needed)
        await next_app(scope, receive, send)
