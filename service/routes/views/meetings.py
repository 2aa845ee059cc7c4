"""Meetings and their delegation rosters, live or as of an earlier point, read by index.

Every read is pinned to one feed cursor: the roster projection's checkpoint (read in the same
snapshot as the rows: the live view), the ``as_of_cursor`` asked for, or the last event recorded
at or before ``as_of``. A walk of ``/meetings`` keeps the cursor of its first page in its
``after`` token, so writes landing meanwhile neither repeat nor skip a meeting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import msgspec
from litestar import Request, Response, get
from litestar.params import FromPath

from projections.roster import RosterView, get_roster, list_meetings
from service.auth import require
from service.paging import DEFAULT_LIMIT, After, Limit, page_response, read_token, view_connection
from service.problems import problem
from service.requests import runtime_of
from service.routes.views.common import (
    VIEW_ERRORS,
    AsOfCursorParam,
    AsOfParam,
    ReflectParam,
    checkpoint_here,
    pin,
)

if TYPE_CHECKING:
    from service.paging import SortKey


def _roster_out(view: RosterView) -> dict[str, Any]:
    """The roster with its cursor opaque, as everywhere else in the API."""
    out: dict[str, Any] = msgspec.to_builtins(view)
    out["as_of"]["cursor"] = view.as_of.cursor.encode()
    return out


def _meeting_key(entry: dict[str, Any]) -> SortKey:
    return (entry["meeting_id"],)


@get(
    "/meetings",
    operation_id="listMeetings",
    summary="List meetings with their delegation rosters, by meeting id",
    description="Meetings in ascending order of `meeting_id` (the database's text order), "
    '`limit` a page (default 100, at most 1,000); follow `Link: rel="next"` while it is '
    "present. A walk reads "
    "the rosters as they stood when its first page was read (or at the `as_of`/`as_of_cursor` "
    "point), so writes landing meanwhile neither repeat nor skip a meeting.",
    tags=["meetings"],
    opt=require("read"),
    responses=VIEW_ERRORS,
)
async def meetings(
    request: Request[Any, Any, Any],
    *,
    limit: Limit = DEFAULT_LIMIT,
    after: After = None,
    reflect: ReflectParam = None,
    as_of: AsOfParam = None,
    as_of_cursor: AsOfCursorParam = None,
) -> Response[list[RosterView]]:
    """A page of meetings."""
    runtime = runtime_of(request)
    token = read_token(request, after)
    after_id = ""
    if token is not None:
        if len(token.key) != 1 or not isinstance(token.key[0], str):
            raise problem(400, "after: the token is not one of /meetings")
        after_id = token.key[0]
    point = await pin(
        runtime, "roster", reflect=reflect, as_of=as_of, as_of_cursor=as_of_cursor, token=token
    )
    async with view_connection(runtime) as conn:
        at = await checkpoint_here(conn, point)
        views = await list_meetings(
            conn, at=at, after=after_id, limit=limit + 1, version=point.projection.version
        )
    # Documented as RosterView; sent with its cursor made opaque (see _roster_out).
    return cast(
        "Response[list[RosterView]]",
        page_response(
            request,
            [_roster_out(v) for v in views],
            limit=limit,
            sort_key=_meeting_key,
            at=at,
            headers=point.headers,
            max_bytes=runtime.settings.view_page_max_bytes,
        ),
    )


@get(
    "/meetings/{meeting_id:str}",
    operation_id="getMeeting",
    summary="A meeting's delegation roster: who is invited, who leads each delegation",
    description="Host, place, current date window and its revisions, status; per faction: "
    "invited, confirmed or declined, delegation leader and members as reported, and the "
    "outcome on the meeting's declarations. With `as_of` or `as_of_cursor`, the roster as it "
    "stood then, read by index like the live one.",
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
    point = await pin(runtime, "roster", reflect=reflect, as_of=as_of, as_of_cursor=as_of_cursor)
    async with view_connection(runtime) as conn:
        at = await checkpoint_here(conn, point)
        view = await get_roster(conn, meeting_id, at=at, version=point.projection.version)
    if view is None:
        raise problem(404, f"no meeting {meeting_id!r} is known (at that moment)")
    return Response(cast("RosterView", _roster_out(view)), headers=point.headers)
