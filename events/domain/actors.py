"""The actor aggregate (stream ``actor-<id>``): registration, aliases, roles, merges."""

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
from events.domain.catalogue import ActorRegistered, ActorsMerged, AliasAdded, RoleAssigned
from events.domain.commands import (
    AddAlias,
    AddSource,
    AssignRole,
    CorrectEvent,
    MergeActors,
    RegisterActor,
    RetractEvent,
)
from events.domain.directory import ORGANISATION_KINDS
from events.domain.errors import InvalidCommandError, RuleViolationError, UnknownTargetError
from events.domain.names import normalise
from events.domain.valid_time import valid_time

if TYPE_CHECKING:
    from events.domain.catalogue import DomainEvent
    from events.domain.directory import Directory

__all__ = ("ActorCommand", "ActorState", "decide", "evolve")

ActorCommand = (
    RegisterActor | AddAlias | AssignRole | MergeActors | AddSource | CorrectEvent | RetractEvent
)


class ActorState(msgspec.Struct, frozen=True, kw_only=True):
    """One actor as its stream tells it."""

    actor_id: str | None = None
    kind: str | None = None
    canonical_name: str | None = None
    names: frozenset[str] = frozenset()
    """Normalised canonical name and aliases, to spot an alias already known."""
    merged: frozenset[str] = frozenset()
    record: Record = Record()


def evolve(state: ActorState, stored: Stored) -> ActorState:
    """Fold one stored event into the state."""
    event = stored.event
    record = evolve_record(state.record, stored)
    if is_amendment(event):
        return refold(ActorState(), evolve, record)
    if isinstance(event, ActorRegistered):
        names = {normalise(event.canonical_name), *(normalise(a.text) for a in event.aliases)}
        return ActorState(
            actor_id=event.actor_id,
            kind=event.kind,
            canonical_name=event.canonical_name,
            names=frozenset(names),
            record=record,
        )
    if isinstance(event, AliasAdded):
        return msgspec.structs.replace(
            state, names=state.names | {normalise(event.alias.text)}, record=record
        )
    if isinstance(event, ActorsMerged):
        return msgspec.structs.replace(
            state, merged=state.merged | {event.merged_actor_id}, record=record
        )
    return msgspec.structs.replace(state, record=record)


def _check_name(name: object, field: str) -> None:
    # The name index matches on the normalised name: one with nothing left (only punctuation
    # or symbols, or only an article) could never be found, and the index refuses it.
    if isinstance(name, str) and not normalise(name):
        raise InvalidCommandError(
            f"the name {name!r} has no letters or digits to be found by", field=field
        )


def decide(state: ActorState, command: ActorCommand, directory: Directory) -> list[DomainEvent]:
    """The rules for an actor: one function per command."""
    match command:
        case RegisterActor():
            return _register(state, command)
        case AddSource() | CorrectEvent() | RetractEvent():
            return _amend(state, command, directory)
        case AddAlias():
            return _add_alias(state, command)
        case AssignRole():
            return _assign_role(state, command, directory)
        case MergeActors():
            return _merge(state, command, directory)
        case _:
            assert_never(command)


def _registered(state: ActorState) -> str:
    if state.actor_id is None:
        raise UnknownTargetError("the actor is not registered", field="actor")
    return state.actor_id


def _register(state: ActorState, command: RegisterActor) -> list[DomainEvent]:
    _check_name(command.canonical_name, "canonical_name")
    if state.actor_id is not None:
        raise RuleViolationError(
            f"actor {command.actor_id!r} is already registered as {state.canonical_name!r}",
            field="actor_id",
        )
    return [
        ActorRegistered(
            actor_id=command.actor_id,
            kind=command.kind,
            canonical_name=command.canonical_name,
            aliases=command.aliases,
            cameo_code=command.cameo_code,
            wikidata_qid=command.wikidata_qid,
            country=command.country,
            sources=command.sources,
        )
    ]


def _amend(
    state: ActorState, command: AddSource | CorrectEvent | RetractEvent, directory: Directory
) -> list[DomainEvent]:
    if not state.record.facts:
        _registered(state)
    # Amendments act on the stream's facts, even once its registration was retracted.
    if isinstance(command, CorrectEvent) and "canonical_name" in command.changes:
        _check_name(command.changes["canonical_name"], "changes.canonical_name")
    return decide_amendment(state.record, command, directory)


def _add_alias(state: ActorState, command: AddAlias) -> list[DomainEvent]:
    actor_id = _registered(state)
    if normalise(command.alias.text) in state.names:
        return []  # already known under that spelling: nothing new to record
    return [AliasAdded(actor_id=actor_id, alias=command.alias, sources=command.sources)]


def _assign_role(state: ActorState, command: AssignRole, directory: Directory) -> list[DomainEvent]:
    actor_id = _registered(state)
    organisation = directory.resolve(
        command.organisation, field="organisation", kinds=ORGANISATION_KINDS
    )
    if organisation == actor_id:
        raise RuleViolationError("an actor cannot hold a role in itself", field="organisation")
    return [
        RoleAssigned(
            actor_id=actor_id,
            organisation_id=organisation,
            title_as_reported=command.title_as_reported,
            role_code=command.role_code,
            valid_time=valid_time(command.valid_time, command.valid_time_raw),
            sources=command.sources,
        )
    ]


def _merge(state: ActorState, command: MergeActors, directory: Directory) -> list[DomainEvent]:
    actor_id = _registered(state)
    if command.merged_actor in state.merged:
        return []  # the directory now resolves that id to this very actor
    merged = directory.resolve(command.merged_actor, field="merged_actor")
    if merged == actor_id:
        raise RuleViolationError("an actor cannot be merged into itself", field="merged_actor")
    if merged in state.merged:
        return []
    if directory.kind_of(merged) != state.kind:
        raise RuleViolationError(
            f"cannot merge {directory.kind_of(merged)} {merged!r} into {state.kind} "
            f"{actor_id!r}: they are different kinds of actor",
            field="merged_actor",
        )
    return [ActorsMerged(actor_id=actor_id, merged_actor_id=merged, reason=command.reason)]
