"""The command handler against a real PostgreSQL: refusals append nothing, command ids make
commands idempotent, concurrent writers are retried only while the decision still holds."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest

from events import EventStore, Metadata
from events.domain.commands import (
    AddAlias,
    ConfirmAttendance,
    InviteFaction,
    NameDelegationLeader,
    ParticipantRef,
    RecordInteraction,
    RegisterActor,
    ScheduleMeeting,
)
from events.domain.errors import RuleViolationError, UnknownActorError
from events.domain.handler import CommandHandler
from events.domain.vocabulary import Alias

if TYPE_CHECKING:
    import asyncpg


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def _setup(store: EventStore) -> tuple[CommandHandler, str, list[str], str]:
    handler = CommandHandler(store)
    meeting = _id("m")
    factions = [_id("faction") for _ in range(4)]
    for n, faction in enumerate(factions):
        await handler.handle(
            RegisterActor(
                actor_id=faction, kind="organisation", canonical_name=f"Front {n} {faction}"
            )
        )
    person = _id("p")
    await handler.handle(
        RegisterActor(actor_id=person, kind="person", canonical_name=f"Zakariya Qasimi {person}")
    )
    await handler.handle(
        ScheduleMeeting(meeting_id=meeting, title="Talks", valid_time="2024-02-28/2024-02-29")
    )
    for faction in factions:
        await handler.handle(InviteFaction(meeting_id=meeting, faction=faction))
    return handler, meeting, factions, person


async def test_a_refused_command_appends_nothing(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    handler, meeting, factions, person = await _setup(store)
    before = await store.stream_version(f"meeting-{meeting}")
    with pytest.raises(RuleViolationError) as caught:
        await handler.handle(
            NameDelegationLeader(meeting_id=meeting, faction=factions[0], person=factions[1])
        )
    assert caught.value.field == "person"
    with pytest.raises(UnknownActorError) as unknown:
        await handler.handle(
            NameDelegationLeader(meeting_id=meeting, faction=factions[0], person="Nobody Atall")
        )
    assert unknown.value.field == "person"
    assert await store.stream_version(f"meeting-{meeting}") == before
    # The same command with a registered person is recorded.
    await handler.handle(
        NameDelegationLeader(meeting_id=meeting, faction=factions[0], person=person)
    )
    assert await store.stream_version(f"meeting-{meeting}") == before + 1


async def test_a_command_id_makes_a_command_idempotent(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    handler, meeting, factions, _ = await _setup(store)
    command = ConfirmAttendance(meeting_id=meeting, faction=factions[0], command_id=_id("cmd"))
    first = await handler.handle(command, metadata=Metadata(recorded_by="key:test"))
    version = await store.stream_version(f"meeting-{meeting}")
    again = await CommandHandler(store).handle(command)
    assert not first.replayed
    assert again.replayed
    assert again.event_ids == first.event_ids
    assert await store.stream_version(f"meeting-{meeting}") == version
    [stored] = (await store.read_stream(f"meeting-{meeting}", backward=True, limit=1)).events
    metadata = stored.decoded_metadata()
    assert (metadata.causation_id, metadata.recorded_by) == (command.command_id, "key:test")


async def test_concurrent_writers_are_retried_when_the_decision_still_holds(
    pool: asyncpg.Pool,
) -> None:
    store = EventStore(pool)
    _, meeting, factions, _ = await _setup(store)
    # Separate handlers, as in separate processes: each decides on what it loaded.
    handlers = [CommandHandler(store) for _ in factions]
    outcomes = await asyncio.gather(
        *(
            h.handle(ConfirmAttendance(meeting_id=meeting, faction=f))
            for h, f in zip(handlers, factions, strict=True)
        )
    )
    assert all(o.result is not None for o in outcomes)
    types = [e.type for e in (await store.read_stream(f"meeting-{meeting}")).events]
    assert types.count("meeting.attendance_confirmed.v1") == len(factions)


async def test_a_retry_whose_decision_no_longer_holds_is_refused(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    meeting = _id("m")
    handlers = [CommandHandler(store) for _ in range(4)]
    outcomes = await asyncio.gather(
        *(
            h.handle(ScheduleMeeting(meeting_id=meeting, title=f"Talks {n}", valid_time="2024-03"))
            for n, h in enumerate(handlers)
        ),
        return_exceptions=True,
    )
    assert sum(1 for o in outcomes if not isinstance(o, BaseException)) == 1
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(o, RuleViolationError) for o in refused)
    assert len((await store.read_stream(f"meeting-{meeting}")).events) == 1


async def test_actors_registered_elsewhere_resolve_by_any_spelling(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    writer, reader = CommandHandler(store), CommandHandler(store)
    org, person = _id("org"), _id("p")
    await writer.handle(
        RegisterActor(actor_id=org, kind="organisation", canonical_name=f"Org {org}")
    )
    surname = f"Marzouq{uuid.uuid4().hex[:6]}"
    await writer.handle(
        RegisterActor(actor_id=person, kind="person", canonical_name=f"Mousa Abu {surname}")
    )
    outcome = await reader.handle(
        RecordInteraction(
            kind="phone_call",
            interaction_id=_id("call"),
            participants=(
                ParticipantRef(actor=f"Musa Abu {surname}", role="initiator"),
                ParticipantRef(actor=org, role="recipient"),
            ),
            valid_time="2024-02",
        )
    )
    assert outcome.result is not None
    [event] = (await store.read_stream(outcome.stream_id)).events
    assert f'"actor_id": "{person}"' in event.data
    assert f'"name_as_reported": "Musa Abu {surname}"' in event.data


async def test_a_founding_command_replays_even_after_its_stream_moved_on(
    pool: asyncpg.Pool,
) -> None:
    store = EventStore(pool)
    handler = CommandHandler(store)
    actor_id = _id("a")
    register = RegisterActor(
        actor_id=actor_id, kind="person", canonical_name=f"P {actor_id}", command_id=_id("c")
    )
    first = await handler.handle(register)
    await handler.handle(AddAlias(actor=actor_id, alias=Alias(text=f"Alias {actor_id}")))
    again = await CommandHandler(store).handle(register)
    assert again.replayed
    assert again.event_ids == first.event_ids
    with pytest.raises(RuleViolationError):
        await CommandHandler(store).handle(
            RegisterActor(actor_id=actor_id, kind="person", canonical_name="Someone else")
        )
    assert len((await store.read_stream(f"actor-{actor_id}")).events) == 2


async def test_an_older_directory_still_finds_a_name_registered_elsewhere(
    pool: asyncpg.Pool,
) -> None:
    store = EventStore(pool)
    writer = CommandHandler(store)
    reader = CommandHandler(store, directory_max_age=3_600)
    await reader.refresh_directory()  # now "fresh" for an hour
    person = _id("p")
    surname = f"Qwertz{uuid.uuid4().hex[:6]}"
    await writer.handle(
        RegisterActor(actor_id=person, kind="person", canonical_name=f"Anna {surname}")
    )
    meeting = _id("m")
    await writer.handle(ScheduleMeeting(meeting_id=meeting, title="T", valid_time="2024"))
    faction = _id("f")
    await writer.handle(
        RegisterActor(actor_id=faction, kind="organisation", canonical_name=f"F {faction}")
    )
    await writer.handle(InviteFaction(meeting_id=meeting, faction=faction))
    async with asyncio.timeout(20):
        while True:  # the feed's horizon is cluster-wide: wait until the writes are visible
            try:
                outcome = await reader.handle(
                    NameDelegationLeader(
                        meeting_id=meeting, faction=faction, person=f"Anna {surname}"
                    )
                )
                break
            except UnknownActorError:
                await asyncio.sleep(0.05)
    assert outcome.result is not None
