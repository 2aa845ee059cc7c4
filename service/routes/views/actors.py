"""The actor directory and contact histories."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter

from projections.as_of import contact_history_as_of
from projections.contacts import (
    ActorView,
    HistoryEntry,
    contact_history,
    get_actor,
    search_actors,
)
from service.auth import require
from service.problems import problem
from service.requests import cursor_param, runtime_of, time_param
from service.routes.views.common import (
    VIEW_ERRORS,
    AsOfCursorParam,
    AsOfParam,
    ReflectParam,
    actor_id_of,
    as_of_headers,
    consistency,
)
from service.schemas import errors


@get(
    "/actors",
    operation_id="searchActors",
    summary="Search actors by name or alias (any spelling)",
    description="Exact and prefix matches on ids, names and aliases first; if none, the "
    "closest spellings (transliteration variants, typos) from the name index.",
    tags=["actors"],
    opt=require("read"),
    responses=VIEW_ERRORS,
)
async def actors(
    request: Request[Any, Any, Any],
    *,
    name: Annotated[str, QueryParameter(name="name", min_length=1, max_length=300)],
    limit: Annotated[int, QueryParameter(name="limit", ge=1, le=100)] = 20,
    reflect: ReflectParam = None,
) -> Response[list[ActorView]]:
    """Actor search."""
    runtime = runtime_of(request)
    projection, headers = await consistency(runtime, "contacts", reflect)
    found = await search_actors(runtime.pool, name, limit=limit, version=projection.version)
    if not found:
        await runtime.handler.refresh_directory()
        for match in runtime.handler.directory.candidates(name, limit=limit):
            view = await get_actor(runtime.pool, match.actor_id, version=projection.version)
            if view is not None:
                found.append(view)
    return Response(found, headers=headers)


@get(
    "/actors/{actor:str}",
    operation_id="getActor",
    summary="An actor with its aliases and roles (by id or any spelling of its name)",
    tags=["actors"],
    opt=require("read"),
    responses=errors(400, 404, 422),
)
async def actor(
    request: Request[Any, Any, Any], actor: FromPath[str], reflect: ReflectParam = None
) -> Response[ActorView]:
    """One actor."""
    runtime = runtime_of(request)
    projection, headers = await consistency(runtime, "contacts", reflect)
    actor_id = await actor_id_of(runtime, actor, projection.version)
    view = await get_actor(runtime.pool, actor_id, version=projection.version)
    if view is None:
        raise problem(404, f"actor {actor!r} is registered but not yet projected; retry")
    return Response(view, headers=headers)


@get(
    "/actors/{actor:str}/contacts",
    operation_id="getContactHistory",
    summary="An actor's contact history, newest first",
    description="Every interaction involving the actor, with counterpart, kind, CAMEO and "
    "PLOVER codes, EDTF date with bounds and precision, place, modality and sources. An "
    "organisation's history includes its members' interactions while they held a role in "
    "it (marked `via`). Aggregate reports ('several times') appear once, as reported.",
    tags=["actors"],
    opt=require("read"),
    responses=errors(400, 404, 422),
)
async def contacts(
    request: Request[Any, Any, Any],
    *,
    actor: FromPath[str],
    counterpart: Annotated[str | None, QueryParameter(name="counterpart", max_length=300)] = None,
    kind: Annotated[
        Literal["phone_call", "meeting", "visit", "address", "contacts", "statement", "apology"]
        | None,
        QueryParameter(name="kind"),
    ] = None,
    start: Annotated[
        date | None, QueryParameter(name="from", description="Window start (day).")
    ] = None,
    end: Annotated[date | None, QueryParameter(name="to", description="Window end (day).")] = None,
    window: Annotated[
        Literal["certain", "possible"],
        QueryParameter(
            name="window",
            description="`certain`: the interaction's date bounds lie "
            "inside the window; `possible`: they overlap it.",
        ),
    ] = "possible",
    members: Annotated[
        bool, QueryParameter(name="members", description="Include members' interactions.")
    ] = True,
    reflect: ReflectParam = None,
    as_of: AsOfParam = None,
    as_of_cursor: AsOfCursorParam = None,
) -> Response[list[HistoryEntry]]:
    """A contact history."""
    runtime = runtime_of(request)
    at = cursor_param(as_of_cursor, "as_of_cursor")
    when = time_param(as_of)
    if start is not None and end is not None and end < start:
        raise problem(
            400,
            f"the window ends ({end}) before it starts ({start})",
            errors=[{"field": "query:to", "reason": "before query:from"}],
        )
    projection, headers = await consistency(runtime, "contacts", reflect)
    actor_id = await actor_id_of(runtime, actor, projection.version)
    counterpart_id = (
        await actor_id_of(runtime, counterpart, projection.version) if counterpart else None
    )
    filters: dict[str, Any] = {
        "counterpart": counterpart_id,
        "kind": kind,
        "window": (start, end) if start or end else None,
        "window_mode": window,
        "as_person_only": not members,
    }
    if at is not None or when is not None:
        entries = await contact_history_as_of(
            runtime.store, actor_id, cursor=at, recorded_at=when, **filters
        )
        headers = as_of_headers(when, at)
    else:
        entries = await contact_history(
            runtime.pool, actor_id, version=projection.version, **filters
        )
    return Response(entries, headers=headers)
