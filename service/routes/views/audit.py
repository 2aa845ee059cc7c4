"""Audit trails."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from projections.audit import AuditEntry, audit_trail
from service.auth import require
from service.problems import problem
from service.requests import runtime_of
from service.routes.views.common import (
    VIEW_ERRORS,
    ReflectParam,
    consistency,
)


@get(
    "/audit/{item:str}",
    operation_id="getAuditTrail",
    summary="An item's audit trail: what was reported, corroborated, corrected, retracted",
    description="`item` is a stream id (`interaction-lavrov_call`) or an event id. Oldest "
    "first, with when and by whom (the API key) each was recorded.",
    tags=["audit"],
    opt=require("read"),
    responses=VIEW_ERRORS,
)
async def audit(
    request: Request[Any, Any, Any], item: FromPath[str], reflect: ReflectParam = None
) -> Response[list[AuditEntry]]:
    """An audit trail."""
    runtime = runtime_of(request)
    projection, headers = await consistency(runtime, "audit", reflect)
    table = getattr(projection, "table", f"audit_v{projection.version}")
    trail = await audit_trail(runtime.pool, item, table=table)
    if not trail:
        raise problem(404, f"nothing has been recorded about {item!r}")
    return Response(trail, headers=headers)
