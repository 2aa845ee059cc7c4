"""What every view route shares: the consistency headers (position, staleness, read your
writes), the as-of parameters and actor references by any spelling."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Final, NamedTuple

import msgspec
from litestar.params import QueryParameter

from events.domain.errors import AmbiguousActorError, UnknownActorError
from events.records import CURSOR_LENGTH, CURSOR_PATTERN
from projections.contacts import (
    get_actor,
)
from projections.runner import checkpoint_of
from service.paging import view_connection
from service.problems import problem
from service.requests import check_issued, cursor_param, time_param
from service.schemas import errors

if TYPE_CHECKING:
    import asyncpg

    from events.records import Cursor
    from projections.runner import Projection
    from service.paging import PageToken
    from service.runtime import Runtime

__all__ = (
    "VIEW_ERRORS",
    "AsOfCursorParam",
    "AsOfParam",
    "ReflectParam",
    "ViewPoint",
    "actor_id_of",
    "as_of_headers",
    "consistency",
    "pin",
)

ReflectParam = Annotated[
    str | None,
    QueryParameter(
        name="reflect",
        description="A feed cursor (from a write's `cursor`) the view "
        "must include: waits for it, bounded, and says `Diplofeed-Stale: true` if it "
        "could not.",
        pattern=CURSOR_PATTERN,
        max_length=CURSOR_LENGTH,
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
        pattern=CURSOR_PATTERN,
        max_length=CURSOR_LENGTH,
    ),
]

VIEW_ERRORS: Final = errors(400, 404)

# Whether a projection at its checkpoint ($1/$2) already shows the log at $3/$4: everything up
# to $3/$4 is committed (below the horizon) and none of it after the checkpoint is an event of
# the projection's categories ($5). Asked only when the process's feed hub cannot tell (it
# started after the checkpoint); bounded by the view's statement timeout.
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


class ViewPoint(NamedTuple):
    """Where a view request reads."""

    projection: Projection
    """The version that serves the read."""
    at: Cursor | None
    """The system-time cursor it reads at; ``None``: the projection's checkpoint, to be read in
    the request's snapshot (``service.paging.view_connection``), which is the live view."""
    headers: dict[str, str]
    """What the answer reflects (position, staleness, the as-of point)."""


async def consistency(
    runtime: Runtime, name: str, reflect: str | None
) -> tuple[Projection, dict[str, str]]:
    """The live projection, after waiting for ``reflect``, and the headers saying what the
    answer reflects.

    ``reflect`` is shown once the projection has applied everything of its own categories up
    to it: a write to a category the view does not read (an actor registered, then the
    meetings read) is reflected at once rather than after the whole bound.
    """
    projection = await runtime.live.projection(name)
    wanted = cursor_param(reflect, "reflect")
    reached = True
    if wanted is not None:
        await check_issued(runtime, wanted, "reflect")
        reached = await _wait_until_shown(runtime, projection, wanted)
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
            candidates=msgspec.to_builtins(exc.candidates),
        ) from exc


async def pin(
    runtime: Runtime,
    name: str,
    *,
    reflect: str | None,
    as_of: datetime | None,
    as_of_cursor: str | None,
    token: PageToken | None = None,
) -> ViewPoint:
    """Where a read of projection ``name`` is pinned: the walk's cursor for a following page,
    the ``as_of_cursor`` asked for, the last event recorded at or before ``as_of`` (by index),
    else the live view (its checkpoint, after waiting for ``reflect``).

    An as-of point the projection has not reached yet is waited for, bounded; the answer then
    says ``Diplofeed-Stale: true`` if it could not get there in time.
    """
    if token is not None:
        # The walk's cursor, whatever the checkpoint has reached since its first page.
        if token.cursor is None:
            raise problem(400, "after: the token is not one of this view's")
        projection = await runtime.live.projection(name)
        return ViewPoint(projection, token.cursor, as_of_headers(None, token.cursor))
    at = cursor_param(as_of_cursor, "as_of_cursor")
    when = time_param(as_of)
    if at is not None and when is not None:
        raise problem(
            400,
            "give as_of or as_of_cursor, not both",
            errors=[{"field": "query:as_of", "reason": "given with query:as_of_cursor"}],
        )
    if at is None and when is None:
        projection, headers = await consistency(runtime, name, reflect)
        return ViewPoint(projection, None, headers)
    if at is not None:
        await check_issued(runtime, at, "as_of_cursor")
    projection = await runtime.live.projection(name)
    if at is None:
        assert when is not None  # noqa: S101 (one of the two is set)
        at = await runtime.store.cursor_at(when)
    reached = await _wait_until_shown(runtime, projection, at)
    headers = as_of_headers(when, at)
    headers["Diplofeed-Stale"] = "false" if reached else "true"
    return ViewPoint(projection, at, headers)


async def checkpoint_here(conn: asyncpg.Connection, point: ViewPoint) -> Cursor:
    """The cursor the read is pinned to, inside the request's snapshot: the checkpoint for a
    live read (which then becomes the ``Diplofeed-Position`` the answer reflects)."""
    if point.at is not None:
        return point.at
    at, _ = await checkpoint_of(conn, point.projection.name, point.projection.version)
    point.headers["Diplofeed-Position"] = at.encode()
    return at


async def _wait_until_shown(runtime: Runtime, projection: Projection, at: Cursor) -> bool:
    """Wait, at most ``read_your_writes_max_s``, until the projection shows the log at ``at``:
    its checkpoint has reached ``at``, or no event it reads lies between the two. The
    checkpoint moves only with the projection's own categories, so a point on another
    category's event (what ``as_of=<time>`` often maps to) would otherwise wait for the next
    event of its own."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + runtime.settings.read_your_writes_max_s
    categories = projection.filter.category_list() if projection.filter else None
    asked_database = False
    while True:
        reached, _ = await checkpoint_of(runtime.pool, projection.name, projection.version)
        if reached >= at:
            return True
        hub = runtime.hub
        if hub.end >= at and reached >= hub.began:
            # The hub saw every event since it began, and the checkpoint is past that.
            seen = hub.latest_by_category
            wanted = seen.values() if categories is None else (seen.get(c) for c in categories)
            if all(c is None or c <= reached for c in wanted):
                return True
        elif not asked_database:
            asked_database = True
            async with view_connection(runtime) as conn:
                if await conn.fetchval(
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
