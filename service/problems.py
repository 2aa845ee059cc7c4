"""Every error as RFC 9457 problem details, mapped once from the typed errors of each layer.

Litestar's ``ProblemDetailsPlugin`` renders them; this module decides the status, a stable
``type`` per kind of problem (documented at ``/problems/<slug>``), a title, a detail a person
can act on, and the fields at fault. Nothing here ever shows a stack trace.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import msgspec
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsException

from events.domain.bounds import PATTERN_REASONS
from events.domain.errors import (
    AmbiguousActorError,
    DomainError,
    RuleViolationError,
    UnknownActorError,
    UnknownTargetError,
)
from events.errors import (
    EventStoreError,
    IdempotencyError,
    InvalidAppendError,
    InvalidCursorError,
    InvalidReadError,
    WrongExpectedVersionError,
)
from events.notify import CONNECTION_ERRORS

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("PROBLEM_TYPES", "Problem", "field_error", "problem", "problem_details_config")

log = logging.getLogger(__name__)

PROBLEM_TYPES: Final[dict[str, str]] = {
    "bad-request": "The request is malformed: a query parameter, header or JSON body that "
    "cannot be read. The detail names the part at fault.",
    "invalid-request": "The request is well-formed but a field is missing or holds a value the "
    "service cannot accept. `errors` lists each field (as a JSON path) and why.",
    "unauthorized": "No API key, or one that is unknown, malformed or revoked. Send "
    "`Authorization: Bearer <key>`; keys are created with `diplofeed keys create`.",
    "forbidden": "The API key lacks the scope this route needs (read, write or admin).",
    "not-found": "Nothing exists at this address, or the item a command refers to does not.",
    "method-not-allowed": "The route exists but not with this HTTP method.",
    "conflict": "The command contradicts what is recorded (a rule of the domain refuses it), "
    "or a request with the same Idempotency-Key is still in flight.",
    "precondition-failed": "The stream is not at the version named in If-Match; "
    "`current_version` says where it is. Re-read it, decide again, and retry.",
    "precondition-required": "This command changes what is recorded about an earlier event: "
    "send If-Match with the stream version you reviewed.",
    "request-timeout": "The request body did not arrive within the time the server allows "
    "(DIPLOFEED_BODY_TIMEOUT_S); the connection is closed. Send the body at once.",
    "payload-too-large": "The request body is larger than the configured limit.",
    "unsupported-media-type": "Request bodies are JSON: send `Content-Type: application/json`.",
    "unknown-actor": "A name or id that matches no registered actor; `suggestions` lists the "
    "closest names.",
    "ambiguous-actor": "A name that matches several actors equally well; `candidates` lists "
    "each with its `actor_id`, `canonical_name` and the name or alias it `matched`. Name the "
    "actor by id, or give context such as the organisation.",
    "idempotency-mismatch": "The Idempotency-Key (or command_id) was used before with another "
    "request. Use a new key for a new request.",
    "rate-limited": "Too many requests for this API key, or too many failed authentications "
    "from this address; wait for the time in Retry-After.",
    "unavailable": "The database cannot be reached right now; retry after Retry-After seconds.",
    "read-only": "This API reads from a read-only replica of the database (a PostgreSQL hot "
    "standby): it serves the feed and the views but cannot record anything. Send writes, and "
    "key administration, to the API on the primary.",
    "time-limit": "A statement of the request ran past the server's statement time limit. "
    "`limit` names the setting. Narrow the request (filters, a smaller `limit`) or retry.",
    "view-limit": "A view request ran past the time limit every view page runs under "
    "(`limit` names the setting, DIPLOFEED_VIEW_STATEMENT_TIMEOUT_MS). Narrow the request "
    "(filters, a smaller `limit`) or retry after Retry-After seconds.",
    "cancelled": "The database cancelled a statement of the request to settle a conflict with "
    "other work: a deadlock, or on a read replica the replay of the primary's changes (which "
    "waits for reads only up to the replica's `max_standby_streaming_delay`). Nothing the "
    "request did was kept; retry after Retry-After seconds.",
    "internal": "An unexpected error; it has been logged with the request id.",
}
"""Every problem type this API returns, with what it means; served at ``/problems/<slug>``."""

_BY_STATUS: Final = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    408: ("request-timeout", "Request timeout"),
    409: ("conflict", "Conflict"),
    412: ("precondition-failed", "Precondition failed"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid-request", "Invalid request"),
    428: ("precondition-required", "Precondition required"),
    429: ("rate-limited", "Too many requests"),
    503: ("unavailable", "Service unavailable"),
}


class Problem(ProblemDetailsException):
    """A problem with a slug from ``PROBLEM_TYPES``."""


def problem(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Problem:
    """A problem response to raise; ``extra`` members are added to the body."""
    default_slug, default_title = _BY_STATUS.get(status, ("internal", "Error"))
    return Problem(
        detail=detail,
        status_code=status,
        type_=f"/problems/{slug or default_slug}",
        title=title or default_title,
        headers=headers,
        extra={k: v for k, v in extra.items() if v is not None} or None,
    )


def _field_path(field: str | None) -> str | None:
    return None if field is None else f"$.{field}"


_AT = re.compile(
    r"^(?P<reason>.*?)(?: - at (?:`(?P<key>key)` in )?`(?P<path>\$[^`]*)`)?$", re.DOTALL
)
# msgspec quotes the pattern a string failed; say what the pattern means instead.
_PATTERN_REASONS: Final = {
    f"Expected `str` matching regex {pattern!r}": reason
    for pattern, reason in PATTERN_REASONS.items()
}
_NAMED = re.compile(r"(?:missing required|contains unknown) field `(?P<name>[^`]+)`")


def field_error(message: str, path: str | None = None) -> dict[str, str | None]:
    """A msgspec validation message as ``{field, reason}``, the field as a JSON path that
    names the missing or unknown member itself (``$.participants[0].role``)."""
    match = _AT.match(message.strip())
    reason = match.group("reason") if match else message
    reason = _PATTERN_REASONS.get(reason, reason)
    where = (match.group("path") if match else None) or path
    if match and match.group("key"):
        reason = f"a member name: {reason}"
    named = _NAMED.search(reason)
    if named is not None:
        where = f"{where or '$'}.{named.group('name')}"
    return {"field": where, "reason": reason}


def _from_http(exc: HTTPException) -> Problem:
    status = exc.status_code
    detail = exc.detail or ""
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list) and exc.extra:
        errors = [_validation_error(e) for e in exc.extra]
        in_body = any(isinstance(e, dict) and e.get("source") == "body" for e in exc.extra)
        reasons = "; ".join(f"{e['field'] or 'request'}: {e['reason']}" for e in errors)
        return problem(422 if in_body else 400, reasons, errors=errors)
    if status == 413:
        detail = "the request body is larger than this server accepts"
    elif status == 404 and detail in {"", "Not Found"}:
        detail = "no route matches this path"
    elif status == 405:
        allowed = (exc.headers or {}).get("allow")
        detail = f"this route accepts {allowed}" if allowed else "this route refuses this method"
    elif status == 429:
        detail = "rate limit exceeded for this API key; retry after Retry-After seconds"
    return problem(status, detail, headers=exc.headers)


def _validation_error(error: Any) -> dict[str, str | None]:
    if not isinstance(error, dict):
        return {"field": None, "reason": str(error)}
    key, source = error.get("key"), error.get("source")
    message = str(error.get("message", ""))
    if source == "body":
        # Litestar names the body "data"; the path inside it is msgspec's.
        return field_error(message, "$" if key in {None, "data"} else f"$.{key}")
    kind = getattr(source, "value", source)
    if kind == "header" and isinstance(key, str):
        # Litestar names the parameter, not the header: last_event_id is Last-Event-ID.
        key = key.replace("_", "-")
    return {"field": f"{kind}:{key}" if kind else key, "reason": message}


def _from_domain(exc: DomainError) -> Problem:
    field = _field_path(exc.field)
    errors = [{"field": field, "reason": str(exc)}] if field else None
    if isinstance(exc, UnknownActorError):
        return problem(
            422, str(exc), slug="unknown-actor", title="Unknown actor", errors=errors,
            suggestions=exc.suggestions,
        )  # fmt: skip
    if isinstance(exc, AmbiguousActorError):
        return problem(
            422, str(exc), slug="ambiguous-actor", title="Ambiguous actor", errors=errors,
            candidates=msgspec.to_builtins(exc.candidates),
        )  # fmt: skip
    if isinstance(exc, UnknownTargetError):
        return problem(404, str(exc), errors=errors)
    if isinstance(exc, RuleViolationError):
        return problem(409, str(exc), title="Refused by the rules", errors=errors)
    return problem(422, str(exc), errors=errors)


def _from_store(exc: EventStoreError) -> Problem:
    if isinstance(exc, WrongExpectedVersionError):
        return problem(
            409,
            f"{exc}; the stream kept changing while the command was decided, retry it",
            current_version=exc.actual,
        )
    if isinstance(exc, IdempotencyError):
        return problem(422, str(exc), slug="idempotency-mismatch", title="Idempotency mismatch")
    if isinstance(exc, (InvalidCursorError, InvalidReadError)):
        return problem(400, str(exc))
    if isinstance(exc, InvalidAppendError):
        # Commands are checked before they are decided (events.domain.bounds), so this is a
        # value that slipped past them: still the request's, never a server error.
        log.error("the event log refused a value: %s", exc)
        return problem(
            422,
            f"a value in the request cannot be recorded: {exc}",
            errors=[{"field": None, "reason": str(exc)}],
        )
    log.error("event store error: %s", exc)
    return problem(500, "the event log refused the operation", slug="internal")


def _bad_value(exc: Exception) -> Problem:
    # Every statement takes its values as parameters, so a data exception (SQLSTATE class 22:
    # a NUL character, a number out of range) is the request's value, never the SQL.
    return problem(
        400,
        f"a value in the request cannot be stored or compared: {exc}",
        errors=[{"field": None, "reason": str(exc)}],
    )


def _too_deep(exc: Exception) -> Problem:
    # Bodies are refused before parsing when nested too deeply (service.bodies); this is the
    # net under that check.
    log.warning("a request nested too deeply: %s", exc)
    return problem(400, "the request is nested too deeply to be read")


def _not_built(exc: Exception) -> Problem:
    # A view's tables appear when its projection first runs (a fresh install, a projector
    # that has not started yet).
    log.warning("a view is not built yet: %s", exc)
    return problem(
        503,
        "this view is still being built; retry shortly",
        headers={"Retry-After": "2"},
    )


def _too_long(exc: Exception) -> Problem:
    # A statement ran into the server's statement_timeout (views set a shorter one of their
    # own, service.paging); the request was too costly, the server is fine.
    log.warning("a statement ran past its time limit: %s", exc)
    return problem(
        503,
        "the request took longer than the server's statement time limit; narrow it or retry",
        slug="time-limit",
        title="Time limit exceeded",
        headers={"Retry-After": "1"},
        limit="statement_timeout",
    )


def _unavailable(exc: Exception) -> Problem:
    log.warning("database unavailable: %s", exc)
    return problem(
        503, "the database cannot be reached; retry shortly", headers={"Retry-After": "2"}
    )


def _read_only(exc: Exception) -> Problem:
    # SQLSTATE 25006: this process's database is a hot standby (or a read-only transaction
    # tried to write, which no route does).
    log.warning("a write reached a read-only database: %s", exc)
    return problem(
        503,
        "this API serves a read-only replica; send writes to the primary's API",
        slug="read-only",
        title="Read-only replica",
    )


def _cancelled(exc: Exception) -> Problem:
    # SQLSTATE class 40: the transaction was rolled back to settle a conflict (a deadlock, a
    # hot standby's replay that would not wait any longer); the same request may well succeed.
    log.warning("a statement was cancelled by a conflict: %s", exc)
    return problem(
        503,
        f"the database cancelled the request to settle a conflict ({exc}); retry shortly",
        slug="cancelled",
        title="Cancelled by a conflict",
        headers={"Retry-After": "1"},
    )


def _internal(exc: Exception) -> Problem:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "an unexpected error occurred; it has been logged", slug="internal")


def problem_details_config() -> ProblemDetailsConfig:
    """The one mapping from exceptions to problem details."""
    mapping: dict[type[Exception], Callable[[Any], ProblemDetailsException]] = {
        HTTPException: _from_http,
        DomainError: _from_domain,
        EventStoreError: _from_store,
        asyncpg.DataError: _bad_value,
        # A string the driver cannot encode (a lone surrogate): the request's value too.
        UnicodeError: _bad_value,
        RecursionError: _too_deep,
        asyncpg.UndefinedTableError: _not_built,
        asyncpg.QueryCanceledError: _too_long,
        asyncpg.ReadOnlySQLTransactionError: _read_only,
        asyncpg.TransactionRollbackError: _cancelled,
        asyncpg.PostgresConnectionError: _unavailable,
        asyncpg.CannotConnectNowError: _unavailable,
        asyncpg.TooManyConnectionsError: _unavailable,
        asyncpg.InterfaceError: _unavailable,
        ConnectionError: _unavailable,
        OSError: _unavailable,
        # Litestar 3 re-raises unhandled errors to the server: answer them here instead.
        Exception: _internal,
    }
    for kind in CONNECTION_ERRORS:
        mapping.setdefault(kind, _unavailable)
    return ProblemDetailsConfig(
        enable_for_all_http_exceptions=True, exception_to_problem_detail_map=mapping
    )
