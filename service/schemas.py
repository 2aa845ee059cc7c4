"""Response bodies the API defines itself (views reuse the projections' own Structs), and the
documented error responses every route lists in the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Final

import msgspec
from litestar.openapi.datastructures import ResponseSpec

from events.domain.bounds import line
from events.domain.errors import Candidate
from events.records import CursorText
from service.keys import Scope

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = (
    "PROBLEM_MEDIA_TYPE",
    "CreateKeyRequest",
    "CreatedKeyOut",
    "FieldError",
    "Health",
    "KeyOut",
    "ProblemBody",
    "Readiness",
    "StreamPage",
    "WriteReceipt",
    "errors",
)

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"


class FieldError(msgspec.Struct, frozen=True, kw_only=True):
    """One field at fault."""

    field: str | None
    """A JSON path into the body (``$.participants[0].actor``), or ``query:limit``,
    ``header:If-Match``..."""
    reason: str


class ProblemBody(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """RFC 9457 problem details."""

    type: str
    """A stable identifier of the kind of problem; ``GET`` it for an explanation."""
    title: str
    status: int
    detail: str
    """What went wrong and what to do about it."""
    errors: list[FieldError] | None = None
    current_version: int | None = None
    """With 412: the stream's version now."""
    suggestions: list[str] | None = None
    """With an unknown actor: the closest canonical names."""
    candidates: list[Candidate] | None = None
    """With an ambiguous actor: every actor the name may refer to, the most likely first."""


_DESCRIPTIONS: Final = {
    400: "Malformed request: a parameter, header or body that cannot be read",
    401: "No API key, or an unknown or revoked one",
    403: "The API key lacks the scope this route needs",
    404: "Nothing exists at this address (or the item the command refers to)",
    408: "The body did not arrive in time; the connection is closed",
    409: "Refused by the domain's rules, or the same Idempotency-Key is still in flight",
    412: "If-Match names another version than the stream's current one",
    413: "The body is larger than the configured limit",
    415: "The body is not JSON",
    422: "A field is missing or invalid (each named in `errors`), an unknown or ambiguous "
    "actor, or an Idempotency-Key reused with another request",
    428: "This command needs If-Match with the stream version you reviewed",
    429: "Rate limit exceeded for this API key, or too many failed authentications from this "
    "address",
    503: "The database is unreachable; retry after Retry-After",
}


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The OpenAPI responses for these error statuses (plus 400, 401, 403, 429 and 503, which any
    authenticated route may return)."""
    wanted: Iterable[int] = sorted({*statuses, 400, 401, 403, 429, 503})
    return {
        status: ResponseSpec(
            data_container=ProblemBody,
            description=_DESCRIPTIONS[status],
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status in wanted
    }


class WriteReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """What a command recorded."""

    stream_id: str
    """The stream the command was decided on (``meeting-moscow_2024``)."""
    stream_version: int
    """The stream's version after the write; send it back as ``If-Match``."""
    event_ids: list[str]
    """The events recorded (empty when there was nothing new to record)."""
    cursor: CursorText | None
    """The feed cursor of the write: pass it as ``reflect`` to read your own write."""
    replayed: bool
    """The same command (or Idempotency-Key) was handled before; nothing new was appended."""


class StreamPage(msgspec.Struct, frozen=True, kw_only=True):
    """Part of one stream, as CloudEvents."""

    stream_id: str
    current_version: int
    next_version: int | None
    """Where the next page starts (``None``: the end, in the direction read)."""
    events: list[Any]
    """CloudEvents 1.0, oldest first (newest first when read backward)."""


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """Liveness: the process answers."""

    status: str


class ProjectionStatus(msgspec.Struct, frozen=True, kw_only=True):
    """How far one projection is behind the feed, and whether it can serve."""

    name: str
    version: int
    lag_events: int
    lag_seconds: float
    ok: bool
    problem: str | None = None
    """Why it is not ok."""
    quarantined: int = 0
    """Events it is paused before: they failed however often they were tried (see
    ``diplofeed quarantine``)."""
    runner: str | None = None
    """This process's runner of it: ``active``, ``standby`` (another runner leads),
    ``paused`` (before a quarantined event), ``retrying`` (after a failure), ``restarting``,
    ``stopped``; ``null`` when another process runs the projections."""


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    """Readiness: whether this process should receive traffic, and why not."""

    ready: bool
    database: bool
    migrations_current: bool
    projections: list[ProjectionStatus]
    problems: list[str]


class CreateKeyRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A key to create."""

    name: Annotated[str, line(200, 1)]
    scopes: Annotated[list[Scope], msgspec.Meta(max_length=3)]


class KeyOut(msgspec.Struct, frozen=True, kw_only=True):
    """An API key, without its secret."""

    id: str
    name: str
    scopes: list[Scope]
    created_at: datetime
    revoked_at: datetime | None


class CreatedKeyOut(msgspec.Struct, frozen=True, kw_only=True):
    """A new key: ``token`` is shown this once."""

    key: KeyOut
    token: str
