"""What every view route shares: the consistency headers (position, staleness, read your
writes), the as-of parameters and actor references by any spelling."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Final

from litestar.params import QueryParameter

from events.domain.errors import AmbiguousActorError, UnknownActorError
from projections.contacts import (
    get_actor,
)
from projections.runner import checkpoint_of, wait_for_cursor
from service.problems import problem
from service.requests import cursor_param
from service.schemas import errors

if TYPE_CHECKING:
    from events.records import Cursor
    from projections.runner import Projection
    from service.runtime import Runtime

__all__ = (
    "VIEW_ERRORS",
    "AsOfCursorParam",
    "AsOfParam",
    "ReflectParam",
    "actor_id_of",
    "as_of_headers",
    "consistency",
)

ReflectParam = Annotated[
    str | None,
    QueryParameter(
        name="reflect",
        description="A feed cursor (from a write's `cursor`) the view "
        "must include: waits for it, bounded, and says `Diplofeed-Stale: true` if it "
        "could not.",
    ),
]
AsOfParam = Annotated[
    datetime | None,
    QueryParameter(
        name="as_of", description="Answer as the log stood at this time (RFC 3339, with a zone)."
    ),
]
AsOfCursorParam = Annotated[
    str | None,
    QueryParameter(
        name="as_of_cursor",
        description="Answer as the log stood once this feed cursor was in (inclusive).",
    ),
]

VIEW_ERRORS: Final = errors(400, 404)


async def consistency(
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


def as_of_headers(as_of: datetime | None, cursor: Cursor | None) -> dict[str, str]:
    headers = {"Diplofeed-Stale": "false", "Cache-Control": "no-cache"}
    if cursor is not None:
        headers["Diplofeed-Position"] = cursor.encode()
    if as_of is not None:
        headers["Diplofeed-As-Of"] = as_of.isoformat()
    return headers


async def actor_id_of(runtime: Runtime, ref: str, version: int) -> str:
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
