"""Who is calling: API keys on each request, and the scope each route needs.

The middleware only identifies the key (``Authorization: Bearer dfk_...`` or ``X-API-Key``);
the guards decide. A request without a key is anonymous, which reads may allow
(``public_reads``); a key that does not verify is refused at once, so a typo never silently
becomes an anonymous request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from service.keys import ApiKey, Scope

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler
    from litestar.types import Guard

    from service.runtime import Runtime

__all__ = ("ApiKeyMiddleware", "principal_of", "require", "token_of")

_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="diplofeed"'}


def token_of(connection: ASGIConnection) -> str | None:  # type: ignore[type-arg]
    """The API key a request carries, if any."""
    header = connection.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return header.strip() or None
    return connection.headers.get("x-api-key") or None


def principal_of(connection: ASGIConnection) -> str:  # type: ignore[type-arg]
    """Who a request acts as, for idempotency keys, rate limits and event metadata."""
    user = connection.scope.get("user")
    if isinstance(user, ApiKey):
        return f"key:{user.id}"
    client = connection.client
    return f"anonymous:{client.host if client else 'unknown'}"


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    """Resolves the request's API key (or none) before any guard runs."""

    async def authenticate_request(
        self,
        connection: ASGIConnection,  # type: ignore[type-arg]
    ) -> AuthenticationResult:
        """The key as ``request.user``, or ``None`` for an anonymous request."""
        token = token_of(connection)
        if token is None:
            return AuthenticationResult(user=None, auth=None)
        runtime: Runtime = connection.app.state.runtime
        key = await runtime.keyring.verify(token)
        if key is None:
            raise NotAuthorizedException(
                detail="the API key is unknown, malformed or revoked", headers=_CHALLENGE
            )
        return AuthenticationResult(user=key, auth=token)


def require(scope: Scope) -> Guard:
    """A guard: the request's key must hold ``scope`` (reads may also be public)."""

    # A coroutine: Litestar runs a plain function guard in its thread pool, a thread hop per
    # request.
    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
        user = connection.scope.get("user")
        if user is None:
            runtime: Runtime = connection.app.state.runtime
            if scope == "read" and runtime.settings.public_reads:
                return
            raise NotAuthorizedException(
                detail=f"this route needs an API key with the {scope!r} scope; send it as "
                "'Authorization: Bearer <key>'",
                headers=_CHALLENGE,
            )
        if not isinstance(user, ApiKey) or not user.allows(scope):
            raise PermissionDeniedException(
                detail=f"this API key lacks the {scope!r} scope",
            )

    guard.__name__ = f"require_{scope}"
    return guard
