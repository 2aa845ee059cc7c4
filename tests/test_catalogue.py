"""The event catalogue: stable tags, one decoder for the whole union, stored form round trips."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime
from uuid import uuid4

import msgspec

from events import RecordedEvent
from events.domain.catalogue import CATALOGUE, EVENT_DECODER, DomainEvent
from events.domain.directory import Directory
from events.domain.seed import seed_commands

_TAG = re.compile(r"^[a-z]+(\.[a-z_]+)+\.v[0-9]+$")


def test_every_type_has_a_stable_dotted_versioned_tag() -> None:
    tags = list(CATALOGUE.types)
    assert len(tags) == len(DomainEvent.__args__) == 27
    assert all(_TAG.match(tag) for tag in tags), tags
    for cls in DomainEvent.__args__:
        assert cls.__struct_config__.frozen
        parameters = inspect.signature(cls).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters), cls


def _sample_events() -> list[DomainEvent]:
    """Real events, as the rules decided them for the seed article (no database needed)."""
    from events.domain import actors, declarations, interactions, meetings  # noqa: PLC0415
    from events.domain.amendments import Stored  # noqa: PLC0415
    from events.domain.handler import stream_of  # noqa: PLC0415

    modules = {
        "actor": actors,
        "meeting": meetings,
        "declaration": declarations,
        "interaction": interactions,
    }
    initial = {
        "actor": actors.ActorState(),
        "meeting": meetings.MeetingState(),
        "declaration": declarations.DeclarationState(),
        "interaction": interactions.InteractionState(),
    }
    directory = Directory()
    states: dict[str, object] = {}
    decided: list[DomainEvent] = []
    for command in seed_commands():
        stream = stream_of(command, directory)
        kind = stream.split("-", 1)[0]
        module = modules[kind]
        state = states.get(stream, initial[kind])
        for n, event in enumerate(module.decide(state, command, directory)):
            event_id = str(uuid4())
            state = module.evolve(state, Stored(event_id, event))
            directory.apply(event, event_id)
            decided.append(event)
            assert n == 0
        states[stream] = state
    return decided


def test_one_decoder_reads_every_event_with_its_tag() -> None:
    events = _sample_events()
    assert len({type(e) for e in events}) >= 14
    for event in events:
        assert EVENT_DECODER.decode(msgspec.json.encode(event)) == event


def test_stored_form_round_trips_through_the_registry() -> None:
    for event in _sample_events():
        new = CATALOGUE.new_event(event)
        assert "type" not in new.data
        recorded = RecordedEvent(
            1,
            1,
            "x-1",
            1,
            new.event_id,
            new.type,
            new.schema_version,
            msgspec.json.encode(new.data).decode(),
            "{}",
            datetime.now(UTC),
            bytes(32),
        )
        assert CATALOGUE.decode(recorded) == event


def test_stored_events_tolerate_fields_added_later() -> None:
    event = _sample_events()[0]
    new = CATALOGUE.new_event(event)
    data = {**new.data, "a_field_from_the_future": [1, 2, 3]}
    recorded = RecordedEvent(
        1,
        1,
        "x-1",
        1,
        uuid4(),
        new.type,
        1,
        msgspec.json.encode(data).decode(),
        "{}",
        datetime.now(UTC),
        bytes(32),
    )
    assert CATALOGUE.decode(recorded) == event
