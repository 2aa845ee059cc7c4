"""Who is calling: API keys on each request, and the scope each route needs.

One middleware identifies the key (``Authorization: Bearer dfk_...`` or ``X-API-Key``) and
checks it against the scope the route declares (``opt=require("write")``). A request without
a key is anonymous, which reads may allow (``public_reads``); a key that does not verify is
refused at once, so a typo never silently becomes an anonymous request. Failures are counted
per client address: past ``auth_failures_per_minute``, keys the process has not verified
lately are refused (429) without a lookup, so guessing keys costs the database nothing.

Both used to be Litestar's own parts, ``AbstractAuthenticationMiddleware`` and a guard per
route. Measured on the write benchmark they cost ~70 us of ~1.4 ms of server CPU per request:
the base class builds an ``ASGIConnection`` and parses every header to read one, and Litestar
``copy()``s the route handler for each guard call. This is Litestar's lighter
``ASGIMiddleware`` base, reading the raw headers and the route's ``opt`` instead.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Final

from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import ASGIMiddleware

from service.keys import ApiKey, Scope
from service.problems import problem

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar.connection import ASGIConnection
    from litestar.types import ASGIApp, Receive, Send
    from litestar.types import Scope as AsgiScope

    from service.runtime import Runtime

__all__ = (
    "SCOPE_OPT",
    "ApiKeyMiddleware",
    "FailureLimit",
    "principal_of",
    "require",
    "token_of",
)

SCOPE_OPT: Final = "diplofeed_scope"
"""The route handler ``opt`` key naming the scope its requests need."""
_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="diplofeed"'}
_WINDOW_S: Final = 60.0


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


class FailureLimit:
    """Failed authentications per client address, counted in windows of a minute, and how
    long an address that used up its ``per_minute`` must wait (``0``: no limit). Bounded: past
    ``size`` addresses, the counts start again."""

    def __init__(self, per_minute: int, *, size: int = 10_000) -> None:
        self._per_minute = per_minute
        self._size = size
        self._counts: dict[str, tuple[float, int]] = {}
        """By address: when its window ends, and its failures in it."""

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until ``address`` may try again; ``None``: it may now."""
        count = self._counts.get(address)
        if count is None or self._per_minute == 0 or count[1] < self._per_minute:
            return None
        remaining = count[0] - time.monotonic()
        return max(1, math.ceil(remaining)) if remaining > 0 else None

    def failed(self, address: str) -> None:
        """Count a failure of ``address``."""
        if self._per_minute == 0:
            return
        now = time.monotonic()
        ends, failures = self._counts.get(address, (0.0, 0))
        if ends <= now:
            if len(self._counts) >= self._size:
                self._counts.clear()
            ends, failures = now + _WINDOW_S, 0
        self._counts[address] = (ends, failures + 1)


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


async def _identify(runtime: Runtime, token: str, scope: AsgiScope) -> ApiKey:
    client = scope.get("client")
    address = client[0] if client else "unknown"
    wait = runtime.auth_failures.retry_after(address)
    user = await runtime.keyring.verify(token, lookup=wait is None)
    if user is not None:
        return user
    if wait is not None:
        raise problem(
            429,
            f"too many failed authentications from this address; retry after {wait} s",
            headers={"Retry-After": str(wait)},
        )
    runtime.auth_failures.failed(address)
    raise NotAuthorizedException(
        detail="the API key is unknown, malformed or revoked", headers=_CHALLENGE
    )


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
                user = await _identify(runtime, token, scope)
            scope["user"] = user
            scope["auth"] = token
            needed: Scope | None = scope["route_handler"].opt.get(SCOPE_OPT)
            if needed is not None:
                _authorize(runtime, user, needed)
        await next_app(scope, receive, send)
