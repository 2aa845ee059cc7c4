"""Pages of a view: ``limit`` and an opaque ``after`` token, ``Link: rel="next"`` while more
remain, and a bound on every request's work (statement timeout, memory, response bytes).

A walk is pinned to one moment. The first page reads the view as it stands at the projection's
checkpoint (or at the ``as_of`` point asked for) and every ``after`` token carries that cursor,
so the following pages read the same system-time slice (``projections.system_time``) however
many writes land meanwhile: no entry is seen twice, none is skipped, and a rebuild in between
changes nothing (it produces the same ranges). The token also carries the last entry's sort key
(keyset pagination: a deep page costs what the first does) and a digest of the query's filters,
so a token cannot be replayed against another query.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeVar, cast
from urllib.parse import urlencode

import asyncpg
import msgspec
from litestar import Response
from litestar.params import QueryParameter

from events.records import Cursor
from service.problems import problem
from service.requests import base_url

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from litestar import Request

    from service.runtime import Runtime

__all__ = (
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "After",
    "Limit",
    "PageToken",
    "SortKey",
    "page_response",
    "read_token",
    "view_connection",
)

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1_000

SortKey = tuple[str | int | bool | None, ...]
"""An entry's position in its view's order: the values of its sort columns (dates as ISO
text), compared as the view's SQL compares them."""

Limit = Annotated[
    int,
    QueryParameter(
        name="limit",
        ge=1,
        le=MAX_LIMIT,
        description="Entries per page (at most 1,000). A page may hold fewer when its entries "
        'reach the response size bound; follow `Link: rel="next"` while it is present.',
    ),
]
After = Annotated[
    str | None,
    QueryParameter(
        name="after",
        description='Opaque token from the previous page\'s `Link: rel="next"`; omit for the '
        "first page. The walk it continues reads the view as it stood when the first page was "
        "read, so writes landing meanwhile neither repeat nor skip entries.",
        pattern="^[A-Za-z0-9_-]+$",
        max_length=2_000,
    ),
]

T = TypeVar("T")

_TOKEN_VERSION: Final = 1
_ENCODER: Final = msgspec.json.Encoder()


class PageToken(msgspec.Struct, frozen=True, array_like=True):
    """What an ``after`` token holds (msgpack, then base64url; opaque to clients)."""

    version: int
    at: bytes
    """``Cursor.key()`` of the moment the walk reads (empty: a view without system time)."""
    key: SortKey
    """The sort key of the last entry of the previous page."""
    query: bytes
    """A digest of the route and its filters."""

    @property
    def cursor(self) -> Cursor | None:
        """The moment the walk reads."""
        return Cursor.from_key(self.at) if self.at else None


_TOKEN_DECODER: Final = msgspec.msgpack.Decoder(PageToken)
_TOKEN_ENCODER: Final = msgspec.msgpack.Encoder()
# Query parameters that may change along a walk without changing what it walks.
_WALK_PARAMS: Final = frozenset({"after", "limit", "reflect"})


def _query_digest(request: Request[Any, Any, Any]) -> bytes:
    pairs = sorted(
        (name, value)
        for name, values in request.query_params.dict().items()
        if name not in _WALK_PARAMS
        for value in values
    )
    identity = f"{request.url.path}\n{urlencode(pairs)}".encode()
    return hashlib.sha256(identity).digest()[:8]


def read_token(request: Request[Any, Any, Any], after: str | None) -> PageToken | None:
    """The ``after`` token of this request (``None``: a first page).

    Raises:
        Problem: 400 when the token is not one Diplofeed issued for this query.
    """
    if not after:
        return None
    try:
        raw = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4))
        token = _TOKEN_DECODER.decode(raw)
        if token.version != _TOKEN_VERSION or len(token.at) not in (0, 16):
            raise ValueError("unknown token version")
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise _bad_token("is not a page token issued by Diplofeed") from exc
    if token.query != _query_digest(request):
        raise _bad_token(
            "was issued for another query: keep every parameter but `after` and `limit` as "
            "they were on the first page"
        )
    return token


def _bad_token(reason: str) -> Exception:
    return problem(
        400,
        f"after: the token {reason}",
        errors=[{"field": "query:after", "reason": reason}],
    )


def _next_link(request: Request[Any, Any, Any], token: str, limit: int) -> str:
    pairs = [
        (name, value)
        for name, values in request.query_params.dict().items()
        if name not in ("after", "limit")
        for value in values
    ]
    pairs += [("limit", str(limit)), ("after", token)]
    return f'<{base_url(request)}{request.url.path}?{urlencode(pairs)}>; rel="next"'


def page_response(
    request: Request[Any, Any, Any],
    entries: Sequence[T],
    *,
    limit: int,
    sort_key: Callable[[T], SortKey],
    at: Cursor | None,
    headers: dict[str, str],
    max_bytes: int,
) -> Response[list[T]]:
    """A page of ``entries`` as a JSON array, with ``Link: rel="next"`` when more remain.

    ``entries`` are the query's first ``limit + 1`` rows after the token's key: one more than a
    page, which says whether a next page exists. The page also ends early once its body would
    pass ``max_bytes`` (always holding at least one entry), so no page's size depends on how
    large the log's entries grow.
    """
    parts: list[bytes] = []
    size = 2
    for entry in entries[:limit]:
        encoded = _ENCODER.encode(entry)
        if parts and size + len(encoded) + 1 > max_bytes:
            break
        parts.append(encoded)
        size += len(encoded) + 1
    out = dict(headers)
    if len(entries) > len(parts):
        token = PageToken(
            version=_TOKEN_VERSION,
            at=at.key() if at is not None else b"",
            key=sort_key(entries[len(parts) - 1]),
            query=_query_digest(request),
        )
        text = base64.urlsafe_b64encode(_TOKEN_ENCODER.encode(token)).rstrip(b"=").decode()
        out["Link"] = _next_link(request, text, limit)
    body = b"[" + b",".join(parts) + b"]"
    # Encoded here entry by entry (to bound the page's bytes); documented as list[T].
    return Response(cast("list[T]", body), headers=out, media_type="application/json")


@asynccontextmanager
async def view_connection(runtime: Runtime) -> AsyncIterator[asyncpg.Connection]:
    """A connection for one view request: a read-only snapshot (so that a page and the
    checkpoint it reports are one moment), under the view's statement timeout and work memory.

    Raises:
        Problem: 503 naming the limit when a statement runs past it.
    """
    settings = runtime.settings
    async with runtime.pool.acquire() as proxy:
        conn = cast("asyncpg.Connection", proxy)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await conn.execute(
                    f"SET LOCAL statement_timeout = {int(settings.view_statement_timeout_ms)};"
                    f"SET LOCAL work_mem = '{int(settings.view_work_mem_kb)}kB'"
                )
                yield conn
        except asyncpg.QueryCanceledError as exc:
            raise problem(
                503,
                "the view took longer than its limit of "
                f"{settings.view_statement_timeout_ms} ms (DIPLOFEED_VIEW_STATEMENT_TIMEOUT_MS); "
                "narrow the query or retry",
                slug="view-limit",
                title="View limit exceeded",
                headers={"Retry-After": "1"},
                limit="view_statement_timeout_ms",
            ) from exc
