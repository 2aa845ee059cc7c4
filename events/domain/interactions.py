"""The interaction aggregate (stream ``interaction-<id>``): one reported interaction, coded,
dated and sourced, and its later corroborations, corrections or retraction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, assert_never

import msgspec

from events.domain.amendments import (
    Record,
    Stored,
    decide_amendment,
    evolve_record,
    is_amendment,
    refold,
)
from events.domain.catalogue import INTERACTION_EVENTS
from events.domain.coding import code_for
from events.domain.commands import AddSource, CorrectEvent, RecordInteraction, RetractEvent
from events.domain.errors import InvalidCommandError, RuleViolationError, UnknownTargetError
from events.domain.kinds import INTERACTION_KINDS
from events.domain.valid_time import valid_time
from events.domain.vocabulary import Participant

if TYPE_CHECKING:
    from events.domain.catalogue import DomainEvent
    from events.domain.directory import Directory
    from events.domain.kinds import Kind

__all__ = ("InteractionCommand", "InteractionState", "decide", "evolve")

InteractionCommand = RecordInteraction | AddSource | CorrectEvent | RetractEvent

# Fields only some kinds carry: a value given for another kind is refused, not dropped.
_KIND_FIELDS: Final = INTERACTION_KINDS.fields()


class InteractionState(msgspec.Struct, frozen=True, kw_only=True):
    """One interaction as its stream tells it."""

    interaction_id: str | None = None
    kind: str | None = None
    record: Record = Record()


def evolve(state: InteractionState, stored: Stored) -> InteractionState:
    """Fold one stored event into the state."""
    event = stored.event
    record = evolve_record(state.record, stored)
    if is_amendment(event):
        return refold(InteractionState(), evolve, record)
    if isinstance(event, INTERACTION_EVENTS):
        return InteractionState(
            interaction_id=event.interaction_id, kind=type(event).__name__, record=record
        )
    return msgspec.structs.replace(state, record=record)


def _kind_fields(command: RecordInteraction, kind: Kind) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in _KIND_FIELDS:
        value = getattr(command, name)
        if value in (None, False):
            continue
        if name not in kind.fields:
            raise InvalidCommandError(
                f"{name!r} does not apply to a {command.kind} interaction", field=name
            )
        fields[name] = value
    for name in kind.required:
        if name not in fields:
            raise InvalidCommandError(f"a {command.kind} interaction needs {name!r}", field=name)
    return fields


def decide(
    state: InteractionState, command: InteractionCommand, directory: Directory
) -> list[DomainEvent]:
    """The rules for an interaction."""
    match command:
        case RecordInteraction():
            return _record(state, command, directory)
        case AddSource() | CorrectEvent() | RetractEvent():
            if not state.record.facts:
                raise UnknownTargetError("no such interaction was recorded", field="stream")
            return decide_amendment(state.record, command, directory)
        case _:
            assert_never(command)


def _record(
    state: InteractionState, command: RecordInteraction, directory: Directory
) -> list[DomainEvent]:
    if state.interaction_id is not None:
        raise RuleViolationError(
            f"interaction {command.interaction_id!r} is already recorded; correct it instead",
            field="interaction_id",
        )
    if not command.participants:
        raise InvalidCommandError(
            "an interaction needs at least one participant", field="participants"
        )
    when = valid_time(command.valid_time, command.valid_time_raw)
    participants = tuple(
        Participant(
            actor_id=directory.resolve(
                p.actor,
                field=f"participants[{i}].actor",
                organisation=p.organisation,
                on=when.lower,
            ),
            role=p.role,
            name_as_reported=p.name_as_reported
            or (p.actor if directory.get(p.actor) is None else None),
            title_as_reported=p.title_as_reported,
        )
        for i, p in enumerate(command.participants)
    )
    kind = INTERACTION_KINDS[command.kind]
    return [
        kind.event(
            interaction_id=command.interaction_id,
            participants=participants,
            valid_time=when,
            place=command.place,
            topics=command.topics,
            modality=command.modality,
            attributed_to=command.attributed_to,
            coding=code_for(kind.name, override=command.coding, contexts=command.contexts),
            sources=command.sources,
            meeting_id=command.meeting_id,
            **_kind_fields(command, kind),
        )
    ]
