"""The actor directory and contact histories, live or as of a past moment, in pages.

Every answer reads the contacts projection's rows current at one cursor
(``projections.system_time``): the projection's checkpoint, read in the same snapshot as the
rows (the live view), or the ``as_of``/``as_of_cursor`` point (an as-of view, through the same
indexes). A walk's later pages read at the cursor its token carries.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter

from events.records import START, Cursor
from projections.contacts import (
    ActorView,
    HistoryEntry,
    HistoryKey,
    SearchKey,
    contact_history,
    get_actor,
    history_key,
    search_actors_keyed,
)
from projections.contacts.schema import ORDERED_SCANS_SQL
from projections.runner import checkpoint_of, wait_for_cursor
from service.auth import require
from service.paging import (
    DEFAULT_LIMIT,
    After,
    Limit,
    PageToken,
    page_response,
    read_token,
    view_connection,
)
from service.problems import problem
from service.requests import cursor_param, runtime_of, time_param
from service.routes.views.common import (
    VIEW_ERRORS,
    AsOfCursorParam,
    AsOfParam,
    ReflectParam,
    actor_id_of,
    consistency,
)
from service.schemas import errors

if TYPE_CHECKING:
    import asyncpg

    from projections.runner import Projection
    from service.runtime import Runtime

# The last event recorded at or before a time: where an as-of time reads the views.
CURSOR_AT_SQL: Final = """
SELECT transaction_id, position FROM events WHERE recorded_at <= $1
ORDER BY recorded_at DESC, transaction_id DESC, position DESC LIMIT 1
"""


async def cursor_at(conn: asyncpg.Connection | asyncpg.Pool, when: datetime) -> Cursor:
    """The feed cursor of the last event recorded at or before ``when`` (``START``: none)."""
    row = await conn.fetchrow(CURSOR_AT_SQL, when)
    return START if row is None else Cursor(row["transaction_id"], row["position"])


class _Point:
    """Where a request reads the views: the as-of cursor asked for (waited for, bounded, when
    the projection has not reached it), the walk's cursor, or the live checkpoint."""

    def __init__(self, at: Cursor | None, headers: dict[str, str]) -> None:
        self.at = at
        self.headers = headers

    async def cursor(self, conn: asyncpg.Connection, projection: Projection) -> Cursor:
        """The cursor to read at; the live one is the checkpoint in ``conn``'s snapshot."""
        if self.at is None:
            self.at, _ = await checkpoint_of(conn, projection.name, projection.version)
            self.headers["Diplofeed-Position"] = self.at.encode()
        return self.at


async def _point(
    runtime: Runtime,
    projection: Projection,
    headers: dict[str, str],
    *,
    token: PageToken | None,
    as_of: datetime | None,
    as_of_cursor: Cursor | None,
) -> _Point:
    if token is not None:
        if token.cursor is None:
            raise problem(400, "after: the token is not one of this view's")
        return _Point(token.cursor, {**headers, "Diplofeed-Position": token.cursor.encode()})
    if as_of is None and as_of_cursor is None:
        return _Point(None, headers)
    wanted = [c for c in (as_of_cursor,) if c is not None]
    if as_of is not None:
        wanted.append(await cursor_at(runtime.pool, as_of))
    at = min(wanted)
    reached = await wait_for_cursor(
        runtime.pool, projection, at, within=runtime.settings.read_your_writes_max_s
    )
    out = {
        "Diplofeed-Position": at.encode(),
        "Diplofeed-Stale": "false" if reached else "true",
        "Cache-Control": "no-cache",
    }
    if as_of is not None:
        out["Diplofeed-As-Of"] = as_of.isoformat()
    return _Point(at, out)


async def _actor_at(
    conn: asyncpg.Connection, runtime: Runtime, ref: str, version: int, at: Cursor
) -> str:
    """The id of the actor ``ref`` names at ``at`` (an id, one merged into another by then),
    else by any spelling the directory knows."""
    known = await get_actor(conn, ref, at=at, version=version)
    return known.actor_id if known is not None else await actor_id_of(runtime, ref, version)


@get(
    "/actors",
    operation_id="searchActors",
    summary="Search actors by name or alias (any spelling)",
    description="Exact and prefix matches on ids, names and aliases, in pages ordered exact "
    "matches first, then by canonical name, then by actor id. If there are none at all, the "
    "closest spellings (transliteration variants, typos) from the name index: at most "
    "`limit`, closest first, on one page.",
    tags=["actors"],
    opt=require("read"),
    responses=VIEW_ERRORS,
)
async def actors(
    request: Request[Any, Any, Any],
    *,
    name: Annotated[str, QueryParameter(name="name", min_length=1, max_length=300)],
    limit: Limit = DEFAULT_LIMIT,
    after: After = None,
    reflect: ReflectParam = None,
    as_of: AsOfParam = None,
    as_of_cursor: AsOfCursorParam = None,
) -> Response[list[ActorView]]:
    """Actor search."""
    runtime = runtime_of(request)
    token = read_token(request, after)
    projection, headers = await consistency(runtime, "contacts", reflect)
    point = await _point(
        runtime,
        projection,
        headers,
        token=token,
        as_of=time_param(as_of),
        as_of_cursor=cursor_param(as_of_cursor, "as_of_cursor"),
    )
    version = projection.version
    async with view_connection(runtime) as conn:
        at = await point.cursor(conn, projection)
        try:
            found = await search_actors_keyed(
                conn,
                name,
                at=at,
                after=_search_key(token),
                limit=limit + 1,
                version=version,
            )
        except ValueError as exc:
            raise problem(400, "after: the token is not one of this search's") from exc
        if not found and token is None:
            await runtime.handler.refresh_directory()
            for match in runtime.handler.directory.candidates(name, limit=limit):
                view = await get_actor(conn, match.actor_id, at=at, version=version)
                if view is not None:
                    found.append((view, (False, view.canonical_name, view.actor_id)))
            found = found[:limit]
    keys = {id(view): key for view, key in found}
    return page_response(
        request,
        [view for view, _ in found],
        limit=limit,
        sort_key=lambda view: keys[id(view)],
        at=at,
        headers=point.headers,
        max_bytes=runtime.settings.view_page_max_bytes,
    )


def _search_key(token: PageToken | None) -> SearchKey | None:
    if token is None:
        return None
    if len(token.key) != 3:
        raise problem(400, "after: the token is not one of this search's")
    exact, canonical_name, actor_id = token.key
    return (exact, canonical_name, actor_id)  # type: ignore[return-value]  # checked by the query


@get(
    "/actors/{actor:str}",
    operation_id="getActor",
    summary="An actor with its aliases and roles (by id or any spelling of its name)",
    tags=["actors"],
    opt=require("read"),
    responses=errors(400, 404, 422),
)
async def actor(
    request: Request[Any, Any, Any],
    actor: FromPath[str],
    reflect: ReflectParam = None,
    as_of: AsOfParam = None,
    as_of_cursor: AsOfCursorParam = None,
) -> Response[ActorView]:
    """One actor."""
    runtime = runtime_of(request)
    projection, headers = await consistency(runtime, "contacts", reflect)
    point = await _point(
        runtime,
        projection,
        headers,
        token=None,
        as_of=time_param(as_of),
        as_of_cursor=cursor_param(as_of_cursor, "as_of_cursor"),
    )
    async with view_connection(runtime) as conn:
        at = await point.cursor(conn, projection)
        actor_id = await _actor_at(conn, runtime, actor, projection.version, at)
        view = await get_actor(conn, actor_id, at=at, version=projection.version)
    if view is None:
        detail = (
            f"actor {actor!r} is registered but not yet projected; retry"
            if as_of is None and as_of_cursor is None
            else f"actor {actor!r} was not registered at that moment"
        )
        raise problem(404, detail)
    return Response(view, headers=point.headers)


@get(
    "/actors/{actor:str}/contacts",
    operation_id="getContactHistory",
    summary="An actor's contact history, newest first",
    description="Every interaction involving the actor, with counterpart, kind, CAMEO and "
    "PLOVER codes, EDTF date with bounds and precision, place, modality and sources. An "
    "organisation's history includes its members' interactions while they held a role in "
    "it (marked `via`). Aggregate reports ('several times') appear once, as reported. "
    "Order, newest first: by the upper bound of the date, then by its lower bound (both "
    "descending; an open bound comes after every known one), then by interaction id "
    "(ascending).",
    tags=["actors"],
    opt=require("read"),
    responses=errors(400, 404, 422),
)
async def contacts(
    request: Request[Any, Any, Any],
    *,
    actor: FromPath[str],
    counterpart: Annotated[str | None, QueryParameter(name="counterpart", max_length=300)] = None,
    kind: Annotated[
        Literal["phone_call", "meeting", "visit", "address", "contacts", "statement", "apology"]
        | None,
        QueryParameter(name="kind"),
    ] = None,
    start: Annotated[
        date | None, QueryParameter(name="from", description="Window start (day).")
    ] = None,
    end: Annotated[date | None, QueryParameter(name="to", description="Window end (day).")] = None,
    window: Annotated[
        Literal["certain", "possible"],
        QueryParameter(
            name="window",
            description="`certain`: the interaction's date bounds lie "
            "inside the window; `possible`: they overlap it.",
        ),
    ] = "possible",
    members: Annotated[
        bool, QueryParameter(name="members", description="Include members' interactions.")
    ] = True,
    limit: Limit = DEFAULT_LIMIT,
    after: After = None,
    reflect: ReflectParam = None,
    as_of: AsOfParam = None,
    as_of_cursor: AsOfCursorParam = None,
) -> Response[list[HistoryEntry]]:
    """A contact history."""
    runtime = runtime_of(request)
    token = read_token(request, after)
    if start is not None and end is not None and end < start:
        raise problem(
            400,
            f"the window ends ({end}) before it starts ({start})",
            errors=[{"field": "query:to", "reason": "before query:from"}],
        )
    projection, headers = await consistency(runtime, "contacts", reflect)
    point = await _point(
        runtime,
        projection,
        headers,
        token=token,
        as_of=time_param(as_of),
        as_of_cursor=cursor_param(as_of_cursor, "as_of_cursor"),
    )
    version = projection.version
    async with view_connection(runtime) as conn:
        at = await point.cursor(conn, projection)
        actor_id = await _actor_at(conn, runtime, actor, version, at)
        counterpart_id = (
            await _actor_at(conn, runtime, counterpart, version, at) if counterpart else None
        )
        # The history is this transaction's last statement: the setting ends with it.
        await conn.execute(ORDERED_SCANS_SQL)
        try:
            entries = await contact_history(
                conn,
                actor_id,
                at=at,
                after=_history_key(token),
                limit=limit + 1,
                counterpart=counterpart_id,
                kind=kind,
                window=(start, end) if start or end else None,
                window_mode=window,
                as_person_only=not members,
                version=version,
            )
        except ValueError as exc:
            raise problem(400, "after: the token is not one of this history's") from exc
    return page_response(
        request,
        entries,
        limit=limit,
        sort_key=history_key,
        at=at,
        headers=point.headers,
        max_bytes=runtime.settings.view_page_max_bytes,
    )


def _history_key(token: PageToken | None) -> HistoryKey | None:
    if token is None:
        return None
    if len(token.key) != 3:
        raise problem(400, "after: the token is not one of this history's")
    upper, lower, interaction_id = token.key
    return (upper, lower, interaction_id)  # type: ignore[return-value]  # checked by the query
