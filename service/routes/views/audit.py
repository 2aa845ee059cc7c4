"""Audit trails."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request, Response, get
from litestar.params import FromPath

from projections.audit import AuditEntry, audit_trail
from service.auth import require
from service.paging import (
    DEFAULT_LIMIT,
    After,
    Limit,
    page_response,
    read_token,
    view_connection,
)
from service.problems import problem
from service.requests import runtime_of
from service.routes.views.common import (
    VIEW_ERRORS,
    ReflectParam,
    consistency,
)

if TYPE_CHECKING:
    from service.paging import PageToken


@get(
    "/audit/{item:str}",
    operation_id="getAuditTrail",
    summary="An item's audit trail: what was reported, corroborated, corrected, retracted",
    description="`item` is a stream id (`interaction-lavrov_call`) or an event id (the event "
    "and what amends it). Oldest first: in the order the events were appended to the log (log "
    "position), with when and by whom (the API key) each was recorded. A correction says what "
    "it changed: `changes` holds each corrected field's new value, `before` the same fields as "
    "they stood just before it (the fact as recorded, earlier corrections applied). "
    'Paginated: follow `Link: rel="next"` while it is present; a trail only ever grows at its '
    "end, so a walk never repeats an entry. 404 when nothing has been recorded about the item.",
    tags=["audit"],
    opt=require("read"),
    responses=VIEW_ERRORS,
)
async def audit(
    request: Request[Any, Any, Any],
    item: FromPath[str],
    *,
    limit: Limit = DEFAULT_LIMIT,
    after: After = None,
    reflect: ReflectParam = None,
) -> Response[list[AuditEntry]]:
    """An audit trail, a page at a time."""
    runtime = runtime_of(request)
    token = read_token(request, after)
    start = _position_after(token)
    projection, headers = await consistency(runtime, "audit", reflect)
    table = getattr(projection, "table", f"audit_v{projection.version}")
    async with view_connection(runtime) as conn:
        rows = await audit_trail(conn, item, table=table, after=start, limit=limit + 1)
    if not rows and token is None:
        raise problem(404, f"nothing has been recorded about {item!r}")
    # One row per event: the event id names the entry, and its position is the page's key.
    position_of = {entry.event_id: position for position, entry in rows}
    # The audit table is not versioned in system time: rows are only ever added, each at its
    # event's position, so a walk by position needs no pinned moment (the token's is empty).
    return page_response(
        request,
        [entry for _, entry in rows],
        limit=limit,
        sort_key=lambda entry: (position_of[entry.event_id],),
        at=None,
        headers=headers,
        max_bytes=runtime.settings.view_page_max_bytes,
    )


def _position_after(token: PageToken | None) -> int | None:
    """The position the token's page ended at (``None``: a first page)."""
    if token is None:
        return None
    match token.key:
        case (int() as position,) if not isinstance(position, bool) and position >= 0:
            return position
        case _:
            raise problem(
                400,
                "after: the token is not one of this trail's",
                errors=[{"field": "query:after", "reason": "not a position in an audit trail"}],
            )
