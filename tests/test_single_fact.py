"""The single-event shortcut of the contacts projection: rows computed from the stored JSON
read back as the view the full path builds, and anything the shortcut cannot vouch for takes
the full path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import msgspec
import pytest

from events.domain.amendments import Stored
from events.domain.catalogue import CATALOGUE, INTERACTION_EVENTS
from events.domain.coding import Coding
from events.domain.valid_time import ValidTime
from events.domain.vocabulary import Participant
from events.errors import EventDecodeError
from events.registry import EventRegistry
from projections.contacts import ContactsProjection, InteractionView, interaction_from
from projections.contacts import writer as contacts
from projections.single_fact import SingleFactRows
from tests.database import scratch_database
from tests.synthetic_log import SyntheticLog

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from events import RecordedEvent


@pytest.fixture(scope="module")
async def interactions(server_url: str) -> AsyncIterator[list[RecordedEvent]]:
    async with scratch_database(server_url, migrated=True) as dsn:
        synthetic = await SyntheticLog.create(dsn, 1_500)
        events = await synthetic.read(ContactsProjection.filter)
        await synthetic.close()
    yield [e for e in events if e.stream_id.startswith("interaction-") and e.stream_version == 1]


def _full_path(event: RecordedEvent) -> contacts._Rows:
    """The rows the full path gives ``event`` as a one-event interaction."""
    rows = contacts._Rows()
    stored = Stored(str(event.event_id), CATALOGUE.decode(event))  # type: ignore[arg-type]
    item = event.stream_id.partition("-")[2]
    rows.add_interactions({item: [(event.cursor.key(), stored)]}, {})
    return rows


def _read_back(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*row[:2], msgspec.json.decode(row[2], type=InteractionView), *row[3:])


async def test_every_kind_reads_back_as_the_view_the_full_path_builds(
    interactions: list[RecordedEvent],
) -> None:
    shortcut = contacts._SINGLE_FACT
    kinds = set()
    for event in interactions:
        decoded = CATALOGUE.decode(event)
        if not isinstance(decoded, INTERACTION_EVENTS):
            continue
        found = shortcut.rows(event)
        assert found is not None, event.type
        row, links = found
        full = _full_path(event)
        assert _read_back(row) == _read_back(full.interactions[0])
        assert links == full.links
        view = interaction_from([Stored(str(event.event_id), decoded)])
        assert msgspec.json.decode(cast("str", row[2]), type=InteractionView) == view
        kinds.add(row[1])
    # Every kind but "meeting" comes up in the synthetic mix (held meetings are recorded through
    # their meeting streams there); the catalogue covers all seven.
    assert len(kinds) >= 5
    assert len(shortcut.types) == 7


async def test_a_field_the_type_does_not_know_takes_the_full_path(
    interactions: list[RecordedEvent],
) -> None:
    event = interactions[0]
    data = msgspec.json.decode(event.data)
    data["reported_by_newer_code"] = {"x": 1}
    newer = msgspec.structs.replace(event, data=msgspec.json.encode(data).decode())
    assert contacts._SINGLE_FACT.rows(newer) is None
    # The full path ignores the field, as stored events always may carry unknown ones.
    rows = contacts._rows_of([newer], [])
    assert _read_back(rows.interactions[0]) == _read_back(_full_path(event).interactions[0])


async def test_an_older_schema_version_takes_the_full_path(
    interactions: list[RecordedEvent],
) -> None:
    older = msgspec.structs.replace(interactions[0], schema_version=0)
    assert contacts._SINGLE_FACT.rows(older) is None


async def test_malformed_data_takes_the_full_path_which_reports_it(
    interactions: list[RecordedEvent],
) -> None:
    event = interactions[0]
    data = msgspec.json.decode(event.data)
    data["participants"] = "nobody"
    broken = msgspec.structs.replace(event, data=msgspec.json.encode(data).decode())
    assert contacts._SINGLE_FACT.rows(broken) is None
    with pytest.raises(EventDecodeError):
        contacts._rows_of([broken], [])


async def test_an_event_amended_in_the_same_batch_is_folded(
    interactions: list[RecordedEvent],
) -> None:
    # Two events of one stream in a batch: the second must not be lost to the shortcut.
    event = interactions[0]
    twin = msgspec.structs.replace(event, stream_version=2)
    assert contacts._lone_streams([event, twin]) == set()
    assert contacts._lone_streams([event]) == {event.stream_id}


class _View(msgspec.Struct, kw_only=True, omit_defaults=True):
    interaction_id: str
    kind: str
    participants: tuple[Participant, ...]
    valid_time: ValidTime
    coding: Coding
    topics: tuple[str, ...] = ()


class _Fits(msgspec.Struct, tag="t.fits.v1", kw_only=True, omit_defaults=True):
    interaction_id: str
    participants: tuple[Participant, ...]
    valid_time: ValidTime
    coding: Coding
    topics: tuple[str, ...] = ()


class _ExtraField(_Fits, tag="t.extra.v1"):
    subject: str | None = None


class _OtherDefault(msgspec.Struct, tag="t.default.v1", kw_only=True, omit_defaults=True):
    interaction_id: str
    participants: tuple[Participant, ...]
    valid_time: ValidTime
    coding: Coding
    topics: tuple[str, ...] = ("diplomacy",)


class _Optional(msgspec.Struct, tag="t.optional.v1", kw_only=True, omit_defaults=True):
    interaction_id: str
    participants: tuple[Participant, ...]
    valid_time: ValidTime
    coding: Coding | None = None  # the view requires it


class _Renamed(msgspec.Struct, tag="t.renamed.v1", kw_only=True, rename="camel"):
    interaction_id: str
    participants: tuple[Participant, ...]
    valid_time: ValidTime
    coding: Coding


def test_only_types_whose_json_is_their_view_are_covered() -> None:
    registry = EventRegistry()
    classes = (_Fits, _ExtraField, _OtherDefault, _Optional, _Renamed)
    for cls in classes:
        registry.register(cls)
    covered = SingleFactRows(registry, dict.fromkeys(classes, "visit"), _View).types
    assert covered == {"t.fits.v1"}
