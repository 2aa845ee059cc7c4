"""The contact graph, a page at a time."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Request, Response, get
from litestar.params import QueryParameter

from projections.graph import GraphEdge, GraphKey, graph_page
from service.auth import require
from service.paging import DEFAULT_LIMIT, After, Limit, page_response, read_token, view_connection
from service.problems import problem
from service.requests import runtime_of
from service.routes.views.common import (
    ReflectParam,
    actor_id_of,
    consistency,
)
from service.schemas import errors

OrderParam = Annotated[
    Literal["pair", "weight"],
    QueryParameter(
        name="order",
        description="`pair` (default): edges by `a`, `b`, `kind`, `year`; with `actor`, by "
        "counterpart, `kind`, `year`. `weight` (with `actor` only): the actor's counterparts "
        "heaviest first, weight being the sum of `possible` over the pair's edges (of `kind` "
        "only, when given), then of `certain`, ties by id; each pair's edges by `kind`, "
        "`year`.",
    ),
]


@get(
    "/graph",
    operation_id="getContactGraph",
    summary="Who met whom and how often: interaction counts per pair, kind and year",
    description="Counts are `certain` (both date bounds in the year) and `possible` (the "
    "bounds overlap the year). Retracted interactions and negated statements are left out. "
    "An open bound is bounded by what the log knows of the two actors: each actor's span "
    "runs from the first year any of its facts covers to the last (its interactions, the "
    "roles it holds and the roles held in it; a fact covers from its lower bound's year, else "
    "its upper's, to its upper bound's, else its lower's). An interaction with an open lower "
    'bound ("before February 2024") is possible in every year from the first year of either '
    "actor's span to its known bound; with an open upper bound, from its known bound to the "
    "last year of either span; with no bound at all, in every year of the two spans, and in "
    "none if neither actor has one. Pages of `limit` edges in the `order` "
    'chosen, `Link: rel="next"` while more remain. The graph is counted as the log stands '
    "(no as-of): in `weight` order, a counterpart whose weight changes during a walk may move "
    "past the walk's position.",
    tags=["actors"],
    opt=require("read"),
    responses=errors(400, 404, 422, 503),
)
async def graph(
    request: Request[Any, Any, Any],
    *,
    actor: Annotated[str | None, QueryParameter(name="actor", max_length=300)] = None,
    kind: Annotated[str | None, QueryParameter(name="kind", max_length=50)] = None,
    order: OrderParam = "pair",
    limit: Limit = DEFAULT_LIMIT,
    after: After = None,
    reflect: ReflectParam = None,
) -> Response[list[GraphEdge]]:
    """A page of the contact graph."""
    runtime = runtime_of(request)
    token = read_token(request, after)
    if order == "weight" and actor is None:
        raise problem(
            400,
            "order=weight orders an actor's counterparts: give `actor`",
            errors=[{"field": "query:order", "reason": "weight needs actor"}],
        )
    projection, headers = await consistency(runtime, "contacts", reflect)
    actor_id = await actor_id_of(runtime, actor, projection.version) if actor else None
    async with view_connection(runtime) as conn:
        try:
            rows = await graph_page(
                conn,
                limit=limit,
                actor_id=actor_id,
                kind=kind,
                order=order,
                after=token.key if token is not None else None,  # type: ignore[arg-type]
                version=projection.version,
            )
        except ValueError as exc:
            raise problem(
                400,
                "after: the token is not one of this order",
                errors=[{"field": "query:after", "reason": str(exc)}],
            ) from exc
    keys: dict[GraphEdge, GraphKey] = {edge: key for key, edge in rows}
    return page_response(
        request,
        [edge for _, edge in rows],
        limit=limit,
        sort_key=keys.__getitem__,
        at=None,
        headers=headers,
        max_bytes=runtime.settings.view_page_max_bytes,
    )
