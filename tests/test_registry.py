"""Schema evolution: events stored in an old shape decode into today's Structs via upcasters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import uuid4

import msgspec
import pytest

from events import (
    EventDecodeError,
    EventRegistry,
    Metadata,
    NewEvent,
    RecordedEvent,
    UnknownEventTypeError,
    UpcastError,
)
from events.registry import event_type_of

if TYPE_CHECKING:
    from events import EventStore


class ThingV1(msgspec.Struct, tag="test.thing"):
    """How the code wrote ``test.thing`` at first."""

    schema_version: ClassVar[int] = 1
    name: str


class Thing(msgspec.Struct, tag="test.thing"):
    """Today's ``test.thing``: ``name`` became ``title``, and ``rank`` was added."""

    schema_version: ClassVar[int] = 2
    title: str
    rank: int = 0


class Untagged(msgspec.Struct):
    value: int


def _v1_registry() -> EventRegistry:
    registry = EventRegistry()
    registry.register(ThingV1)
    return registry


def _v2_registry() -> EventRegistry:
    registry = EventRegistry()
    registry.register(Thing)

    @registry.upcaster("test.thing", 1)
    def name_to_title(data: dict[str, Any]) -> dict[str, Any]:
        data["title"] = data.pop("name")
        return data

    # The type was once called ``test.object``, and its v1 kept the name under ``label``.
    @registry.upcaster("test.object", 1, to_type="test.thing")
    def object_to_thing(data: dict[str, Any]) -> dict[str, Any]:
        return {"name": data["label"]}

    return registry


def _recorded(type: str, schema_version: int, data: str) -> RecordedEvent:
    """A stored event as the store would return it (for cases that need no database)."""
    return RecordedEvent(
        1, 1, "thing-1", 1, uuid4(), type, schema_version, data, "{}", datetime.now(UTC), bytes(32)
    )


async def test_an_old_stored_event_decodes_into_todays_struct(
    store: EventStore, stream: str
) -> None:
    # Written by the v1 code, with a field that no version of the code knows.
    old = _v1_registry().new_event(ThingV1(name="Meshal"))
    assert old.schema_version == 1
    await store.append(stream, [old])
    await store.append(
        stream,
        [
            NewEvent(
                type="test.thing",
                schema_version=1,
                data={"name": "Meshal", "written_by": "a newer build"},
            ),
            _v2_registry().new_event(Thing(title="Meshal", rank=3)),
        ],
    )
    stored = (await store.read_stream(stream)).events
    assert [(e.type, e.schema_version) for e in stored] == [
        ("test.thing", 1),
        ("test.thing", 1),
        ("test.thing", 2),
    ]

    registry = _v2_registry()
    decoded = [registry.decode(e) for e in stored]
    assert decoded == [Thing(title="Meshal"), Thing(title="Meshal"), Thing(title="Meshal", rank=3)]
    assert all(type(d) is Thing for d in decoded)
    # The v1 code still reads what it wrote.
    assert _v1_registry().decode(stored[0]) == ThingV1(name="Meshal")


async def test_a_renamed_type_is_upcast_through_both_steps(store: EventStore, stream: str) -> None:
    await store.append(
        stream, [NewEvent(type="test.object", schema_version=1, data={"label": "Hilal"})]
    )
    (event,) = (await store.read_stream(stream)).events
    assert _v2_registry().decode(event) == Thing(title="Hilal")


def test_current_data_that_does_not_fit_raises_event_decode_error() -> None:
    registry = _v2_registry()
    with pytest.raises(EventDecodeError, match=r"does not fit 'test\.thing' v2"):
        registry.decode(_recorded("test.thing", 2, '{"title": 7}'))


def test_unknown_fields_are_tolerated_in_the_current_shape() -> None:
    event = _recorded("test.thing", 2, '{"title": "x", "rank": 2, "colour": "blue"}')
    assert _v2_registry().decode(event) == Thing(title="x", rank=2)


def test_unknown_fields_are_tolerated_after_upcasting() -> None:
    event = _recorded("test.thing", 1, '{"name": "x", "colour": "blue"}')
    assert _v2_registry().decode(event) == Thing(title="x")


def test_upcasters_receive_a_copy_they_may_change() -> None:
    seen: list[dict[str, Any]] = []
    registry = EventRegistry()
    registry.register(Thing)

    @registry.upcaster("test.thing", 1)
    def step(data: dict[str, Any]) -> dict[str, Any]:
        seen.append(data)
        data["title"] = data.pop("name")
        return data

    event = _recorded("test.thing", 1, '{"name": "x"}')
    assert registry.decode(event) == Thing(title="x")
    assert registry.decode(event) == Thing(title="x")
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("type", "version"),
    [
        ("test.thing", 1),  # an old version nobody wrote an upcaster for
        ("test.thing", 3),  # a version newer than this code
        ("test.nothing", 1),  # a type this code never heard of
    ],
)
def test_uncovered_versions_raise_unknown_event_type(type: str, version: int) -> None:
    registry = EventRegistry()
    registry.register(Thing)
    with pytest.raises(UnknownEventTypeError, match=f"{type}"):
        registry.decode(_recorded(type, version, '{"name": "x"}'))


def test_a_failing_upcaster_raises_upcast_error() -> None:
    registry = EventRegistry()
    registry.register(Thing)

    @registry.upcaster("test.thing", 1)
    def broken(data: dict[str, Any]) -> dict[str, Any]:
        return {"title": data["no such field"]}

    with pytest.raises(UpcastError, match="v1 failed") as caught:
        registry.decode(_recorded("test.thing", 1, '{"name": "x"}'))
    assert isinstance(caught.value.__cause__, KeyError)


def test_an_upcast_result_that_does_not_fit_raises_upcast_error() -> None:
    registry = EventRegistry()
    registry.register(Thing)
    registry.upcaster("test.thing", 1)(lambda data: {"title": 42})
    with pytest.raises(UpcastError, match="does not fit"):
        registry.decode(_recorded("test.thing", 1, '{"name": "x"}'))


def test_an_upcaster_cycle_raises_upcast_error() -> None:
    registry = EventRegistry()
    registry.register(Thing)
    registry.upcaster("test.ping", 1, to_type="test.pong")(dict)
    registry.upcaster("test.pong", 1, to_type="test.ping")(dict)
    with pytest.raises(UpcastError, match="does not terminate"):
        registry.decode(_recorded("test.ping", 1, "{}"))


def test_new_event_wraps_a_registered_struct() -> None:
    registry = _v2_registry()
    event_id = uuid4()
    metadata = Metadata(correlation_id="c-1")
    event = registry.new_event(Thing(title="Meshal", rank=2), event_id=event_id, metadata=metadata)
    assert isinstance(event, NewEvent)
    assert (event.type, event.schema_version) == ("test.thing", 2)
    assert event.data == {"title": "Meshal", "rank": 2}
    assert "type" not in event.data
    assert (event.event_id, event.metadata) == (event_id, metadata)
    # Defaults: a fresh id each time, empty metadata.
    other = registry.new_event(Thing(title="Meshal"))
    assert other.event_id not in (event_id, registry.new_event(Thing(title="M")).event_id)
    assert other.metadata == Metadata()


def test_new_event_respects_a_custom_tag_field() -> None:
    class Custom(msgspec.Struct, tag="test.custom", tag_field="kind"):
        type: str

    registry = EventRegistry()
    registry.register(Custom)
    event = registry.new_event(Custom(type="meeting"))
    assert event.type == "test.custom"
    assert event.schema_version == 1
    assert event.data == {"type": "meeting"}


def test_registration_rules() -> None:
    registry = EventRegistry()
    assert registry.register(Thing) is Thing
    assert registry.register(Thing) is Thing  # registering twice is harmless
    assert registry.types == {"test.thing": Thing}
    with pytest.raises(ValueError, match="already registered"):
        registry.register(ThingV1)
    with pytest.raises(TypeError, match="tag"):
        registry.register(Untagged)
    with pytest.raises(UnknownEventTypeError, match="ThingV1"):
        registry.new_event(ThingV1(name="x"))
    registry.upcaster("test.thing", 1)(dict)
    with pytest.raises(ValueError, match="already exists"):
        registry.upcaster("test.thing", 1)(dict)
    assert event_type_of(Thing) == "test.thing"
