"""The delegation roster against a real PostgreSQL: the seed's meetings exactly, retractions and
corrections, and the roster as of an earlier cursor, read from the projection's versions and
equal to the fold of the log up to that cursor."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import msgspec
import pytest

from events import START, Cursor, EventStore, horizon_lag
from events.connect import connect
from events.domain.catalogue import CATALOGUE, DelegationLeaderNamed
from events.domain.commands import (
    AddSource,
    ConfirmAttendance,
    CorrectEvent,
    DeclineAttendance,
    InviteFaction,
    NameDelegationLeader,
    ParticipantRef,
    PostponeMeeting,
    RecordInteraction,
    RegisterActor,
    RetractEvent,
    ScheduleMeeting,
)
from events.domain.handler import CommandHandler
from events.domain.seed import load_seed
from events.domain.vocabulary import Source
from events.store import MAX_PAGE
from projections.roster import (
    Delegate,
    FactionDeclaration,
    FactionRoster,
    RosterProjection,
    get_roster,
    roster_from,
    roster_json,
)
from projections.runner import ProjectionRunner, checkpoint_of
from tests.roster_oracle import every_meeting, fold_log, live_roster

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg

    from events import ConnectionOptions
    from projections.roster import RosterView


@pytest.fixture(scope="module")
async def seeded(pool: asyncpg.Pool) -> AsyncIterator[EventStore]:
    """A store with the seed article loaded (its ids are fixed: a second load appends nothing)."""
    store = EventStore(pool)
    report = await load_seed(CommandHandler(store))
    assert report.already_recorded in (0, report.commands)
    yield store


class Built:
    """A roster projection of the test's own, brought up to the feed's tail on demand."""

    def __init__(self, store: EventStore, pool: asyncpg.Pool, options: ConnectionOptions) -> None:
        suffix = uuid.uuid4().hex[:12]
        self.prefix = f"roster_t{suffix}"
        self.projection = RosterProjection(name=f"roster_{suffix}", table_prefix=self.prefix)
        self.store, self.pool, self.options = store, pool, options

    async def live(self, meeting_id: str) -> RosterView | None:
        """The live view of ``meeting_id``."""
        return await live_roster(self.pool, self.projection, meeting_id, prefix=self.prefix)

    async def at(self, meeting_id: str, cursor: Cursor) -> RosterView | None:
        """The view of ``meeting_id`` as of ``cursor``."""
        return await get_roster(self.pool, meeting_id, at=cursor, table_prefix=self.prefix)

    async def catch_up(self) -> Cursor:
        """Run the projection until its checkpoint passes the last event it filters for."""
        tail = await _last_cursor(self.store, self.projection)
        runner = ProjectionRunner(
            self.store,
            self.projection,
            lambda: connect(self.options),
            batch_size=50,
            standby_interval=0.1,
        )
        task = asyncio.create_task(runner.run())
        try:
            async with asyncio.timeout(30):
                # The state lives in the database: poll it (bounded by the timeout).
                while (await checkpoint_of(self.pool, self.projection.name, 1))[0] < tail:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return tail


async def _last_cursor(store: EventStore, projection: RosterProjection) -> Cursor:
    """The cursor of the last event the projection reads, once nothing committed is held back
    behind the feed's horizon by another transaction of the cluster."""
    async with asyncio.timeout(30):
        while (await horizon_lag(store.pool)).events_held_back:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    cursor, last = START, START
    while True:
        page = await store.read_all(cursor, limit=MAX_PAGE, filter=projection.filter)
        if page.events:
            last = page.events[-1].cursor
        cursor = page.next_cursor
        if not page.full:
            return last


@pytest.fixture
async def built(
    seeded: EventStore, pool: asyncpg.Pool, app_options: ConnectionOptions
) -> AsyncIterator[Built]:
    """A fresh roster projection over the seeded feed, caught up."""
    built = Built(seeded, pool, app_options)
    await built.catch_up()
    yield built
    conn = await connect(app_options)
    try:
        await built.projection.drop(conn)
    finally:
        await conn.close()


async def test_the_moscow_2024_roster(built: Built) -> None:
    view = await built.live("moscow_2024")
    assert view is not None
    assert (view.meeting_id, view.title) == ("moscow_2024", "Inter-Palestinian meeting in Moscow")
    assert (view.status, view.held) == ("scheduled", False)
    assert (view.host_id, view.organiser_id) == ("ios_ras", None)
    assert view.place is not None
    assert view.place.name == "Moscow"
    assert view.date is not None
    assert (view.date.edtf, view.date.lower, view.date.upper) == (
        "2024-02-28/2024-02-29",
        date(2024, 2, 28),
        date(2024, 2, 29),
    )
    history = [
        (h.kind, h.valid_time.edtf if h.valid_time else None, h.valid_time and h.valid_time.raw)
        for h in view.date_history
    ]
    assert history == [
        ("scheduled", "[2024-02-20..2024-03-10]", "the end of February or early March"),
        ("revised", "2024-02-28/2024-02-29", "February 28-29"),
    ]
    assert view.date_history[1].reason == "dates given in an earlier report"
    assert all(h.corrected_at is None for h in view.date_history)
    assert view.date_history[0].recorded_at < view.date_history[1].recorded_at

    def invited(faction: str, name: str, head: Delegate | None = None) -> FactionRoster:
        return FactionRoster(
            faction_id=faction,
            invited=True,
            name_as_reported=name,
            attendance="confirmed",
            attendance_history=[],
            head=head,
            members=[],
            declarations=[],
        )

    # Each faction was invited, then confirmed: both steps kept, with when and on what sources.
    for faction in view.factions:
        steps = faction.attendance_history
        assert [c.attendance for c in steps] == ["invited", "confirmed"], faction.faction_id
        assert steps[0].recorded_at < steps[1].recorded_at
        assert len({c.event_id for c in steps}) == 2
        assert all(c.sources and c.sources[0].quote for c in steps)
        assert all(c.corrected_at is None and c.reason is None for c in steps)
    assert "have been invited" in (view.factions[0].attendance_history[0].sources[0].quote or "")
    assert "have confirmed" in (view.factions[2].attendance_history[1].sources[0].quote or "")
    bare = [msgspec.structs.replace(f, attendance_history=[]) for f in view.factions]
    assert bare == [
        invited(
            "fatah",
            "Fatah",
            Delegate(person_id="azzam_al_ahmad", name_as_reported="Azzam al-Ahmad"),
        ),
        invited(
            "hamas",
            "Hamas",
            Delegate(person_id="abu_marzook", name_as_reported="Mousa Abu Marzook"),
        ),
        invited("pij", "Islamic Jihad"),
        invited("pflp", "the Popular Front for the Liberation of Palestine (PFLP)"),
        invited("dflp", "the Democratic Front for the Liberation of Palestine (DFLP)"),
    ]
    assert view.declarations == []


async def test_the_2019_meeting_was_held_and_two_factions_refused_its_declaration(
    built: Built,
) -> None:
    view = await built.live("moscow_2019")
    assert view is not None
    assert (view.held, view.status, view.organiser_id) == (True, "held", "rus_mfa")
    assert [(d.declaration_id, d.title) for d in view.declarations] == [
        ("moscow_declaration_2019", "Moscow Declaration")
    ]
    factions = {f.faction_id: f for f in view.factions}
    assert set(factions) == {"fatah", "hamas", "pij"}
    outcomes = {
        faction_id: [(d.declaration_id, d.outcome) for d in f.declarations]
        for faction_id, f in factions.items()
    }
    assert outcomes == {
        "fatah": [("moscow_declaration_2019", None)],
        "hamas": [("moscow_declaration_2019", "refused")],
        "pij": [("moscow_declaration_2019", "refused")],
    }
    assert factions["hamas"].declarations == [
        FactionDeclaration(
            declaration_id="moscow_declaration_2019", title="Moscow Declaration", outcome="refused"
        )
    ]
    assert all(f.took_part and not f.invited and f.attendance is None for f in factions.values())
    assert all(f.attendance_history == [] for f in factions.values())
    checkpoint, _ = await checkpoint_of(built.pool, built.projection.name, 1)
    known = await every_meeting(built.pool, at=checkpoint, table_prefix=built.prefix)
    assert "moscow_2019" in [v.meeting_id for v in known]


async def test_a_retracted_leader_and_a_corrected_date(built: Built) -> None:
    u = uuid.uuid4().hex[:10]
    meeting, faction, person = f"m_{u}", f"front_{u}", f"leader_{u}"
    handler = CommandHandler(built.store)
    await handler.handle(
        RegisterActor(actor_id=faction, kind="organisation", canonical_name=f"Front {u}")
    )
    await handler.handle(
        RegisterActor(actor_id=person, kind="person", canonical_name=f"Yusuf Haddad {u}")
    )
    scheduled = await handler.handle(
        ScheduleMeeting(meeting_id=meeting, title="Talks", valid_time="2025-03")
    )
    await handler.handle(InviteFaction(meeting_id=meeting, faction=faction))
    named = await handler.handle(
        NameDelegationLeader(
            meeting_id=meeting, faction=faction, person=person, name_as_reported="Y. Haddad"
        )
    )
    await built.catch_up()
    before = await built.live(meeting)
    assert before is not None
    assert before.factions[0].head == Delegate(person_id=person, name_as_reported="Y. Haddad")
    assert before.date is not None
    assert before.date.edtf == "2025-03"

    stream = f"meeting-{meeting}"
    await handler.handle(
        RetractEvent(stream=stream, target_event_id=named.event_ids[0], reason="misreported")
    )
    await handler.handle(
        CorrectEvent(
            stream=stream,
            target_event_id=scheduled.event_ids[0],
            changes={"valid_time": "2025-04-02"},
            reason="the date was misread",
        )
    )
    tail = await built.catch_up()
    after = await built.live(meeting)
    assert after is not None
    assert [(f.faction_id, f.invited, f.attendance, f.head) for f in after.factions] == [
        (faction, True, "invited", None)
    ]
    assert after.date is not None
    assert (after.date.edtf, after.date.lower, after.date.upper) == (
        "2025-04-02",
        date(2025, 4, 2),
        date(2025, 4, 2),
    )
    [entry] = after.date_history
    assert entry.kind == "scheduled"
    assert entry.valid_time == after.date
    assert entry.corrected_at is not None
    assert entry.corrected_at > entry.recorded_at
    assert after.as_of.cursor == tail.encode()
    # The live view, built in batches, is the fold of the log up to the same point.
    assert await fold_log(built.store, meeting, tail) == after
    assert await built.at(meeting, tail) == after
    # And as of before the amendments, the leader and the first date are back.
    assert await fold_log(built.store, meeting, Cursor.decode(before.as_of.cursor)) == before
    assert await built.at(meeting, Cursor.decode(before.as_of.cursor)) == before


async def test_every_answer_is_kept_and_a_meeting_that_took_place_is_held(built: Built) -> None:
    u = uuid.uuid4().hex[:10]
    meeting, faction = f"m_{u}", f"front_{u}"
    stream = f"meeting-{meeting}"
    handler = CommandHandler(built.store)
    await handler.handle(
        RegisterActor(actor_id=faction, kind="organisation", canonical_name=f"Front {u}")
    )
    await handler.handle(ScheduleMeeting(meeting_id=meeting, title="Talks", valid_time="2025-03"))
    await handler.handle(PostponeMeeting(meeting_id=meeting, reason="the hosts asked"))
    invited = await handler.handle(
        InviteFaction(meeting_id=meeting, faction=faction, sources=(Source(publisher="TASS"),))
    )
    declined = await handler.handle(
        DeclineAttendance(meeting_id=meeting, faction=faction, reason="the agenda")
    )
    # A corroborating source published at a Moscow time of day.
    moscow = datetime(2025, 2, 20, 12, 30, tzinfo=timezone(timedelta(hours=3)))
    await handler.handle(
        AddSource(
            stream=stream,
            target_event_id=declined.event_ids[0],
            source=Source(publisher="RIA", published_at=moscow),
        )
    )
    # Caught up in between: the answer below folds into the draft stored meanwhile.
    await built.catch_up()
    confirmed = await handler.handle(ConfirmAttendance(meeting_id=meeting, faction=faction))
    tail = await built.catch_up()
    view = await built.live(meeting)
    assert view is not None
    assert (view.status, view.held) == ("postponed", False)
    [front] = view.factions
    assert (front.invited, front.attendance) == (True, "confirmed")
    history = front.attendance_history
    assert [(c.attendance, c.event_id, c.reason) for c in history] == [
        ("invited", invited.event_ids[0], None),
        ("declined", declined.event_ids[0], "the agenda"),
        ("confirmed", confirmed.event_ids[0], None),
    ]
    assert [c.recorded_at for c in history] == sorted(c.recorded_at for c in history)
    assert history[0].sources == [Source(publisher="TASS")]
    assert history[1].sources == [Source(publisher="RIA", published_at=moscow.astimezone(UTC))]
    assert await fold_log(built.store, meeting, tail) == view
    assert await built.at(meeting, tail) == view
    # Byte for byte too (as the API sends it): the draft kept the source's time as an instant.
    stored = await roster_json(built.pool, meeting, at=tail, table_prefix=built.prefix)
    assert stored == msgspec.json.encode(await fold_log(built.store, meeting, tail))

    # The meeting took place: held, whatever its postponement said.
    await handler.handle(
        RecordInteraction(
            kind="meeting",
            interaction_id=f"talks_{u}",
            meeting_id=meeting,
            participants=(ParticipantRef(actor=faction, role="participant"),),
            valid_time="2025-04-02",
        )
    )
    # The invitation was misreported: its step goes, the answers stay.
    await handler.handle(
        RetractEvent(stream=stream, target_event_id=invited.event_ids[0], reason="misreported")
    )
    after_tail = await built.catch_up()
    after = await built.live(meeting)
    assert after is not None
    assert (after.status, after.held) == ("held", True)
    [front] = after.factions
    assert (front.invited, front.attendance, front.took_part) == (False, "confirmed", True)
    assert [c.attendance for c in front.attendance_history] == ["declined", "confirmed"]
    assert await fold_log(built.store, meeting, after_tail) == after
    assert await built.at(meeting, tail) == view


async def test_the_roster_as_of_before_the_hamas_leader_was_named(built: Built) -> None:
    events = (await built.store.read_stream("meeting-moscow_2024")).events
    named = next(
        n
        for n, e in enumerate(events)
        if isinstance(decoded := CATALOGUE.decode(e), DelegationLeaderNamed)
        and decoded.faction_id == "hamas"
    )
    just_before = events[named - 1]
    for view in (
        await built.at("moscow_2024", just_before.cursor),
        await fold_log(built.store, "moscow_2024", just_before.cursor),
    ):
        assert view is not None
        heads = {f.faction_id: f.head for f in view.factions}
        assert heads["hamas"] is None
        assert heads["fatah"] is None
        assert {f.faction_id: f.attendance for f in view.factions}["hamas"] == "confirmed"
        assert view.as_of.cursor == just_before.cursor.encode()
    at_naming = await built.at("moscow_2024", events[named].cursor)
    assert at_naming is not None
    assert {f.faction_id: f.head for f in at_naming.factions}["hamas"] == Delegate(
        person_id="abu_marzook", name_as_reported="Mousa Abu Marzook"
    )


async def test_the_live_projection_equals_the_fold_of_the_log(built: Built) -> None:
    tail = await _last_cursor(built.store, built.projection)
    for meeting_id in ("moscow_2024", "moscow_2019"):
        live = await built.live(meeting_id)
        assert live is not None
        assert await fold_log(built.store, meeting_id, tail) == live
    views = await every_meeting(built.pool, at=tail, table_prefix=built.prefix)
    assert {"moscow_2024", "moscow_2019"} <= {v.meeting_id for v in views}


async def test_no_facts_no_roster() -> None:
    assert roster_from([]) is None
