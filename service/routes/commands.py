"""Write routes: one per domain command, all built by one factory from the table below.

Each route's body is the command's own Struct less the fields its path supplies, so the
domain's types (patterns, lengths, enums) are the API's schema and cannot drift from it. The
handler is the same for every command: merge path and body, decide through the command
handler, answer 201 with Location, the write's feed cursor and the stream's new version.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Final, NamedTuple

import msgspec
from litestar import Request, Response, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import BodyKwarg, FromPath, HeaderParameter, JSONBody

from events.domain.bounds import INBOUND
from events.domain.commands import (
    AddAlias,
    AddSource,
    AssignRole,
    CancelMeeting,
    ConfirmAttendance,
    CorrectEvent,
    DeclineAttendance,
    DraftDeclaration,
    InviteFaction,
    MergeActors,
    NameDelegationLeader,
    NameDelegationMember,
    PostponeMeeting,
    RecordInteraction,
    RefuseSignature,
    RegisterActor,
    RetractEvent,
    ReviseMeetingDate,
    ScheduleMeeting,
    SignDeclaration,
    StateMeetingPurpose,
)
from events.domain.corrections import CORRECTABLE
from events.domain.strict import StrictTypes
from events.errors import WrongExpectedVersionError
from events.notify import CONNECTION_ERRORS
from service import idempotency
from service.auth import principal_of, require
from service.metrics import observe_command
from service.problems import field_error, problem
from service.requests import metadata_of, parse_if_match, runtime_of
from service.schemas import WriteReceipt, errors

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar.handlers import HTTPRouteHandler

    from events.domain.commands import Command
    from events.domain.handler import Outcome
    from service.runtime import Runtime

__all__ = ("BODY_TYPES", "COMMAND_ROUTES", "command_handlers")


class CommandRoute(NamedTuple):
    """How one command is exposed."""

    path: str
    command: type[Any]
    operation_id: str
    summary: str
    tag: str
    path_fields: tuple[str, ...] = ()
    """Path parameters, each filling the command field of the same name."""
    fixed: tuple[tuple[str, Any], ...] = ()
    """Command fields the route fixes (``kind`` for apologies)."""
    needs_if_match: bool = False
    """Commands that rewrite what an earlier event says must name the version reviewed."""
    location: Callable[[Any, str], str] | None = None
    """The created resource's path, from the command and its stream; default the stream."""


def _actor_location(command: Any, stream_id: str) -> str:
    return f"/actors/{stream_id.split('-', 1)[1]}"


def _meeting_location(command: Any, stream_id: str) -> str:
    return f"/meetings/{stream_id.split('-', 1)[1]}"


_M: Final = "/meetings/{meeting_id:str}"
_D: Final = "/declarations/{declaration_id:str}"
_E: Final = "/streams/{stream:str}/events/{target_event_id:str}"

COMMAND_ROUTES: Final[tuple[CommandRoute, ...]] = (
    CommandRoute("/actors", RegisterActor, "registerActor", "Register an actor", "actors",
                 location=_actor_location),
    CommandRoute("/actors/{actor:str}/aliases", AddAlias, "addAlias",
                 "Add an alias (another spelling) to an actor", "actors", ("actor",),
                 location=_actor_location),
    CommandRoute("/actors/{actor:str}/roles", AssignRole, "assignRole",
                 "Record a role an actor held in an organisation, with its valid time",
                 "actors", ("actor",), location=_actor_location),
    CommandRoute("/actors/{actor:str}/merges", MergeActors, "mergeActors",
                 "Merge another actor record into this one", "actors", ("actor",),
                 location=_actor_location),
    CommandRoute("/interactions", RecordInteraction, "recordInteraction",
                 "Record an interaction of any kind (phone call, meeting, visit, address, "
                 "aggregate contacts, statement, apology)", "interactions"),
    CommandRoute("/apologies", RecordInteraction, "recordApology", "Record an apology",
                 "interactions", fixed=(("kind", "apology"),)),
    CommandRoute("/meetings", ScheduleMeeting, "scheduleMeeting", "Schedule a meeting",
                 "meetings", location=_meeting_location),
    CommandRoute(f"{_M}/purpose", StateMeetingPurpose, "stateMeetingPurpose",
                 "State what a meeting is for (its purpose or agenda)", "meetings",
                 ("meeting_id",), location=_meeting_location),
    CommandRoute(f"{_M}/date-revisions", ReviseMeetingDate, "reviseMeetingDate",
                 "Revise a meeting's date", "meetings", ("meeting_id",),
                 location=_meeting_location),
    CommandRoute(f"{_M}/postponements", PostponeMeeting, "postponeMeeting",
                 "Postpone a meeting", "meetings", ("meeting_id",), location=_meeting_location),
    CommandRoute(f"{_M}/cancellation", CancelMeeting, "cancelMeeting", "Cancel a meeting",
                 "meetings", ("meeting_id",), location=_meeting_location),
    CommandRoute(f"{_M}/invitations", InviteFaction, "inviteFaction",
                 "Invite a faction to a meeting", "meetings", ("meeting_id",),
                 location=_meeting_location),
    CommandRoute(f"{_M}/confirmations", ConfirmAttendance, "confirmAttendance",
                 "Record that a faction confirmed its attendance", "meetings", ("meeting_id",),
                 location=_meeting_location),
    CommandRoute(f"{_M}/declines", DeclineAttendance, "declineAttendance",
                 "Record that a faction declined to attend", "meetings", ("meeting_id",),
                 location=_meeting_location),
    CommandRoute(f"{_M}/leaders", NameDelegationLeader, "nameDelegationLeader",
                 "Name the leader of a faction's delegation", "meetings", ("meeting_id",),
                 location=_meeting_location),
    CommandRoute(f"{_M}/members", NameDelegationMember, "nameDelegationMember",
                 "Name a member of a faction's delegation", "meetings", ("meeting_id",),
                 location=_meeting_location),
    CommandRoute("/declarations", DraftDeclaration, "draftDeclaration",
                 "Record a declaration's draft", "declarations"),
    CommandRoute(f"{_D}/signatures", SignDeclaration, "signDeclaration",
                 "Record that an actor signed a declaration", "declarations",
                 ("declaration_id",)),
    CommandRoute(f"{_D}/refusals", RefuseSignature, "refuseSignature",
                 "Record that an actor refused to sign a declaration", "declarations",
                 ("declaration_id",)),
    CommandRoute(f"{_E}/sources", AddSource, "addSource",
                 "Corroborate an event with another source", "amendments",
                 ("stream", "target_event_id")),
    CommandRoute(f"{_E}/corrections", CorrectEvent, "correctEvent",
                 "Correct fields of an earlier event (needs If-Match)", "amendments",
                 ("stream", "target_event_id"), needs_if_match=True),
    CommandRoute(f"{_E}/retractions", RetractEvent, "retractEvent",
                 "Retract an earlier event: every view drops it, the log keeps it (needs "
                 "If-Match)", "amendments", ("stream", "target_event_id"), needs_if_match=True),
)  # fmt: skip


def _documented(annotated: Any, meta: msgspec.Meta) -> BodyKwarg:
    """``meta`` as Litestar's own metadata: its OpenAPI document reads msgspec's only at the top
    level of a field, so a topic's or a correction value's bounds would go undocumented."""
    origin = typing.get_origin(annotated) or annotated
    if origin in (dict, Mapping):
        sizes = {"minProperties": meta.min_length, "maxProperties": meta.max_length}
        return BodyKwarg(schema_extra={k: v for k, v in sizes.items() if v is not None})
    if origin in (list, tuple, set, frozenset):
        return BodyKwarg(min_items=meta.min_length, max_items=meta.max_length)
    return BodyKwarg(
        min_length=meta.min_length, max_length=meta.max_length, pattern=meta.pattern,
        ge=meta.ge, le=meta.le, gt=meta.gt, lt=meta.lt,
    )  # fmt: skip


BODY_TYPES: Final = StrictTypes(INBOUND, document=_documented)
"""The form a command's field takes in a request body, and in the OpenAPI document."""


def _body_type(route: CommandRoute) -> type[msgspec.Struct]:
    """The command's Struct without the fields the path or the route supplies, refusing
    unknown fields at any depth (a typo must not drop data) and taking the bounded forms of
    the shared objects (``events.domain.bounds``)."""
    supplied = {*route.path_fields, *(name for name, _ in route.fixed)}
    fields: list[tuple[str, Any, Any]] = []
    for field in msgspec.structs.fields(route.command):
        if field.name in supplied:
            continue
        info = msgspec.structs.replace(field, type=BODY_TYPES(field.type))
        if route.command is CorrectEvent and field.name == "changes":
            # Documented as the corrected event type's own fields (service.correctable).
            info = msgspec.structs.replace(info, type=Annotated[info.type, CORRECTABLE])
        if info.default is not msgspec.NODEFAULT:
            fields.append((info.name, info.type, info.default))
        elif info.default_factory is not msgspec.NODEFAULT:
            fields.append(
                (info.name, info.type, msgspec.field(default_factory=info.default_factory))
            )
        else:
            fields.append((info.name, info.type, msgspec.NODEFAULT))
    required = [(n, t) for n, t, d in fields if d is msgspec.NODEFAULT]
    optional = [(n, t, d) for n, t, d in fields if d is not msgspec.NODEFAULT]
    name = route.operation_id[0].upper() + route.operation_id[1:] + "Body"
    body: type[msgspec.Struct] = msgspec.defstruct(
        name,
        [*required, *optional],
        kw_only=True,
        frozen=True,
        forbid_unknown_fields=True,
        module=__name__,
    )
    body.__doc__ = (route.command.__doc__ or route.summary).strip()
    return body


def _receipt(outcome: Outcome, version: int, cursor: str | None, replayed: bool) -> WriteReceipt:
    return WriteReceipt(
        stream_id=outcome.stream_id,
        stream_version=version,
        event_ids=outcome.event_ids,
        cursor=cursor,
        replayed=replayed,
    )


async def _execute(
    runtime: Runtime, command: Command, request: Request[Any, Any, Any], expected: int | None
) -> WriteReceipt:
    try:
        with observe_command(type(command).__name__):
            outcome = await runtime.handler.handle(
                command, metadata=metadata_of(request), expected_version=expected
            )
    except WrongExpectedVersionError as exc:
        if expected is None:
            raise
        raise problem(
            412,
            f"the stream {exc.stream_id} is at version {exc.actual}, not the version in "
            "If-Match; re-read it and decide again",
            current_version=exc.actual,
        ) from exc
    if outcome.result is not None:
        return _receipt(
            outcome, outcome.result.last_version, outcome.result.cursor.encode(), outcome.replayed
        )
    stored = await runtime.store.read_events(outcome.event_ids) if outcome.event_ids else []
    version = (
        max(e.stream_version for e in stored)
        if stored
        else await runtime.store.stream_version(outcome.stream_id)
    )
    cursor = max(e.cursor for e in stored).encode() if stored else None
    return _receipt(outcome, version, cursor, outcome.replayed)


def _response(route: CommandRoute, receipt: WriteReceipt, command: Any) -> Response[Any]:
    located = (route.location or (lambda _c, s: f"/streams/{s}"))(command, receipt.stream_id)
    headers = {"Location": located, "ETag": f'"{receipt.stream_version}"'}
    if receipt.cursor is not None:
        headers["Diplofeed-Cursor"] = receipt.cursor
    if receipt.replayed:
        headers["Idempotent-Replayed"] = "true"
    created = bool(receipt.event_ids) and not receipt.replayed
    return Response(
        msgspec.to_builtins(receipt), status_code=201 if created else 200, headers=headers
    )


def _replayed(replay: idempotency.Replay) -> Response[Any]:
    """The response a key's first request got, saying it is a replay in the header and in
    the receipt alike (the receipt was stored saying ``replayed: false``)."""
    body = replay.body
    if isinstance(body, dict) and "replayed" in body:
        body = {**body, "replayed": True}
    headers = {**replay.headers, "Idempotent-Replayed": "true"}
    return Response(body, status_code=replay.status, headers=headers)


async def _give_back(runtime: Runtime, held: idempotency.Claim) -> None:
    """Release a failed request's key now, or as soon as the database is back."""
    try:
        await idempotency.release(runtime.pool, held)
    except CONNECTION_ERRORS:
        idempotency.abandon(held)  # before the 503 goes out: a prompt retry may take it over
        runtime.spawn(idempotency.release_eventually(runtime.pool, held))


def _build(route: CommandRoute) -> HTTPRouteHandler:
    body_type = _body_type(route)

    async def endpoint(
        request: Request[Any, Any, Any],
        data: Any,
        idempotency_key: str | None,
        if_match: str | None,
        **path: str,
    ) -> Response[Any]:
        runtime = runtime_of(request)
        raw = await request.body()
        fields = {**msgspec.to_builtins(data), **path, **dict(route.fixed)}
        expected = parse_if_match(if_match)
        if route.needs_if_match and expected is None:
            raise problem(
                428,
                f"{route.summary.split(' (')[0].lower()} changes what is recorded: send "
                "If-Match with the stream version you reviewed (the ETag of GET /streams/"
                f"{path.get('stream', '{stream}')})",
            )
        held: idempotency.Claim | None = None
        if idempotency_key is not None:
            principal = principal_of(request)
            claimed = await idempotency.claim(
                runtime.pool,
                principal,
                idempotency_key,
                idempotency.fingerprint(request.method, request.url.path, raw),
                owner=runtime.liveness.owner,
            )
            if isinstance(claimed, idempotency.Replay):
                return _replayed(claimed)
            held = claimed
            # The body always carries ``command_id`` (None when the client sent none), so a
            # ``setdefault`` here never took effect: keyed writes got random event ids, and a
            # retry after a write whose response was lost (a database restart between the
            # append and ``complete``) decided the command again, and recorded it twice or was
            # refused by the rules (409 "already scheduled") for the client's own write.
            if fields.get("command_id") is None:
                fields["command_id"] = idempotency.command_id_for(principal, claimed.key)
        try:
            command = msgspec.convert(fields, route.command)
        except msgspec.ValidationError as exc:
            if held is not None:
                await _give_back(runtime, held)
            error = field_error(str(exc))
            detail = f"{error['field'] or 'request'}: {error['reason']}"
            raise problem(422, detail, errors=[error]) from exc
        try:
            receipt = await _execute(runtime, command, request, expected)
        except BaseException:
            if held is not None:
                await _give_back(runtime, held)
            raise
        response = _response(route, receipt, command)
        if held is not None:
            try:
                await idempotency.complete(
                    runtime.pool, held, response.status_code or 200, response.content,
                    dict(response.headers),
                )  # fmt: skip
            except CONNECTION_ERRORS:
                # The write is recorded but its response cannot be: answer 503 and free the
                # key, so that the retry finds the write by its event ids and answers it.
                await _give_back(runtime, held)
                raise
        return response

    parameters = [
        inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
        inspect.Parameter(
            "data",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=JSONBody[body_type],  # type: ignore[misc,valid-type]
        ),
        inspect.Parameter(
            "idempotency_key",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                str | None,
                HeaderParameter(
                    name="Idempotency-Key",
                    description="Makes a retry safe: the same key and body return the "
                    "original response and record nothing again.",
                    max_length=255,
                ),
            ],
        ),
        inspect.Parameter(
            "if_match",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                str | None,
                HeaderParameter(
                    name="If-Match",
                    description="The stream version (ETag) the command was decided on"
                    + ("; required." if route.needs_if_match else "."),
                ),
            ],
        ),
        *(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=FromPath[str])
            for name in route.path_fields
        ),
    ]
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=Response[WriteReceipt]
    )
    endpoint.__annotations__ = {p.name: p.annotation for p in parameters} | {
        "return": Response[WriteReceipt]
    }
    endpoint.__name__ = route.operation_id
    # Every route takes If-Match, so any may answer 412 (a founding command's stream included).
    statuses = [400, 404, 408, 409, 412, 413, 415, 422]
    if route.needs_if_match:
        statuses += [428]
    return post(
        route.path,
        operation_id=route.operation_id,
        summary=route.summary,
        description=(route.command.__doc__ or route.summary).strip(),
        tags=[route.tag],
        opt=require("write"),
        status_code=201,
        responses={
            200: ResponseSpec(
                data_container=WriteReceipt,
                description="Nothing new recorded: the same command (command_id or "
                "Idempotency-Key) was handled before, or there was nothing to change; the "
                "receipt says where the stream stands",
                generate_examples=False,
            ),
            **errors(*statuses),
        },
    )(endpoint)


def command_handlers() -> list[HTTPRouteHandler]:
    """Every write route."""
    return [_build(route) for route in COMMAND_ROUTES]
