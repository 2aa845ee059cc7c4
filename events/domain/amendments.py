"""What every aggregate shares: the facts it recorded, by event id, and the rules for adding a
source to one, correcting it, or retracting it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeVar, assert_never

import msgspec

from events.domain.catalogue import DomainEvent, EventCorrected, EventRetracted, SourceAdded
from events.domain.commands import AddSource, CorrectEvent, RetractEvent
from events.domain.errors import InvalidCommandError, RuleViolationError, UnknownTargetError
from events.domain.valid_time import valid_time

if TYPE_CHECKING:
    from collections.abc import Callable

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

# Fields that say what a fact is about; a correction that changed them would be a different fact.
# ``meeting_id`` identifies a meeting's own events, but is only a link on an interaction or a
# declaration, and a link may be corrected.
_IDENTITY_FIELDS = frozenset({"actor_id", "interaction_id", "declaration_id", "merged_actor_id"})
_PATH = re.compile(r"at `\$\.(\w+)")


def _identity_fields(target: Any) -> frozenset[str]:
    tag = type(target).__struct_config__.tag
    if isinstance(tag, str) and tag.startswith("meeting."):
        return _IDENTITY_FIELDS | {"meeting_id"}
    return _IDENTITY_FIELDS


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


def _validated_changes(target: Any, changes: dict[str, Any]) -> dict[str, Any]:
    fields = set(target.__struct_fields__)
    clean: dict[str, Any] = {}
    for name, given in changes.items():
        if name not in fields:
            raise InvalidCommandError(
                f"{type(target).__name__} has no field {name!r}; it has {sorted(fields)}",
                field=f"changes.{name}",
            )
        if name in _identity_fields(target):
            raise InvalidCommandError(
                f"{name!r} identifies the fact and cannot be corrected; retract it and record "
                "the right one instead",
                field=f"changes.{name}",
            )
        value = given
        if name == "valid_time" and isinstance(given, str):
            try:
                value = msgspec.to_builtins(valid_time(given))
            except InvalidCommandError as exc:
                raise type(exc)(str(exc), field="changes.valid_time") from exc
        clean[name] = value
    try:
        apply_changes(target, clean)
    except msgspec.ValidationError as exc:
        path = _PATH.search(str(exc))
        raise InvalidCommandError(
            f"the corrected event would be invalid: {exc}",
            field=f"changes.{path.group(1)}" if path else "changes",
        ) from exc
    return clean


def decide_amendment(
    record: Record, command: AddSource | CorrectEvent | RetractEvent
) -> list[DomainEvent]:
    """The rules for amending a recorded fact."""
    match command:
        case AddSource():
            _target(record, command.target_event_id, "add a source to")
            return [SourceAdded(target_event_id=command.target_event_id, source=command.source)]
        case CorrectEvent():
            target = _target(record, command.target_event_id, "correct")
            return [
                EventCorrected(
                    target_event_id=command.target_event_id,
                    changes=_validated_changes(target, command.changes),
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
