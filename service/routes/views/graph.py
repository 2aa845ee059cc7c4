"""The contact graph."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.params import QueryParameter

from projections.contacts import (
    GraphEdge,
    contact_graph,
)
from service.auth import require
from service.requests import runtime_of
from service.routes.views.common import (
    ReflectParam,
    actor_id_of,
    consistency,
)
from service.schemas import errors


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
    reflect: ReflectParam = None,
) -> Response[list[GraphEdge]]:
    """The contact graph."""
    runtime = runtime_of(request)
    projection, headers = await consistency(runtime, "contacts", reflect)
    actor_id = await actor_id_of(runtime, actor, projection.version) if actor else None
    edges = await contact_graph(
        runtime.pool, actor_id=actor_id, kind=kind, version=projection.version
    )
    return Response(edges, headers=headers)
