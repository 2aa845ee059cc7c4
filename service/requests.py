"""Reading what a request says beyond its body: its base URL, who sent it, the trace it is
part of, cursors and the conditional and preference headers."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from events.errors import InvalidCursorError
from events.expected import STREAM_EXISTS
from events.records import Cursor, Metadata
from service.auth import principal_of
from service.problems import problem
from service.trace_context import parse_traceparent, parse_tracestate

if TYPE_CHECKING:
    from datetime import datetime

    from litestar import Request

    from service.runtime import Runtime

__all__ = (
    "base_url",
    "check_issued",
    "cursor_param",
    "metadata_of",
    "parse_if_match",
    "parse_prefer_wait",
    "request_id_of",
    "runtime_of",
)

_VERSION_TAG: Final = re.compile(r'^\s*(?:W/)?"?(\d{1,18})"?\s*$')
_PREFER_WAIT: Final = re.compile(r"(?:^|[,;\s])wait\s*=\s*\"?(\d+(?:\.\d+)?)\"?", re.IGNORECASE)


def runtime_of(request: Request[Any, Any, Any]) -> Runtime:
    """The process's runtime (see ``service.runtime``)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def base_url(request: Request[Any, Any, Any]) -> str:
    """The API's base URL: the configured public one, else the one the request came to."""
    configured = runtime_of(request).settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


def request_id_of(request: Request[Any, Any, Any]) -> str | None:
    """The id ``service.logs`` gave this request."""
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def metadata_of(request: Request[Any, Any, Any]) -> Metadata:
    """What every event a request writes records about it: who (the API key), which request
    (correlation id) and which trace (W3C ``traceparent``, only when it parses)."""
    headers = request.headers
    traceparent = parse_traceparent(headers.get("traceparent"))
    return Metadata(
        correlation_id=request_id_of(request),
        recorded_by=principal_of(request),
        traceparent=traceparent,
        tracestate=parse_tracestate(headers.get("tracestate"), traceparent),
    )


def cursor_param(value: str | None, name: str, *, where: str = "query") -> Cursor | None:
    """A cursor from a query parameter (or a header: ``where``); ``None`` when absent."""
    if value is None or value == "":
        return None
    try:
        return Cursor.decode(value)
    except InvalidCursorError as exc:
        raise problem(
            400, f"{name}: {exc}", errors=[{"field": f"{where}:{name}", "reason": str(exc)}]
        ) from exc


async def check_issued(
    runtime: Runtime, cursor: Cursor, name: str, *, where: str = "query"
) -> None:
    """Refuse a cursor past the log's head: no reader was ever handed it (another database's,
    or made up), and waiting for the log to reach it could take for ever.

    Raises:
        Problem: 400 naming the parameter.
    """
    # Whatever the hub has seen, or the head was at when last read, was issued: a follower at
    # the horizon costs a query only once the horizon passes the head read last.
    if cursor <= runtime.hub.end or cursor <= runtime.feed_head:
        return
    head = await runtime.store.feed_head()
    if head is None:
        return
    runtime.feed_head = max(runtime.feed_head, head)
    if cursor > head:
        reason = "lies beyond the end of the log: this service never issued it"
        raise problem(
            400,
            f"{name}: the cursor {cursor.encode()} {reason}",
            errors=[{"field": f"{where}:{name}", "reason": reason}],
        )


def time_param(value: datetime | None) -> datetime | None:
    """An as-of time; a time without a zone is ambiguous and refused."""
    if value is not None and value.tzinfo is None:
        raise problem(
            400,
            "as_of needs a time zone (e.g. 2024-02-26T12:00:00Z)",
            errors=[{"field": "query:as_of", "reason": "time without a zone"}],
        )
    return value


def parse_if_match(value: str | None) -> int | None:
    """``If-Match`` as an expected stream version: ``"3"`` (the ETag a read or write
    returned), ``3``, or ``*`` (the stream must exist)."""
    if value is None:
        return None
    if value.strip() == "*":
        return STREAM_EXISTS
    match = _VERSION_TAG.match(value)
    if match is None:
        raise problem(
            400,
            f'If-Match must be a stream version as returned in ETag (e.g. "3"), not {value!r}',
            errors=[{"field": "header:If-Match", "reason": "not a stream version"}],
        )
    return int(match.group(1))


def parse_prefer_wait(value: str | None, ceiling: float) -> float:
    """Seconds to long-poll from ``Prefer: wait=N`` (RFC 7240), capped at ``ceiling``."""
    if not value:
        return 0.0
    match = _PREFER_WAIT.search(value)
    if match is None:
        return 0.0
    return min(float(match.group(1)), ceiling)
