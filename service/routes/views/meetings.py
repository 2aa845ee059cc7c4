"""Meetings and their delegation rosters."""

from __future__ import annotations

from typing import Any, cast

import msgspec
from litestar import Request, Response, get
from litestar.params import FromPath

from projections.roster import (
    RosterView,
    get_roster,
    list_meetings,
    roster_as_of,
    roster_as_of_time,
)
from service.auth import require
from service.problems import problem
from service.requests import cursor_param, runtime_of, time_param
from service.routes.views.common import (
    VIEW_ERRORS,
    AsOfCursorParam,
    AsOfParam,
    ReflectParam,
    as_of_headers,
    consistency,
)


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
    responses=VIEW_ERRORS,
)
async def meetings(
    request: Request[Any, Any, Any], reflect: ReflectParam = None
) -> Response[list[RosterView]]:
    """Every meeting."""
    runtime = runtime_of(request)
    projection, headers = await consistency(runtime, "roster", reflect)
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
    responses=VIEW_ERRORS,
)
async def meeting(
    request: Request[Any, Any, Any],
    *,
    meeting_id: FromPath[str],
    reflect: ReflectParam = None,
    as_of: AsOfParam = None,
    as_of_cursor: AsOfCursorParam = None,
) -> Response[RosterView]:
    """One roster."""
    runtime = runtime_of(request)
    at = cursor_param(as_of_cursor, "as_of_cursor")
    when = time_param(as_of)
    view: RosterView | None
    if at is not None:
        view = await roster_as_of(runtime.store, meeting_id, at)
        headers = as_of_headers(None, at)
    elif when is not None:
        view = await roster_as_of_time(runtime.store, meeting_id, when)
        headers = as_of_headers(when, None)
    else:
        projection, headers = await consistency(runtime, "roster", reflect)
        view = await get_roster(runtime.pool, meeting_id, version=projection.version)
    if view is None:
        raise problem(404, f"no meeting {meeting_id!r} is known (at that moment)")
    return Response(cast("RosterView", _roster_out(view)), headers=headers)
