"""The feed as HTTP: pages of CloudEvents with cursors and links, long polls, a live stream
(SSE), and single streams.

Caching: a full page (``limit`` events) lies wholly below the feed's visibility horizon, and
nothing can ever be added below the horizon, so the page at that URL never changes: it is served
``immutable`` with a strong ETag, and any cache or CDN may keep it for ever. The head page (not
full) is revalidated with ``If-None-Match``.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING, Annotated, Any, Final, cast
from urllib.parse import quote, urlencode

from litestar import Request, Response, get
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.response import ServerSentEventMessage, Stream

from events.records import (
    ACTOR_ID_PATTERN,
    CURSOR_LENGTH,
    CURSOR_PATTERN,
    START,
    Cursor,
    FeedFilter,
)
from service.auth import require
from service.cloudevents import (
    BATCH_MEDIA_TYPE,
    CloudEvent,
    encode_batch,
    encode_shared,
    to_cloudevent,
)
from service.problems import problem
from service.requests import (
    base_url,
    check_issued,
    cursor_param,
    parse_prefer_wait,
    runtime_of,
)
from service.schemas import StreamPage, errors

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from events.records import FeedPage

__all__ = ("feed_page", "feed_stream", "read_stream")

MAX_VERSION: Final = 2**63 - 1
"""The largest stream version PostgreSQL's bigint holds."""
FEED_FORMAT: Final = "cloudevents-1.0/diplofeed-1"
"""The wire format of feed pages, part of every page's ETag."""
IMMUTABLE: Final = "public, max-age=31536000, immutable"
REVALIDATE: Final = "no-cache"
_OPENING: Final = ServerSentEventMessage(
    comment="diplofeed live stream", data=None, retry=2000
).encode()
_HEARTBEAT: Final = ServerSentEventMessage(comment="heartbeat", data=None).encode()
# What Litestar's ServerSentEvent sets; the stream is a plain Stream so that it can write many
# messages at once.
_STREAM_HEADERS: Final = {
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
}

_After = Annotated[
    str | None,
    QueryParameter(
        name="after",
        description="Opaque cursor from a previous page's `Link: rel=next` (or an event's "
        "`cursor`); omit to start at the beginning of the feed.",
        pattern=CURSOR_PATTERN,
        max_length=CURSOR_LENGTH,
    ),
]
_Type = Annotated[
    str | None,
    QueryParameter(
        name="type",
        description="Only events whose type starts with this prefix "
        "(`meeting.` or `meeting.delegation_leader_named.v1`).",
        max_length=200,
    ),
]
_Category = Annotated[
    list[str] | None,
    QueryParameter(
        name="category",
        description="Only streams of these categories (`actor`, "
        "`interaction`, `meeting`, `declaration`); repeatable.",
    ),
]
_Actor = Annotated[
    str | None,
    QueryParameter(
        name="actor",
        description="Only events about this actor id: its own stream's and every event naming it "
        "(a string value anywhere in its data equal to the id). A value that cannot be an actor "
        "id is refused (400).",
        pattern=f"^{ACTOR_ID_PATTERN}$",
    ),
]
_Stream = Annotated[
    str | None,
    QueryParameter(
        name="stream", description="Only this stream (`meeting-moscow_2024`).", max_length=300
    ),
]


def _query(after: Cursor, limit: int, flt: FeedFilter | None) -> str:
    pairs: list[tuple[str, str]] = [("after", after.encode()), ("limit", str(limit))]
    if flt is not None:
        if flt.type_prefix:
            pairs.append(("type", flt.type_prefix))
        pairs.extend(("category", c) for c in flt.categories or ())
        if flt.actor:
            pairs.append(("actor", flt.actor))
        if flt.stream_id:
            pairs.append(("stream", flt.stream_id))
    return urlencode(pairs)


@get(
    "/feed",
    operation_id="readFeed",
    summary="Read a page of the feed (CloudEvents batch), with long polling",
    description="Events in the feed's one total order after `after`, as a CloudEvents 1.0 "
    'JSON batch. Follow `Link: rel="next"` (also in `Diplofeed-Cursor`) to continue; every '
    "follower sees each committed event exactly once, in the same order. Full pages never "
    "change and are cacheable for ever. With `Prefer: wait=N` an empty page is held up to N "
    "seconds (bounded) and answered as soon as a matching event arrives.",
    tags=["feed"],
    opt=require("read"),
    responses=errors(400),
    media_type=BATCH_MEDIA_TYPE,
)
async def feed_page(
    request: Request[Any, Any, Any],
    *,
    after: _After = None,
    limit: Annotated[int, QueryParameter(name="limit", ge=1, le=1000)] = 100,
    type_prefix: _Type = None,
    category: _Category = None,
    actor: _Actor = None,
    stream: _Stream = None,
    prefer: Annotated[
        str | None,
        HeaderParameter(name="Prefer", description="`wait=N`: long-poll up to N seconds."),
    ] = None,
    if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None,
) -> Response[list[CloudEvent]]:
    """A page of the feed."""
    runtime = runtime_of(request)
    start = cursor_param(after, "after") or START
    flt = FeedFilter.of(type_prefix=type_prefix, categories=category, actor=actor, stream_id=stream)
    wait = parse_prefer_wait(prefer, runtime.settings.long_poll_max_s)
    page = await runtime.store.read_all(start, limit=limit, filter=flt)
    if not page.events and page.next_cursor == start:
        # At or past the horizon: the head page, or a cursor from the future.
        await check_issued(runtime, start, "after")
    if wait > 0 and not page.events:
        page = await _long_poll(request, start=start, limit=limit, flt=flt, page=page, wait=wait)
    base = base_url(request)
    link = f'<{base}/feed?{_query(page.next_cursor, limit, flt)}>; rel="next"'
    etag = _page_etag(base, _query(start, limit, flt), page.next_cursor)
    headers = {
        "Link": link,
        "Diplofeed-Cursor": page.next_cursor.encode(),
        "ETag": etag,
        "Cache-Control": IMMUTABLE if page.full else REVALIDATE,
        "Vary": "Authorization, X-API-Key, Prefer",
    }
    if wait > 0:
        headers["Preference-Applied"] = f"wait={wait:g}"
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(cast("list[CloudEvent]", b""), status_code=304, headers=headers)
    body = encode_batch(page.events, base)
    # Encoded here (data spliced in raw); documented as the CloudEvents it is.
    return Response(cast("list[CloudEvent]", body), headers=headers, media_type=BATCH_MEDIA_TYPE)


def _page_etag(base: str, request_query: str, next_cursor: Cursor) -> str:
    """A strong ETag without hashing the body: a page holds every matching event between its
    start and its next cursor, all below the horizon and so fixed for ever, so the request
    (base URL, start, limit, filters) and the next cursor determine its bytes. Bump
    ``FEED_FORMAT`` whenever the encoding changes."""
    identity = f"{FEED_FORMAT}\n{base}\n{request_query}\n{next_cursor.encode()}"
    return '"' + hashlib.sha256(identity.encode()).hexdigest()[:32] + '"'


async def _long_poll(
    request: Request[Any, Any, Any],
    *,
    start: Cursor,
    limit: int,
    flt: FeedFilter | None,
    page: FeedPage,
    wait: float,
) -> FeedPage:
    runtime = runtime_of(request)
    loop_time = asyncio.get_running_loop().time
    deadline = loop_time() + wait
    while not page.events:
        remaining = deadline - loop_time()
        if remaining <= 0:
            break
        # Woken by the process's one feed follower, not by polling the database.
        if not await runtime.hub.wait_beyond(page.next_cursor, remaining):
            break
        page = await runtime.store.read_all(start, limit=limit, filter=flt)
    return page


@get(
    "/feed/stream",
    operation_id="streamFeed",
    summary="Follow the feed live (Server-Sent Events)",
    description="Each event is one SSE message whose `data` is the CloudEvent and whose `id` "
    "is its cursor. Reconnect with `Last-Event-ID` (browsers do it by themselves) to resume "
    "exactly after the last event received. Comment lines (`: heartbeat`) keep idle "
    "connections open. Same filters as `/feed`.",
    tags=["feed"],
    opt=require("read"),
    responses=errors(400),
    media_type="text/event-stream",
)
async def feed_stream(
    request: Request[Any, Any, Any],
    *,
    after: _After = None,
    type_prefix: _Type = None,
    category: _Category = None,
    actor: _Actor = None,
    stream: _Stream = None,
    last_event_id: Annotated[
        str | None,
        HeaderParameter(
            name="Last-Event-ID",
            description="Resume after this event's cursor.",
            pattern=CURSOR_PATTERN,
            max_length=CURSOR_LENGTH,
        ),
    ] = None,
    max_events: Annotated[
        int | None,
        QueryParameter(
            name="max_events",
            ge=1,
            le=100_000,
            description="Close the stream after this many events (for batch consumers).",
        ),
    ] = None,
) -> Stream:
    """The live stream."""
    runtime = runtime_of(request)
    resume = cursor_param(last_event_id, "Last-Event-ID", where="header")
    if resume is not None:
        await check_issued(runtime, resume, "Last-Event-ID", where="header")
    given = cursor_param(after, "after")
    if given is not None:
        await check_issued(runtime, given, "after")
    start = resume or given or await runtime.store.horizon()
    flt = FeedFilter.of(type_prefix=type_prefix, categories=category, actor=actor, stream_id=stream)
    base = base_url(request)
    heartbeat = runtime.settings.sse_heartbeat_s

    async def messages() -> AsyncIterator[bytes]:
        yield _OPENING
        sent = 0
        async for events in runtime.hub.subscribe(start, filter=flt, heartbeat=heartbeat):
            if not events:
                yield _HEARTBEAT
                continue
            chunk = events if max_events is None else events[: max_events - sent]
            # One write per chunk: a backlog goes out in a few large writes, each after the
            # event loop had a turn (``FeedHub.subscribe``), so a client that hung up is seen
            # between two of them and the stream ends there.
            yield b"".join(
                ServerSentEventMessage(data=encode_shared(e, base), id=e.cursor.encode()).encode()
                for e in chunk
            )
            sent += len(chunk)
            if max_events is not None and sent >= max_events:
                return

    return Stream(messages(), media_type="text/event-stream", headers=_STREAM_HEADERS)


@get(
    "/streams/{stream_id:str}",
    operation_id="readStream",
    summary="Read one stream's events (CloudEvents), with its version as ETag",
    description="A stream's events forward from `from_version` (default 1) or backward from "
    'it (default: the last), `limit` at a time, with `Link: rel="next"` (and '
    "`next_version`) while more may follow. The ETag is the stream's current version: send "
    "it as `If-Match` "
    "with a command to make sure nothing changed since you read it.",
    tags=["feed"],
    opt=require("read"),
    responses=errors(400, 404),
)
async def read_stream(
    request: Request[Any, Any, Any],
    *,
    stream_id: FromPath[str],
    from_version: Annotated[
        int | None, QueryParameter(name="from_version", ge=1, le=MAX_VERSION)
    ] = None,
    backward: Annotated[bool, QueryParameter(name="backward")] = False,
    limit: Annotated[int, QueryParameter(name="limit", ge=1, le=1000)] = 100,
    if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None,
) -> Response[StreamPage]:
    """One stream."""
    runtime = runtime_of(request)
    part = await runtime.store.read_stream(
        stream_id, from_version=from_version, backward=backward, limit=limit
    )
    if part.current_version == 0:
        raise problem(404, f"no stream {stream_id!r} has been written")
    etag = f'"{part.current_version}"'
    headers = {"ETag": etag, "Cache-Control": REVALIDATE}
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(None, status_code=304, headers=headers)  # type: ignore[arg-type]
    base = base_url(request)
    if part.next_version is not None:
        query = urlencode(
            [
                ("from_version", str(part.next_version)),
                ("limit", str(limit)),
                *([("backward", "true")] if backward else []),
            ]
        )
        headers["Link"] = f'<{base}/streams/{quote(stream_id, safe="")}?{query}>; rel="next"'
    return Response(
        StreamPage(
            stream_id=part.stream_id,
            current_version=part.current_version,
            next_version=part.next_version,
            events=[to_cloudevent(e, base) for e in part.events],
        ),
        headers=headers,
    )
