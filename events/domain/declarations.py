"""The declaration aggregate (stream ``declaration-<id>``): drafted, signed, refused."""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

import msgspec

from events.domain.amendments import (
    Record,
    Stored,
    decide_amendment,
    evolve_record,
    is_amendment,
    refold,
)
from events.domain.catalogue import DeclarationDrafted, DeclarationSigned, SignatureRefused
from events.domain.coding import code_for
from events.domain.commands import (
    AddSource,
    CorrectEvent,
    DraftDeclaration,
    RefuseSignature,
    RetractEvent,
    SignDeclaration,
)
from events.domain.errors import RuleViolationError, UnknownTargetError
from events.domain.valid_time import valid_time

if TYPE_CHECKING:
    from events.domain.catalogue import DomainEvent
    from events.domain.directory import Directory
    from events.domain.valid_time import ValidTime

__all__ = ("DeclarationCommand", "DeclarationState", "decide", "evolve")

DeclarationCommand = (
    DraftDeclaration | SignDeclaration | RefuseSignature | AddSource | CorrectEvent | RetractEvent
)


class DeclarationState(msgspec.Struct, frozen=True, kw_only=True):
    """One declaration as its stream tells it."""

    declaration_id: str | None = None
    title: str | None = None
    signed: frozenset[str] = frozenset()
    refused: frozenset[str] = frozenset()
    record: Record = Record()


def evolve(state: DeclarationState, stored: Stored) -> DeclarationState:
    """Fold one stored event into the state."""
    event = stored.event
    record = evolve_record(state.record, stored)
    if is_amendment(event):
        return refold(DeclarationState(), evolve, record)
    if isinstance(event, DeclarationDrafted):
        return DeclarationState(
            declaration_id=event.declaration_id, title=event.title, record=record
        )
    if isinstance(event, DeclarationSigned):
        return msgspec.structs.replace(
            state, signed=state.signed | {event.signatory_id}, record=record
        )
    if isinstance(event, SignatureRefused):
        return msgspec.structs.replace(
            state, refused=state.refused | {event.refuser_id}, record=record
        )
    return msgspec.structs.replace(state, record=record)


def decide(
    state: DeclarationState, command: DeclarationCommand, directory: Directory
) -> list[DomainEvent]:
    """The rules for a declaration: one function per command."""
    match command:
        case DraftDeclaration():
            return _draft(state, command)
        case AddSource() | CorrectEvent() | RetractEvent():
            if not state.record.facts:
                raise UnknownTargetError("declaration '' was never drafted", field="declaration_id")
            # Amendments act on the stream's facts, even once the draft itself was retracted.
            return decide_amendment(state.record, command, directory)
        case SignDeclaration():
            return _sign(state, command, directory)
        case RefuseSignature():
            return _refuse(state, command, directory)
        case _:
            assert_never(command)


def _drafted(state: DeclarationState, command: SignDeclaration | RefuseSignature) -> str:
    if state.declaration_id is None:
        raise UnknownTargetError(
            f"declaration {command.declaration_id!r} was never drafted", field="declaration_id"
        )
    return state.declaration_id


def _when(command: DraftDeclaration | SignDeclaration | RefuseSignature) -> ValidTime | None:
    return valid_time(command.valid_time, command.valid_time_raw) if command.valid_time else None


def _draft(state: DeclarationState, command: DraftDeclaration) -> list[DomainEvent]:
    if state.declaration_id is not None:
        raise RuleViolationError(
            f"declaration {command.declaration_id!r} is already drafted", field="declaration_id"
        )
    return [
        DeclarationDrafted(
            declaration_id=command.declaration_id,
            title=command.title,
            meeting_id=command.meeting_id,
            valid_time=_when(command),
            sources=command.sources,
        )
    ]


def _sign(
    state: DeclarationState, command: SignDeclaration, directory: Directory
) -> list[DomainEvent]:
    declaration = _drafted(state, command)
    signatory = directory.resolve(command.signatory, field="signatory")
    if signatory in state.signed:
        raise RuleViolationError(f"{signatory!r} already signed", field="signatory")
    return [
        DeclarationSigned(
            declaration_id=declaration,
            signatory_id=signatory,
            name_as_reported=command.name_as_reported,
            valid_time=_when(command),
            coding=code_for("declaration_signed"),
            sources=command.sources,
        )
    ]


def _refuse(
    state: DeclarationState, command: RefuseSignature, directory: Directory
) -> list[DomainEvent]:
    declaration = _drafted(state, command)
    refuser = directory.resolve(command.refuser, field="refuser")
    if refuser in state.signed:
        raise RuleViolationError(
            f"{refuser!r} signed; correct or retract that event instead", field="refuser"
        )
    if refuser in state.refused:
        raise RuleViolationError(f"{refuser!r} already refused", field="refuser")
    return [
        SignatureRefused(
            declaration_id=declaration,
            refuser_id=refuser,
            name_as_reported=command.name_as_reported,
            reason=command.reason,
            valid_time=_when(command),
            coding=code_for("signature_refused"),
            sources=command.sources,
        )
    ]
