"""Operations routes: liveness, readiness, metrics, problem type documentation, and the
admin routes for API keys."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from litestar import Request, Response, delete, get, post
from litestar.openapi.spec import Operation
from litestar.params import FromPath, JSONBody
from litestar.response import Response as PlainResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from events.migrate import is_current
from events.notify import CONNECTION_ERRORS
from service.auth import require
from service.keys import ApiKey, KeyError_, create_key, list_keys_page, revoke_key
from service.metrics import refresh_gauges
from service.paging import DEFAULT_LIMIT, After, Limit, page_response, read_token
from service.problems import PROBLEM_TYPES, problem
from service.readiness import projection_statuses
from service.requests import runtime_of
from service.schemas import (
    CreatedKeyOut,
    CreateKeyRequest,
    Health,
    KeyOut,
    ProjectionStatus,
    Readiness,
    errors,
)

__all__ = ("OPS_HANDLERS",)

_PUBLIC: Final = {"exclude_from_auth": True}


@dataclass
class _PublicOperation(Operation):
    """A route that needs no API key: an empty security requirement overrides the document's
    (every other route inherits it)."""

    def __post_init__(self) -> None:
        self.security = []


# Litestar appends the charset to every text/* media type itself: the exposition format's own
# type without it, or the header would name it twice.
_METRICS_TYPE: Final = "; ".join(
    part.strip()
    for part in CONTENT_TYPE_LATEST.split(";")
    if not part.strip().startswith("charset=")
)


@get(
    "/health",
    operation_id="health",
    operation_class=_PublicOperation,
    summary="Liveness: the process is up",
    tags=["operations"],
    opt=_PUBLIC,
    responses=errors(),
)
async def health() -> Health:
    """Always ``ok`` while the process serves requests."""
    return Health(status="ok")


@get(
    "/ready",
    operation_id="ready",
    operation_class=_PublicOperation,
    summary="Readiness: database reachable, migrations current, projections able to serve",
    description="503 while the database is unreachable, a migration is pending, or a "
    "projection cannot serve: it lags more than the configured threshold, or the application "
    "role cannot read its tables; the body says which.",
    tags=["operations"],
    opt=_PUBLIC,
    responses={**errors(), 503: errors()[503]},
)
async def ready(request: Request[Any, Any, Any]) -> Response[Readiness]:
    """Readiness, with reasons."""
    runtime = runtime_of(request)
    problems: list[str] = []
    statuses: list[ProjectionStatus] = []
    database = migrations = False
    try:
        async with runtime.pool.acquire() as conn:
            database = True
            migrations = await is_current(conn)
            if not migrations:
                problems.append("migrations pending: run `diplofeed migrate`")
            statuses = await projection_statuses(runtime)
            problems.extend(s.problem for s in statuses if s.problem is not None)
    except CONNECTION_ERRORS as exc:
        problems.append(f"database unreachable: {exc}")
    body = Readiness(
        ready=not problems,
        database=database,
        migrations_current=migrations,
        projections=statuses,
        problems=problems,
    )
    return Response(body, status_code=200 if body.ready else 503)


@get(
    "/metrics",
    operation_id="metrics",
    operation_class=_PublicOperation,
    summary="Prometheus metrics",
    description="Requests (Litestar's middleware), command latency and outcomes, feed horizon "
    "lag, projection lag and live-stream subscribers, in the Prometheus text format.",
    tags=["operations"],
    opt=_PUBLIC,
    media_type=_METRICS_TYPE,
    responses=errors(),
)
async def metrics(request: Request[Any, Any, Any]) -> PlainResponse[bytes]:
    """The metrics, with the lag gauges read now."""
    runtime = runtime_of(request)
    # Without the database the lag gauges keep their last values; the rest is worth scraping.
    with contextlib.suppress(*CONNECTION_ERRORS):
        await refresh_gauges(runtime)
    return PlainResponse(generate_latest(REGISTRY), media_type=_METRICS_TYPE)


@get(
    "/problems/{slug:str}",
    operation_id="describeProblem",
    operation_class=_PublicOperation,
    summary="What a problem type returned by this API means",
    tags=["operations"],
    opt=_PUBLIC,
    media_type="text/plain",
    responses=errors(404),
)
async def describe_problem(slug: FromPath[str]) -> str:
    """The explanation of one problem ``type``."""
    text = PROBLEM_TYPES.get(slug)
    if text is None:
        raise problem(404, f"no problem type {slug!r}; known: {', '.join(PROBLEM_TYPES)}")
    return f"{slug}\n\n{text}\n"


def _out(key: ApiKey) -> KeyOut:
    return KeyOut(
        id=key.id,
        name=key.name,
        scopes=list(key.scopes),
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


@get(
    "/keys",
    operation_id="listKeys",
    summary="List API keys (admin)",
    description="Every key, revoked ones included, never a secret; oldest first (by creation "
    'time, then id), a page at a time: follow `Link: rel="next"`.',
    tags=["admin"],
    opt=require("admin"),
    responses=errors(),
)
async def keys(
    request: Request[Any, Any, Any], *, limit: Limit = DEFAULT_LIMIT, after: After = None
) -> Response[list[KeyOut]]:
    """A page of keys."""
    runtime = runtime_of(request)
    token = read_token(request, after)
    last = _key_position(token.key) if token is not None else None
    found = await list_keys_page(runtime.pool, after=last, limit=limit + 1)
    return page_response(
        request,
        [_out(k) for k in found],
        limit=limit,
        sort_key=lambda k: (k.created_at.isoformat(), k.id),
        at=None,
        headers={"Cache-Control": "no-store"},
        max_bytes=runtime.settings.view_page_max_bytes,
    )


def _key_position(key: tuple[Any, ...]) -> tuple[datetime, str]:
    """A token's sort key as ``(created_at, id)``; it was made by ``keys`` from a key."""
    try:
        created_at, key_id = key
        return datetime.fromisoformat(created_at), str(key_id)
    except (TypeError, ValueError) as exc:
        raise problem(
            400, "after: not a page token of this list", errors=[{"field": "query:after"}]
        ) from exc


@post(
    "/keys",
    operation_id="createKey",
    summary="Create an API key (admin); its token is shown once",
    tags=["admin"],
    opt=require("admin"),
    responses=errors(400, 408, 413, 415, 422),
)
async def new_key(
    request: Request[Any, Any, Any], data: JSONBody[CreateKeyRequest]
) -> CreatedKeyOut:
    """A new key."""
    try:
        created = await create_key(runtime_of(request).pool, data.name, tuple(data.scopes))
    except KeyError_ as exc:
        raise problem(422, str(exc)) from exc
    return CreatedKeyOut(key=_out(created.key), token=created.token)


@delete(
    "/keys/{key_id:str}",
    operation_id="revokeKey",
    summary="Revoke an API key (admin)",
    tags=["admin"],
    opt=require("admin"),
    description="A key cannot revoke itself (409): that would lock out the last administrator "
    "as easily as any other. Revoke it with another admin key or `diplofeed keys revoke`.",
    status_code=200,
    responses=errors(404, 409),
)
async def revoke(request: Request[Any, Any, Any], key_id: FromPath[str]) -> KeyOut:
    """Revoke a key; this process forgets it at once, others within seconds."""
    runtime = runtime_of(request)
    user = request.scope.get("user")
    if isinstance(user, ApiKey) and user.id == key_id:
        raise problem(
            409,
            "an API key cannot revoke itself; revoke it with another admin key or "
            "`diplofeed keys revoke`",
        )
    try:
        key = await revoke_key(runtime.pool, key_id)
    except KeyError_ as exc:
        raise problem(404, str(exc)) from exc
    runtime.keyring.forget()
    return _out(key)


OPS_HANDLERS: Final = (health, ready, metrics, describe_problem, keys, new_key, revoke)
