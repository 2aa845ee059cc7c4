"""The seed article loaded through the command handler into a real PostgreSQL."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from events import START, Cursor, EventStore, FeedFilter, RecordedEvent
from events.domain.catalogue import (
    CATALOGUE,
    ContactsReported,
    DelegationLeaderNamed,
    FactionInvited,
    MeetingDateRevised,
    MeetingScheduled,
    PhoneCallHeld,
    SignatureRefused,
    StatementReported,
    VisitMade,
)
from events.domain.handler import CommandHandler
from events.domain.seed import article_text, load_seed, seed_commands
from events.store import MAX_PAGE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg


@pytest.fixture(scope="module")
async def seeded(pool: asyncpg.Pool) -> AsyncIterator[EventStore]:
    """A store with the seed article loaded once (the seed's ids are fixed, so one load per
    test database)."""
    store = EventStore(pool)
    report = await load_seed(CommandHandler(store))
    assert report.already_recorded in (0, report.commands)
    yield store


async def _events(store: EventStore, stream_id: str) -> list[RecordedEvent]:
    return (await store.read_stream(stream_id)).events


def _decoded(events: list[RecordedEvent]) -> list[Any]:
    return [CATALOGUE.decode(e) for e in events]


async def test_every_command_of_the_seed_is_recorded(seeded: EventStore) -> None:
    commands = seed_commands()
    assert len(commands) >= 60
    # Each command recorded exactly one event, under the ids its command id implies.
    handler = CommandHandler(seeded)
    report = await load_seed(handler)
    assert report.commands == len(commands)
    assert report.already_recorded == len(commands)
    assert (report.recorded, report.events) == (0, 0)


async def _tail(store: EventStore) -> Cursor:
    cursor = START
    while True:
        page = await store.read_all(cursor, limit=MAX_PAGE)
        cursor = page.next_cursor
        if not page.full:
            return cursor


async def _seed_events(store: EventStore) -> list[RecordedEvent]:
    found: list[RecordedEvent] = []
    for category in ("actor", "interaction", "meeting", "declaration"):
        cursor = START
        while True:
            page = await store.read_all(
                cursor, limit=MAX_PAGE, filter=FeedFilter(category=category)
            )
            found.extend(
                e
                for e in page.events
                if (e.decoded_metadata().causation_id or "").startswith("seed-2024-02:")
            )
            cursor = page.next_cursor
            if not page.full:
                break
    return found


async def test_loading_twice_appends_nothing(seeded: EventStore) -> None:
    tail = await _tail(seeded)
    report = await load_seed(CommandHandler(seeded))
    assert report.recorded == 0
    assert (await seeded.read_all(tail)).events == []


async def test_the_moscow_meeting_stream(seeded: EventStore) -> None:
    events = _decoded(await _events(seeded, "meeting-moscow_2024"))
    scheduled = events[0]
    assert isinstance(scheduled, MeetingScheduled)
    assert scheduled.host_id == "ios_ras"
    assert scheduled.place is not None
    assert scheduled.place.name == "Moscow"
    assert scheduled.valid_time.edtf == "[2024-02-20..2024-03-10]"
    assert scheduled.valid_time.raw == "the end of February or early March"
    assert (scheduled.valid_time.lower, scheduled.valid_time.upper) == (
        date(2024, 2, 20),
        date(2024, 3, 10),
    )
    revised = events[1]
    assert isinstance(revised, MeetingDateRevised)
    assert revised.valid_time.edtf == "2024-02-28/2024-02-29"
    assert (revised.valid_time.lower, revised.valid_time.upper) == (
        date(2024, 2, 28),
        date(2024, 2, 29),
    )
    invited = [e.faction_id for e in events if isinstance(e, FactionInvited)]
    assert sorted(invited) == ["dflp", "fatah", "hamas", "pflp", "pij"]
    assert all(e.coding.cameo == "036" for e in events if isinstance(e, FactionInvited))
    leaders = {e.faction_id: e.person_id for e in events if isinstance(e, DelegationLeaderNamed)}
    assert leaders == {"hamas": "abu_marzook", "fatah": "azzam_al_ahmad"}
    confirmed = [e.faction_id for e in events if type(e).__name__ == "AttendanceConfirmed"]
    assert sorted(confirmed) == ["dflp", "fatah", "hamas", "pflp", "pij"]


async def test_the_2019_declaration_was_refused_by_two_and_signed_by_none(
    seeded: EventStore,
) -> None:
    events = _decoded(await _events(seeded, "declaration-moscow_declaration_2019"))
    assert type(events[0]).__name__ == "DeclarationDrafted"
    refusals = [e for e in events if isinstance(e, SignatureRefused)]
    assert sorted(e.refuser_id for e in refusals) == ["hamas", "pij"]
    assert all(e.coding.cameo == "127" and e.coding.quad_class == 3 for e in refusals)
    assert not [e for e in events if type(e).__name__ == "DeclarationSigned"]


async def test_spellings_resolve_to_one_actor_and_are_kept_as_reported(
    seeded: EventStore,
) -> None:
    visits = []
    for month in ("2006_03", "2007_02", "2010_02"):
        [visit] = _decoded(await _events(seeded, f"interaction-visit_mashal_moscow_{month}"))
        assert isinstance(visit, VisitMade)
        visits.append(visit)
    for visit in visits:
        visitor = next(p for p in visit.participants if p.role == "visitor")
        assert (visitor.actor_id, visitor.name_as_reported) == ("mashal", "Khalid Meshal")
    [call] = _decoded(await _events(seeded, "interaction-call_bogdanov_al_ahmad_2024"))
    assert isinstance(call, PhoneCallHeld)
    initiator = next(p for p in call.participants if p.role == "initiator")
    assert (initiator.actor_id, initiator.name_as_reported) == ("azzam_al_ahmad", "Azzam Ahmed")
    assert call.coding.cameo == "041"
    assert call.coding.plover_type == "CONSULT"
    assert call.attributed_to == "Russian Ministry of Foreign Affairs"
    actor = _decoded(await _events(seeded, "actor-mashal"))
    assert [type(e).__name__ for e in actor][:2] == ["ActorRegistered", "AliasAdded"]


async def test_aggregates_and_negations_are_recorded_as_such(seeded: EventStore) -> None:
    [hamdan] = _decoded(await _events(seeded, "interaction-contacts_hamdan_moscow_2007_2011"))
    assert isinstance(hamdan, ContactsReported)
    assert hamdan.cardinality_text == "frequently"
    assert (hamdan.valid_time.lower, hamdan.valid_time.upper) == (
        date(2007, 1, 1),
        date(2011, 12, 31),
    )
    [several] = _decoded(await _events(seeded, "interaction-contacts_lavrov_abu_marzook_moscow"))
    assert isinstance(several, ContactsReported)
    assert several.min_count == 2
    assert several.valid_time.lower is None  # undated, before the article
    [putin] = _decoded(await _events(seeded, "interaction-pattern_putin_avoids_hamas"))
    assert isinstance(putin, StatementReported)
    assert putin.negated


async def test_every_event_quotes_the_article(seeded: EventStore) -> None:
    article = " ".join(article_text().split())
    seed_events = await _seed_events(seeded)
    assert len(seed_events) == len(seed_commands())
    for recorded in seed_events:
        data = msgspec.json.decode(recorded.data)
        sources = data.get("sources") or ([data["source"]] if "source" in data else [])
        assert sources, recorded.type
        for source in sources:
            assert " ".join(source["quote"].split()) in article, source["quote"]


async def test_time_bounded_roles_say_whom_a_person_represented_on_a_date(
    seeded: EventStore,
) -> None:
    handler = CommandHandler(seeded)
    await handler.refresh_directory()
    directory = handler.directory
    on_visit = [r.organisation_id for r in directory.memberships("mashal", date(2007, 2, 15))]
    assert on_visit == ["hamas"]
    assert directory.memberships("mashal", date(2015, 1, 1)) == []
    assert [r.organisation_id for r in directory.memberships("hamdan", date(2009, 6, 1))] == [
        "hamas"
    ]
    assert directory.memberships("hamdan", date(2012, 1, 1)) == []
    lavrov = directory.memberships("lavrov", date(2017, 1, 10))
    assert [(r.organisation_id, r.title) for r in lavrov] == [
        ("rus_mfa", "Russian Foreign Minister")
    ]
