"""Read routes over the projections: meetings and their rosters, contact histories, the contact
graph, the actor directory and audit trails.

Every view says which feed position it reflects (``Diplofeed-Position``) and whether it is
``Diplofeed-Stale`` (the projection has not applied events the feed already shows, or could
not reach the ``reflect`` cursor in time). ``reflect=<cursor>`` (the ``cursor`` a write
returned) waits, bounded, until the view includes that write. ``as_of`` (a time) or
``as_of_cursor`` answer as the log told it then, computed from the log itself.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, cast

import msgspec
from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter

from events.domain.errors import AmbiguousActorError, UnknownActorError
from projections.as_of import contact_history_as_of
from projections.audit import AuditEntry, audit_trail
from projections.contacts import (
    ActorView,
    GraphEdge,
    HistoryEntry,
    contact_graph,
    contact_history,
    get_actor,
    search_actors,
)
from projections.roster import (
    RosterView,
    get_roster,
    list_meetings,
    roster_as_of,
    roster_as_of_time,
)
from projections.runner import checkpoint_of, wait_for_cursor
from service.auth import require
from service.problems import problem
from service.requests import cursor_param, runtime_of, time_param
from service.schemas import errors

if TYPE_CHECKING:
    from events.records import Cursor
    from projections.runner import Projection
    from service.runtime import Runtime

__all__ = ("VIEW_HANDLERS",)

_Reflect = Annotated[
    str | None,
    QueryParameter(
        name="reflect",
        description="A feed cursor (from a write's `cursor`) the view "
        "must include: waits for it, bounded, and says `Diplofeed-Stale: true` if it "
        "could not.",
    ),
]
_AsOf = Annotated[
    datetime | None,
    QueryParameter(
        name="as_of", description="Answer as the log stood at this time (RFC 3339, with a zone)."
    ),
]
_AsOfCursor = Annotated[
    str | None,
    QueryParameter(
        name="as_of_cursor",
        description="Answer as the log stood once this feed cursor was in (inclusive).",
    ),
]

_VIEW_ERRORS: Final = errors(400, 404)


async def _consistency(
    runtime: Runtime, name: str, reflect: str | None
) -> tuple[Projection, dict[str, str]]:
    """The live projection, after waiting for ``reflect``, and the headers saying what the
    answer reflects."""
    projection = await runtime.live.projection(name)
    wanted = cursor_param(reflect, "reflect")
    reached = True
    if wanted is not None:
        reached = await wait_for_cursor(
            runtime.pool, projection, wanted, within=runtime.settings.read_your_writes_max_s
        )
    position, _ = await checkpoint_of(runtime.pool, projection.name, projection.version)
    categories = projection.filter.category_list() if projection.filter else None
    seen = runtime.hub.latest_by_category
    latest = [c for k, c in seen.items() if categories is None or k in categories]
    behind = bool(latest) and position < max(latest)
    return projection, {
        "Diplofeed-Position": position.encode(),
        "Diplofeed-Stale": "true" if (behind or not reached) else "false",
        "Cache-Control": "no-cache",
    }


def _as_of_headers(as_of: datetime | None, cursor: Cursor | None) -> dict[str, str]:
    headers = {"Diplofeed-Stale": "false", "Cache-Control": "no-cache"}
    if cursor is not None:
        headers["Diplofeed-Position"] = cursor.encode()
    if as_of is not None:
        headers["Diplofeed-As-Of"] = as_of.isoformat()
    return headers


def _roster_out(view: RosterView) -> dict[str, Any]:
    """The roster with its cursor opaque, as everywhere else in the API."""
    out: dict[str, Any] = msgspec.to_builtins(view)
    out["as_of"]["cursor"] = view.as_of.cursor.encode()
    return out


@get(
    "/meetings",
    operation_id="listMeetings",
    summary="List meetings with their delegation rosters",
    tags=["meetings"],
    opt=require("read"),
    responses=_VIEW_ERRORS,
)
async def meetings(
    request: Request[Any, Any, Any], reflect: _Reflect = None
) -> Response[list[RosterView]]:
    """Every meeting."""
    runtime = runtime_of(request)
    projection, headers = await _consistency(runtime, "roster", reflect)
    views = await list_meetings(runtime.pool, version=projection.version)
    # Documented as RosterView; sent with its cursor made opaque (see _roster_out).
    return Response(cast("list[RosterView]", [_roster_out(v) for v in views]), headers=headers)


@get(
    "/meetings/{meeting_id:str}",
    operation_id="getMeeting",
    summary="A meeting's delegation roster: who is invited, who leads each delegation",
    description="Host, place, current date window and its revisions, status; per faction: "
    "invited, confirmed or declined, delegation leader and members as reported, and the "
    "outcome on the meeting's declarations.",
    tags=["meetings"],
    opt=require("read"),
    responses=_VIEW_ERRORS,
)
async def meeting(
    request: Request[Any, Any, Any],
    *,
    meeting_id: FromPath[str],
    reflect: _Reflect = None,
    as_of: _AsOf = None,
    as_of_cursor: _AsOfCursor = None,
) -> Response[RosterView]:
    """One roster."""
    runtime = runtime_of(request)
    at = cursor_param(as_of_cursor, "as_of_cursor")
    when = time_param(as_of)
    view: RosterView | None
    if at is not None:
        view = await roster_as_of(runtime.store, meeting_id, at)
        headers = _as_of_headers(None, at)
    elif when is not None:
        view = await roster_as_of_time(runtime.store, meeting_id, when)
        headers = _as_of_headers(when, None)
    else:
        projection, headers = await _consistency(runtime, "roster", reflect)
        view = await get_roster(runtime.pool, meeting_id, version=projection.version)
    if view is None:
        raise problem(404, f"no meeting {meeting_id!r} is known (at that moment)")
    return Response(cast("RosterView", _roster_out(view)), headers=headers)


async def _actor_id(runtime: Runtime, ref: str, version: int) -> str:
    """The id of the actor ``ref`` names: an id (or a merged one), else any spelling."""
    known = await get_actor(runtime.pool, ref, version=version)
    if known is not None:
        return known.actor_id
    await runtime.handler.refresh_directory()
    try:
        return runtime.handler.directory.resolve(ref, field="actor")
    except UnknownActorError as exc:
        raise problem(
            404, str(exc), slug="unknown-actor", title="Unknown actor", suggestions=exc.suggestions
        ) from exc
    except AmbiguousActorError as exc:
        raise problem(
            422,
            str(exc),
            slug="ambiguous-actor",
            title="Ambiguous actor",
            candidates=exc.candidates,
        ) from exc


@get(
    "/actors",
    operation_id="searchActors",
    summary="Search actors by name or alias (any spelling)",
    description="Exact and prefix matches on ids, names and aliases first; if none, the "
    "closest spellings (transliteration variants, typos) from the name index.",
    tags=["actors"],
    opt=require("read"),
    responses=_VIEW_ERRORS,
)
async def actors(
    request: Request[Any, Any, Any],
    *,
    name: Annotated[str, QueryParameter(name="name", min_length=1, max_length=300)],
    limit: Annotated[int, QueryParameter(name="limit", ge=1, le=100)] = 20,
    reflect: _Reflect = None,
) -> Response[list[ActorView]]:
    """Actor search."""
    runtime = runtime_of(request)
    projection, headers = await _consistency(runtime, "contacts", reflect)
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
    request: Request[Any, Any, Any], actor: FromPath[str], reflect: _Reflect = None
) -> Response[ActorView]:
    """One actor."""
    runtime = runtime_of(request)
    projection, headers = await _consistency(runtime, "contacts", reflect)
    actor_id = await _actor_id(runtime, actor, projection.version)
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
    reflect: _Reflect = None,
    as_of: _AsOf = None,
    as_of_cursor: _AsOfCursor = None,
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
    projection, headers = await _consistency(runtime, "contacts", reflect)
    actor_id = await _actor_id(runtime, actor, projection.version)
    counterpart_id = (
        await _actor_id(runtime, counterpart, projection.version) if counterpart else None
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
        headers = _as_of_headers(when, at)
    else:
        entries = await contact_history(
            runtime.pool, actor_id, version=projection.version, **filters
        )
    return Response(entries, headers=headers)


@get(
    "/graph",
    operation_id="getContactGraph",
    summary="Who met whom and how often: interaction counts per pair, kind and year",
    description="Counts are `certain` (both date bounds in the year) and `possible` (the "
    "bounds overlap the year). Retracted interactions and negated statements are left out.",
    tags=["actors"],
    opt=require("read"),
    responses=errors(400, 404, 422),
)
async def graph(
    request: Request[Any, Any, Any],
    *,
    actor: Annotated[str | None, QueryParameter(name="actor", max_length=300)] = None,
    kind: Annotated[str | None, QueryParameter(name="kind", max_length=50)] = None,
    reflect: _Reflect = None,
) -> Response[list[GraphEdge]]:
    """The contact graph."""
    runtime = runtime_of(request)
    projection, headers = await _consistency(runtime, "contacts", reflect)
    actor_id = await _actor_id(runtime, actor, projection.version) if actor else None
    edges = await contact_graph(
        runtime.pool, actor_id=actor_id, kind=kind, version=projection.version
    )
    return Response(edges, headers=headers)


@get(
    "/audit/{item:str}",
    operation_id="getAuditTrail",
    summary="An item's audit trail: what was reported, corroborated, corrected, retracted",
    description="`item` is a stream id (`interaction-lavrov_call`) or an event id. Oldest "
    "first, with when and by whom (the API key) each was recorded.",
    tags=["audit"],
    opt=require("read"),
    responses=_VIEW_ERRORS,
)
async def audit(
    request: Request[Any, Any, Any], item: FromPath[str], reflect: _Reflect = None
) -> Response[list[AuditEntry]]:
    """An audit trail."""
    runtime = runtime_of(request)
    projection, headers = await _consistency(runtime, "audit", reflect)
    table = getattr(projection, "table", f"audit_v{projection.version}")
    trail = await audit_trail(runtime.pool, item, table=table)
    if not trail:
        raise problem(404, f"nothing has been recorded about {item!r}")
    return Response(trail, headers=headers)


VIEW_HANDLERS: Final = (meetings, meeting, actors, actor, contacts, graph, audit)
