"""What every aggregate shares: the facts it recorded, by event id, and the rules for adding a
source to one, correcting it, or retracting it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, assert_never

import msgspec

from events.domain.catalogue import DomainEvent, EventCorrected, EventRetracted, SourceAdded
from events.domain.commands import AddSource, CorrectEvent, RetractEvent
from events.domain.corrections import corrected_fields
from events.domain.errors import InvalidCommandError, RuleViolationError, UnknownTargetError

if TYPE_CHECKING:
    from collections.abc import Callable

    from events.domain.directory import Directory

S = TypeVar("S", bound=msgspec.Struct)

__all__ = (
    "AMENDMENTS",
    "Record",
    "Stored",
    "apply_changes",
    "decide_amendment",
    "evolve_record",
    "is_amendment",
    "refold",
)

AMENDMENTS = (SourceAdded, EventCorrected, EventRetracted)


class Stored(msgspec.Struct, frozen=True):
    """A domain event with the id it was stored under, as ``evolve`` receives it."""

    event_id: str
    event: DomainEvent


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """The facts of one stream (their current, corrected form) and which were retracted."""

    facts: dict[str, Any] = msgspec.field(default_factory=dict)
    retracted: frozenset[str] = frozenset()


def evolve_record(record: Record, stored: Stored) -> Record:
    """Fold one stored event into the record."""
    event = stored.event
    if isinstance(event, EventRetracted):
        return msgspec.structs.replace(record, retracted=record.retracted | {event.target_event_id})
    if isinstance(event, EventCorrected):
        target = record.facts.get(event.target_event_id)
        if target is None:
            return record
        corrected = apply_changes(target, event.changes)
        return msgspec.structs.replace(
            record, facts={**record.facts, event.target_event_id: corrected}
        )
    if isinstance(event, SourceAdded):
        return record
    return msgspec.structs.replace(record, facts={**record.facts, stored.event_id: event})


def is_amendment(event: DomainEvent) -> bool:
    """Whether ``event`` changes an earlier fact (a correction or retraction)."""
    return isinstance(event, (EventCorrected, EventRetracted))


def refold(initial: S, evolve: Callable[[S, Stored], S], record: Record) -> S:
    """The state as if only the current facts had happened: retracted ones left out,
    corrected ones in their corrected form. Aggregates call it after an amendment, so the
    rules never act on a fact that was withdrawn or on a field that was replaced."""
    state = initial
    for event_id, fact in record.facts.items():
        if event_id not in record.retracted:
            state = evolve(state, Stored(event_id, fact))
    return msgspec.structs.replace(state, record=record)


def apply_changes(target: Any, changes: dict[str, Any]) -> Any:
    """``target`` with the corrected fields replaced."""
    data = msgspec.to_builtins(target)
    data.update(changes)
    return msgspec.convert(data, type(target))


def _checked(target: Any, changes: dict[str, Any], directory: Directory) -> dict[str, Any]:
    """The correction's values as the event stores them, checked against the whole event."""
    clean = corrected_fields(target, changes, directory)
    try:
        apply_changes(target, clean)
    except msgspec.ValidationError as exc:  # a value valid alone but not in this event
        raise InvalidCommandError(
            f"the corrected event would be invalid: {exc}", field="changes"
        ) from exc
    return clean


def _target(record: Record, target_event_id: str, action: str) -> Any:
    target = record.facts.get(target_event_id)
    if target is None:
        raise UnknownTargetError(
            f"cannot {action} event {target_event_id}: this stream recorded no such fact",
            field="target_event_id",
        )
    if target_event_id in record.retracted:
        raise RuleViolationError(
            f"cannot {action} event {target_event_id}: it was already retracted",
            field="target_event_id",
        )
    return target


def decide_amendment(
    record: Record, command: AddSource | CorrectEvent | RetractEvent, directory: Directory
) -> list[DomainEvent]:
    """The rules for amending a recorded fact (a correction's actor references are resolved
    through ``directory``, like any command's)."""
    match command:
        case AddSource():
            _target(record, command.target_event_id, "add a source to")
            return [SourceAdded(target_event_id=command.target_event_id, source=command.source)]
        case CorrectEvent():
            target = _target(record, command.target_event_id, "correct")
            return [
                EventCorrected(
                    target_event_id=command.target_event_id,
                    changes=_checked(target, command.changes, directory),
                    reason=command.reason,
                    sources=command.sources,
                )
            ]
        case RetractEvent():
            _target(record, command.target_event_id, "retract")
            return [
                EventRetracted(
                    target_event_id=command.target_event_id,
                    reason=command.reason,
                    sources=command.sources,
                )
            ]
        case _:
            assert_never(command)
