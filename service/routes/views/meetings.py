"""Meetings and their delegation rosters, live or as of an earlier point, read by index.

Every read is pinned to one feed cursor: the roster projection's checkpoint (read in the same
snapshot as the rows: the live view), the ``as_of_cursor`` asked for, or the last event recorded
at or before ``as_of``. A walk of ``/meetings`` keeps the cursor of its first page in its
``after`` token, so writes landing meanwhile neither repeat nor skip a meeting.

The projection stores each roster as the JSON these routes send (``projections.roster``), so
a page is its rows' bytes passed through: nothing is decoded or encoded per roster here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

import msgspec
from litestar import Request, Response, get
from litestar.params import FromPath

from projections.roster import RosterView, meetings_json, roster_json
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


class _MeetingId(msgspec.Struct):
    meeting_id: str


_ID_DECODER: Final = msgspec.json.Decoder(_MeetingId)


def _meeting_key(entry: msgspec.Raw) -> SortKey:
    # Read once a page, for the last entry's place in the next link.
    return (_ID_DECODER.decode(entry).meeting_id,)


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
        rows = await meetings_json(
            conn, at=at, after=after_id, limit=limit + 1, version=point.projection.version
        )
    # Documented as RosterView; sent as stored.
    return cast(
        "Response[list[RosterView]]",
        page_response(
            request,
            [msgspec.Raw(body) for body in rows],
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
    description="Host, place, current date window and its revisions, status (`held` once an "
    "interaction records that the meeting took place); per faction: invited, confirmed or "
    "declined, and every invitation and answer in the order recorded, each with when it was "
    "recorded and its sources; delegation leader and members as reported, and the outcome on "
    "the meeting's declarations. Lists are always sent, `[]` when empty. With `as_of` or "
    "`as_of_cursor`, the roster as it stood then, read by index like the live one.",
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
        body = await roster_json(conn, meeting_id, at=at, version=point.projection.version)
    if body is None:
        raise problem(404, f"no meeting {meeting_id!r} is known (at that moment)")
    # Documented as RosterView; sent as stored.
    return Response(cast("RosterView", body), headers=point.headers, media_type="application/json")
