"""The declaration aggregate (stream ``declaration-<id>``): drafted, signed, refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    """The rules for a declaration."""
    if isinstance(command, DraftDeclaration):
        if state.declaration_id is not None:
            raise RuleViolationError(
                f"declaration {command.declaration_id!r} is already drafted",
                field="declaration_id",
            )
        when = (
            valid_time(command.valid_time, command.valid_time_raw) if command.valid_time else None
        )
        return [
            DeclarationDrafted(
                declaration_id=command.declaration_id,
                title=command.title,
                meeting_id=command.meeting_id,
                valid_time=when,
                sources=command.sources,
            )
        ]
    if isinstance(command, (AddSource, CorrectEvent, RetractEvent)) and state.record.facts:
        # Amendments act on the stream's facts, even once the draft itself was retracted.
        return decide_amendment(state.record, command)
    if state.declaration_id is None:
        raise UnknownTargetError(
            f"declaration {getattr(command, 'declaration_id', '')!r} was never drafted",
            field="declaration_id",
        )
    if isinstance(command, SignDeclaration):
        signatory = directory.resolve(command.signatory, field="signatory")
        if signatory in state.signed:
            raise RuleViolationError(f"{signatory!r} already signed", field="signatory")
        when = (
            valid_time(command.valid_time, command.valid_time_raw) if command.valid_time else None
        )
        return [
            DeclarationSigned(
                declaration_id=state.declaration_id,
                signatory_id=signatory,
                name_as_reported=command.name_as_reported,
                valid_time=when,
                coding=code_for("declaration_signed"),
                sources=command.sources,
            )
        ]
    if isinstance(command, RefuseSignature):
        refuser = directory.resolve(command.refuser, field="refuser")
        if refuser in state.signed:
            raise RuleViolationError(
                f"{refuser!r} signed; correct or retract that event instead", field="refuser"
            )
        if refuser in state.refused:
            raise RuleViolationError(f"{refuser!r} already refused", field="refuser")
        when = (
            valid_time(command.valid_time, command.valid_time_raw) if command.valid_time else None
        )
        return [
            SignatureRefused(
                declaration_id=state.declaration_id,
                refuser_id=refuser,
                name_as_reported=command.name_as_reported,
                reason=command.reason,
                valid_time=when,
                coding=code_for("signature_refused"),
                sources=command.sources,
            )
        ]
    return decide_amendment(state.record, command)
