"""The command handler: load the stream, decide, append with the expected version.

Thin on purpose: the rules live in the aggregates' pure ``decide``/``evolve``. On a concurrent
write the handler reloads and decides again, so it retries only if the decision still holds
against the new state (a rule that now refuses raises instead).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from typing import TYPE_CHECKING, Any, Final, assert_never

import msgspec

from events.committed import CommittedActorEvents
from events.domain import actors, declarations, interactions, meetings
from events.domain.amendments import Stored
from events.domain.catalogue import CATALOGUE
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
from events.domain.directory import Directory
from events.domain.errors import AmbiguousActorError, UnknownActorError
from events.errors import WrongExpectedVersionError
from events.records import AppendResult, Metadata
from events.rows import expectation_holds

if TYPE_CHECKING:
    from collections.abc import Callable

    from events.domain.catalogue import DomainEvent
    from events.domain.commands import Command
    from events.records import RecordedEvent
    from events.store import EventStore

__all__ = ("COMMAND_NAMESPACE", "CommandHandler", "Outcome", "stream_of")

COMMAND_NAMESPACE: Final = uuid.UUID("5b0f1c1e-8d1e-4f0e-9a51-6469706c6f66")
"""Event ids of an identified command are uuid5(this, "<command id>#<n>")."""
_RETRIES: Final = 5
_FOUNDING: Final = (RegisterActor, RecordInteraction, ScheduleMeeting, DraftDeclaration)
"""Commands whose first event founds their stream (one whose stream exists is refused)."""


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a command recorded. ``replayed``: the command id was handled before, and this is
    what it recorded then; ``result`` is ``None`` when there was nothing new to record."""

    stream_id: str
    event_ids: list[str]
    result: AppendResult | None
    replayed: bool = False


_Aggregate = tuple[
    Any, "Callable[[Any, Stored], Any]", "Callable[[Any, Any, Directory], list[DomainEvent]]"
]
_AGGREGATES: dict[str, _Aggregate] = {
    "actor": (actors.ActorState(), actors.evolve, actors.decide),
    "meeting": (meetings.MeetingState(), meetings.evolve, meetings.decide),
    "declaration": (declarations.DeclarationState(), declarations.evolve, declarations.decide),
    "interaction": (interactions.InteractionState(), interactions.evolve, interactions.decide),
}


def stream_of(command: Command, directory: Directory) -> str:
    """The stream a command is decided on (resolving an actor named by name)."""
    match command:
        case AddSource() | CorrectEvent() | RetractEvent():
            return command.stream
        case RegisterActor():
            return f"actor-{command.actor_id}"
        case AddAlias() | AssignRole() | MergeActors():
            return f"actor-{directory.resolve(command.actor, field='actor')}"
        case RecordInteraction():
            return f"interaction-{command.interaction_id}"
        case DraftDeclaration() | SignDeclaration() | RefuseSignature():
            return f"declaration-{command.declaration_id}"
        case (
            ScheduleMeeting()
            | StateMeetingPurpose()
            | ReviseMeetingDate()
            | PostponeMeeting()
            | CancelMeeting()
            | InviteFaction()
            | ConfirmAttendance()
            | DeclineAttendance()
            | NameDelegationLeader()
            | NameDelegationMember()
        ):
            return f"meeting-{command.meeting_id}"
        case _:
            assert_never(command)


class CommandHandler:
    """Handles commands against the event store, keeping an actor directory up to date with
    every committed actor event so that commands may name actors by any spelling."""

    def __init__(self, store: EventStore, *, directory_max_age: float = 0.0) -> None:
        """``directory_max_age``: a command may be decided on a directory refreshed this many
        seconds ago (0: refresh before every command). A busy server saves a query per
        command; a name the older directory does not know (or finds ambiguous) is looked up
        again after a refresh, and actors this handler registers are known at once."""
        self._store = store
        self.directory = Directory()
        # Every committed actor event, not only those the feed shows: the feed stops at the
        # horizon, which a long transaction anywhere on the server holds back, and a name
        # registered by another process must resolve at once (events.committed).
        self._actor_events = CommittedActorEvents(store.pool)
        self._max_age = directory_max_age
        self._refreshed_at = -math.inf
        # Concurrent commands (an HTTP server's) share the directory: one refresh at a time, or
        # two would fold the same actor events twice.
        self._refreshing = asyncio.Lock()

    async def refresh_directory(self, *, max_age: float = 0.0) -> bool:
        """Fold actor events committed since the last refresh into the directory, unless it
        was refreshed less than ``max_age`` seconds ago; whether it read them."""
        asked = time.monotonic()
        if asked - self._refreshed_at < max_age:
            return False
        async with self._refreshing:
            # Another command's refresh, done while this one waited, may do: one that began
            # after this one asked covers it entirely, a recent one within ``max_age``.
            if self._refreshed_at >= asked:
                return True
            if max_age > 0 and time.monotonic() - self._refreshed_at < max_age:
                return False
            started = time.monotonic()
            async for page in self._actor_events.read_new():
                for recorded in page:
                    event = CATALOGUE.decode(recorded)
                    self.directory.apply(event, str(recorded.event_id))  # type: ignore[arg-type]
            self._refreshed_at = started
        return True

    async def _load(self, stream_id: str) -> tuple[list[RecordedEvent], int]:
        events: list[RecordedEvent] = []
        version = 1
        while True:
            chunk = await self._store.read_stream(stream_id, from_version=version, limit=1_000)
            events.extend(chunk.events)
            if chunk.next_version is None:
                return events, chunk.current_version
            version = chunk.next_version

    async def handle(
        self,
        command: Command,
        *,
        metadata: Metadata | None = None,
        expected_version: int | None = None,
    ) -> Outcome:
        """Decide ``command`` against its stream and append what it decides.

        With ``expected_version`` the caller states the stream version its decision was based
        on (HTTP ``If-Match``): the command is decided only against that version and never
        retried on a newer one.

        Raises:
            DomainError: the rules refuse the command (nothing is appended).
            WrongExpectedVersionError: the stream is not at ``expected_version``, or it kept
                changing under five attempts.
        """
        fresh = await self.refresh_directory(max_age=self._max_age)
        try:
            return await self._handle(command, metadata, expected_version)
        except (UnknownActorError, AmbiguousActorError):
            if fresh:
                raise
        await self.refresh_directory()
        return await self._handle(command, metadata, expected_version)

    async def _handle(
        self, command: Command, metadata: Metadata | None, expected_version: int | None
    ) -> Outcome:
        stream_id = stream_of(command, self.directory)
        initial, evolve, decide = _AGGREGATES[stream_id.split("-", 1)[0]]
        meta = metadata or Metadata()
        if command.command_id is not None:
            meta = msgspec.structs.replace(meta, causation_id=command.command_id)
        # A command that founds its stream is first decided on the empty stream and appended
        # as its first version, which saves reading it; if the stream exists after all, the
        # append says so (or replays the same command) and the next attempt reads it.
        optimistic = isinstance(command, _FOUNDING) and expected_version in (None, 0)
        for attempt in range(_RETRIES):
            recorded: list[RecordedEvent]
            if optimistic and attempt == 0:
                recorded, version = [], 0
            else:
                recorded, version = await self._load(stream_id)
            ids = self._event_ids(command)
            if ids is not None:
                earlier = [str(e.event_id) for e in recorded if str(e.event_id) in set(ids)]
                if earlier:
                    return Outcome(
                        stream_id=stream_id, event_ids=earlier, result=None, replayed=True
                    )
            if expected_version is not None and not expectation_holds(expected_version, version):
                raise WrongExpectedVersionError(stream_id, expected_version, version)
            state = initial
            for stored in recorded:
                state = evolve(state, Stored(str(stored.event_id), CATALOGUE.decode(stored)))  # type: ignore[arg-type]
            decided = decide(state, command, self.directory)
            if not decided:
                return Outcome(stream_id=stream_id, event_ids=[], result=None)
            new = [
                CATALOGUE.new_event(
                    event,
                    event_id=uuid.UUID(ids[n]) if ids is not None else None,
                    metadata=meta,
                )
                for n, event in enumerate(decided)
            ]
            try:
                result = await self._store.append(stream_id, new, version)
            except WrongExpectedVersionError:
                if attempt == _RETRIES - 1:
                    raise
                if not (optimistic and attempt == 0):
                    await self.refresh_directory()
                continue
            for fact, appended in zip(decided, new, strict=True):
                self.directory.apply(fact, str(appended.event_id))
            return Outcome(
                stream_id=stream_id,
                event_ids=[str(e.event_id) for e in new],
                result=result,
                replayed=result.replayed,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _event_ids(command: Command) -> list[str] | None:
        if command.command_id is None:
            return None
        # Enough ids for what one command can decide; only the first few are ever used.
        return [str(uuid.uuid5(COMMAND_NAMESPACE, f"{command.command_id}#{n}")) for n in range(4)]
