"""The actor directory and contact histories, live or as of a past moment, in pages.

Every answer reads the contacts projection's rows current at one cursor
(``projections.system_time``): the projection's checkpoint, read in the same snapshot as the
rows (the live view), or the ``as_of``/``as_of_cursor`` point (an as-of view, through the same
indexes). A walk's later pages read at the cursor its token carries.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter

from events.domain.commands import InteractionKind
from projections.contacts import (
    ActorView,
    HistoryEntry,
    HistoryKey,
    SearchKey,
    contact_history_page,
    get_actor,
    search_actors_keyed,
)
from service.auth import require
from service.paging import (
    DEFAULT_LIMIT,
    After,
    Limit,
    PageToken,
    page_response,
    read_token,
    view_connection,
)
from service.problems import problem
from service.requests import runtime_of
from service.routes.views.common import (
    VIEW_ERRORS,
    AsOfCursorParam,
    AsOfParam,
    ReflectParam,
    actor_id_of,
    checkpoint_here,
    pin,
)
from service.schemas import errors

if TYPE_CHECKING:
    import asyncpg

    from events.records import Cursor
    from service.runtime import Runtime


async def _actor_at(
    conn: asyncpg.Connection, runtime: Runtime, ref: str, version: int, at: Cursor
) -> str:
    """The id of the actor ``ref`` names at ``at`` (an id, one merged into another by then),
    else by any spelling the directory knows."""
    known = await get_actor(conn, ref, at=at, version=version)
    return known.actor_id if known is not None else await actor_id_of(runtime, ref, version)


@get(
    "/actors",
    operation_id="searchActors",
    summary="Search actors by name or alias (any spelling)",
    description="Every actor the name may refer to: exact and prefix matches on ids, names "
    "and aliases, and every actor whose name or alias it spells in another transliteration "
    "(the candidates a write naming it would be refused with), in pages ordered exact matches "
    "first, then by canonical name, then by actor id. If there are none at all, the closest "
    "spellings (typos) from the name index: at most `limit`, closest first, on one page.",
    tags=["actors"],
    opt=require("read"),
    responses=VIEW_ERRORS,
)
async def actors(
    request: Request[Any, Any, Any],
    *,
    name: Annotated[str, QueryParameter(name="name", min_length=1, max_length=300)],
    limit: Limit = DEFAULT_LIMIT,
    after: After = None,
    reflect: ReflectParam = None,
    as_of: AsOfParam = None,
    as_of_cursor: AsOfCursorParam = None,
) -> Response[list[ActorView]]:
    """Actor search."""
    runtime = runtime_of(request)
    token = read_token(request, after)
    point = await pin(
        runtime, "contacts", reflect=reflect, as_of=as_of, as_of_cursor=as_of_cursor, token=token
    )
    version = point.projection.version
    await runtime.handler.refresh_directory()
    variants = [match.actor_id for match in runtime.handler.directory.spelled(name)]
    async with view_connection(runtime) as conn:
        at = await checkpoint_here(conn, point)
        try:
            found = await search_actors_keyed(
                conn,
                name,
                at=at,
                after=_search_key(token),
                limit=limit + 1,
                variants=variants,
                version=version,
            )
        except ValueError as exc:
            raise problem(400, "after: the token is not one of this search's") from exc
        if not found and token is None:
            for match in runtime.handler.directory.candidates(name, limit=limit):
                view = await get_actor(conn, match.actor_id, at=at, version=version)
                if view is not None:
                    found.append((view, (False, view.canonical_name, view.actor_id)))
            found = found[:limit]
    keys = {id(view): key for view, key in found}
    return page_response(
        request,
        [view for view, _ in found],
        limit=limit,
        sort_key=lambda view: keys[id(view)],
        at=at,
        headers=point.headers,
        max_bytes=runtime.settings.view_page_max_bytes,
    )


def _search_key(token: PageToken | None) -> SearchKey | None:
    if token is None:
        return None
    if len(token.key) != 3:
        raise problem(400, "after: the token is not one of this search's")
    exact, canonical_name, actor_id = token.key
    return (exact, canonical_name, actor_id)  # type: ignore[return-value]  # checked by the query


@get(
    "/actors/{actor:str}",
    operation_id="getActor",
    summary="An actor with its aliases and roles (by id or any spelling of its name)",
    tags=["actors"],
    opt=require("read"),
    responses=errors(400, 404, 422),
)
async def actor(
    request: Request[Any, Any, Any],
    actor: FromPath[str],
    reflect: ReflectParam = None,
    as_of: AsOfParam = None,
    as_of_cursor: AsOfCursorParam = None,
) -> Response[ActorView]:
    """One actor."""
    runtime = runtime_of(request)
    point = await pin(runtime, "contacts", reflect=reflect, as_of=as_of, as_of_cursor=as_of_cursor)
    version = point.projection.version
    async with view_connection(runtime) as conn:
        at = await checkpoint_here(conn, point)
        actor_id = await _actor_at(conn, runtime, actor, version, at)
        view = await get_actor(conn, actor_id, at=at, version=version)
    if view is None:
        detail = (
            f"actor {actor!r} is registered but not yet projected; retry"
            if as_of is None and as_of_cursor is None
            else f"actor {actor!r} was not registered at that moment"
        )
        raise problem(404, detail)
    return Response(view, headers=point.headers)


@get(
    "/actors/{actor:str}/contacts",
    operation_id="getContactHistory",
    summary="An actor's contact history, newest first",
    description="Every interaction involving the actor, with counterpart, kind, CAMEO and "
    "PLOVER codes, EDTF date with bounds and precision, place, modality and sources. An "
    "organisation's history includes its members' interactions while they held a role in "
    "it (marked `via`). Aggregate reports ('several times') appear once, as reported. "
    "Order, newest first: by the upper bound of the date, then by its lower bound (both "
    "descending; an open bound comes after every known one), then by interaction id "
    "(ascending).",
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
        InteractionKind | None,
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
    limit: Limit = DEFAULT_LIMIT,
    after: After = None,
    reflect: ReflectParam = None,
    as_of: AsOfParam = None,
    as_of_cursor: AsOfCursorParam = None,
) -> Response[list[HistoryEntry]]:
    """A contact history."""
    runtime = runtime_of(request)
    token = read_token(request, after)
    if start is not None and end is not None and end < start:
        raise problem(
            400,
            f"the window ends ({end}) before it starts ({start})",
            errors=[{"field": "query:to", "reason": "before query:from"}],
        )
    point = await pin(
        runtime, "contacts", reflect=reflect, as_of=as_of, as_of_cursor=as_of_cursor, token=token
    )
    version = point.projection.version
    async with view_connection(runtime) as conn:
        at = await checkpoint_here(conn, point)
        actor_id = await _actor_at(conn, runtime, actor, version, at)
        counterpart_id = (
            await _actor_at(conn, runtime, counterpart, version, at) if counterpart else None
        )
        # The history is this transaction's last statement: the settings it makes end with it.
        try:
            found = await contact_history_page(
                conn,
                actor_id,
                at=at,
                after=_history_key(token),
                limit=limit + 1,
                counterpart=counterpart_id,
                kind=kind,
                window=(start, end) if start or end else None,
                window_mode=window,
                as_person_only=not members,
                version=version,
            )
        except ValueError as exc:
            raise problem(400, "after: the token is not one of this history's") from exc
    # Each entry is its JSON as built from the stored view (it reads as a HistoryEntry).
    keys = {id(entry): key for entry, key in found}
    response = page_response(
        request,
        [entry for entry, _ in found],
        limit=limit,
        sort_key=lambda entry: keys[id(entry)],
        at=at,
        headers=point.headers,
        max_bytes=runtime.settings.view_page_max_bytes,
    )
    return cast("Response[list[HistoryEntry]]", response)


def _history_key(token: PageToken | None) -> HistoryKey | None:
    if token is None:
        return None
    if len(token.key) != 3:
        raise problem(400, "after: the token is not one of this history's")
    upper, lower, interaction_id = token.key
    return (upper, lower, interaction_id)  # type: ignore[return-value]  # checked by the query
