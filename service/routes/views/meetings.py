"""Meetings and their delegation rosters, live or as of an earlier point, read by index.

Every read is pinned to one feed cursor: the roster projection's checkpoint (read in the same
snapshot as the rows: the live view), the ``as_of_cursor`` asked for, or the last event recorded
at or before ``as_of``. A walk of ``/meetings`` keeps the cursor of its first page in its
``after`` token, so writes landing meanwhile neither repeat nor skip a meeting.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final, cast

import msgspec
from litestar import Request, Response, get
from litestar.params import FromPath

from events.records import START, Cursor
from projections.roster import RosterView, get_roster, list_meetings
from projections.runner import checkpoint_of
from service.auth import require
from service.paging import DEFAULT_LIMIT, After, Limit, page_response, read_token, view_connection
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

if TYPE_CHECKING:
    from datetime import datetime

    import asyncpg

    from projections.runner import Projection
    from service.paging import SortKey
    from service.runtime import Runtime

# The last event recorded at or before $1 (START when none): ``as_of=<time>`` as a cursor.
CURSOR_AT_SQL: Final = """
SELECT transaction_id, position FROM events WHERE recorded_at <= $1
ORDER BY recorded_at DESC, transaction_id DESC, position DESC
LIMIT 1
"""


# True when the roster at $3/$4 is the roster at its checkpoint ($1/$2): everything up to $3/$4
# is committed (below the horizon) and none of it between the two is an event the roster reads.
# The checkpoint only moves with a batch of the roster's own events, so an as-of point on an
# event it does not read (an actor's) would otherwise be waited for until the next meeting event.
NOTHING_BETWEEN_SQL: Final = """
WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
SELECT $3::xid8 < horizon.xmin AND NOT EXISTS (
    SELECT 1 FROM events
    WHERE (transaction_id, position) > ($1::xid8, $2::bigint)
      AND (transaction_id, position) <= ($3::xid8, $4::bigint)
      AND ($5::text[] IS NULL OR split_part(stream_id, '-', 1) = any($5::text[]))
)
FROM horizon
"""
_POLL_S: Final = 0.05


async def _cursor_at(conn: asyncpg.Connection | asyncpg.Pool, when: datetime) -> Cursor:
    row = await conn.fetchrow(CURSOR_AT_SQL, when)
    return START if row is None else Cursor(row["transaction_id"], row["position"])


async def _wait_for(runtime: Runtime, projection: Projection, at: Cursor) -> bool:
    """Wait, at most ``read_your_writes_max_s``, until the roster at ``at`` can be read:
    its checkpoint has reached ``at``, or nothing it reads lies between them. ``False`` when
    it could not in time (the answer then says it is stale)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + runtime.settings.read_your_writes_max_s
    categories = projection.filter.category_list() if projection.filter else None
    while True:
        reached, _ = await checkpoint_of(runtime.pool, projection.name, projection.version)
        if reached >= at or await runtime.pool.fetchval(
            NOTHING_BETWEEN_SQL,
            reached.transaction_id,
            reached.position,
            at.transaction_id,
            at.position,
            categories,
        ):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(min(_POLL_S, max(deadline - loop.time(), 0.0)))


def _roster_out(view: RosterView) -> dict[str, Any]:
    """The roster with its cursor opaque, as everywhere else in the API."""
    out: dict[str, Any] = msgspec.to_builtins(view)
    out["as_of"]["cursor"] = view.as_of.cursor.encode()
    return out


def _meeting_key(entry: dict[str, Any]) -> SortKey:
    return (entry["meeting_id"],)


async def _pin(
    runtime: Runtime,
    reflect: str | None,
    as_of: datetime | None,
    as_of_cursor: str | None,
) -> tuple[Projection, Cursor | None, dict[str, str]]:
    """The projection that serves the read, the cursor it reads at (``None``: its checkpoint,
    to be read in the view's snapshot) and the headers saying what the answer reflects.

    An as-of point beyond the checkpoint is waited for (``_wait_for``), bounded; the answer
    then says ``Diplofeed-Stale: true`` if the projection did not get there in time.
    """
    at = cursor_param(as_of_cursor, "as_of_cursor")
    when = time_param(as_of)
    if at is None and when is None:
        projection, headers = await consistency(runtime, "roster", reflect)
        return projection, None, headers
    projection = await runtime.live.projection("roster")
    if at is None and when is not None:
        at = await _cursor_at(runtime.pool, when)
    assert at is not None  # noqa: S101 (one of the two is set)
    reached = await _wait_for(runtime, projection, at)
    headers = as_of_headers(when, at)
    headers["Diplofeed-Stale"] = "false" if reached else "true"
    return projection, at, headers


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
    if token is None:
        projection, at, headers = await _pin(runtime, reflect, as_of, as_of_cursor)
    else:
        # The walk's cursor, whatever the checkpoint has reached since its first page.
        at = token.cursor
        if at is None or len(token.key) != 1 or not isinstance(token.key[0], str):
            raise problem(400, "after: the token is not one of /meetings")
        after_id = token.key[0]
        projection = await runtime.live.projection("roster")
        headers = as_of_headers(None, at)
    async with view_connection(runtime) as conn:
        if at is None:
            at, _ = await checkpoint_of(conn, projection.name, projection.version)
            headers["Diplofeed-Position"] = at.encode()
        views = await list_meetings(
            conn, at=at, after=after_id, limit=limit + 1, version=projection.version
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
            headers=headers,
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
    projection, at, headers = await _pin(runtime, reflect, as_of, as_of_cursor)
    async with view_connection(runtime) as conn:
        if at is None:
            at, _ = await checkpoint_of(conn, projection.name, projection.version)
            headers["Diplofeed-Position"] = at.encode()
        view = await get_roster(conn, meeting_id, at=at, version=projection.version)
    if view is None:
        raise problem(404, f"no meeting {meeting_id!r} is known (at that moment)")
    return Response(cast("RosterView", _roster_out(view)), headers=headers)
