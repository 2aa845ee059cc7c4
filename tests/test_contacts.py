"""Contact history, contact graph and actor directory, built by the runner from the seed article
(and from interactions of the tests' own) in a real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import date
from typing import TYPE_CHECKING

import pytest

from events import horizon_lag
from events.connect import connect
from events.domain.commands import (
    AddSource,
    AssignRole,
    CorrectEvent,
    ParticipantRef,
    RecordInteraction,
    RegisterActor,
    RetractEvent,
)
from events.domain.handler import CommandHandler
from events.domain.seed import load_seed
from events.domain.vocabulary import Source
from projections.contacts import (
    ActorView,
    ContactsProjection,
    Counterpart,
    GraphEdge,
    HistoryEntry,
    WindowMode,
    contact_history,
    get_actor,
    search_actors,
)
from projections.graph import contact_graph
from projections.graph.schema import TABLES as GRAPH_TABLES
from projections.rebuild import live_version, rebuild
from projections.runner import ProjectionRunner, projection_lag

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg

    from events import ConnectionOptions, EventStore
    from events.domain.vocabulary import ActorKind

HAMAS_HISTORY = [
    # (interaction, via), newest first: by upper bound, then lower bound (open last), then id.
    ("pattern_putin_avoids_hamas", None),
    ("statement_russia_hamas_pij_not_terrorist", None),
    ("contacts_mfa_hamas_delegations_2023", None),
    ("statement_mfa_hamas_contacts_release", None),
    ("call_bogdanov_abu_marzook_2024", "abu_marzook"),
    ("contacts_lavrov_abu_marzook_moscow", "abu_marzook"),
    ("contacts_mfa_hamas_leadership", None),
    ("meeting_medvedev_hamas", None),
    ("meeting_haniyeh_lavrov_2022_09", "haniyeh"),
    ("meeting_haniyeh_lavrov_2020_03", "haniyeh"),
    ("meeting_moscow_2019", None),
    ("address_lavrov_factions_2017_01", None),
    ("contacts_hamdan_moscow_2007_2011", "hamdan"),
    ("visit_mashal_moscow_2010_02", "mashal"),
    ("meeting_lavrov_mashal_2009_05", "mashal"),
    ("meeting_lavrov_mashal_2008_03", "mashal"),
    ("visit_mashal_moscow_2007_02", "mashal"),
    ("visit_mashal_moscow_2006_03", "mashal"),
]


def _ids(entries: list[HistoryEntry]) -> list[str]:
    return [e.interaction_id for e in entries]


def _by_id(entries: list[HistoryEntry]) -> dict[str, HistoryEntry]:
    return {e.interaction_id: e for e in entries}


async def _catch_up(
    store: EventStore,
    projection: ContactsProjection,
    options: ConnectionOptions,
    pool: asyncpg.Pool,
    *,
    batch_size: int = 7,
) -> None:
    """Run the projection through the runner until it has applied every committed event.

    An event committed a moment ago can still be held behind the feed's horizon by another
    transaction of the cluster, so "caught up" needs both: nothing held back, nothing left to
    apply.
    """
    runner = ProjectionRunner(
        store, projection, lambda: connect(options), batch_size=batch_size, standby_interval=0.1
    )
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(30):
            # The state lives in the database: poll it (bounded by the timeout).
            while True:
                held = (await horizon_lag(pool)).events_held_back
                if held == 0 and (await projection_lag(pool, projection)).events == 0:
                    break
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _fresh_projection() -> ContactsProjection:
    tag = uuid.uuid4().hex[:10]
    return ContactsProjection(name=f"contacts_{tag}", prefix=f"t{tag}_")


@pytest.fixture(scope="module")
async def seeded(store: EventStore) -> EventStore:
    """The seed article, loaded (a second load appends nothing)."""
    report = await load_seed(CommandHandler(store))
    assert report.already_recorded in (0, report.commands)
    again = await load_seed(CommandHandler(store))
    assert (again.recorded, again.events) == (0, 0)
    return store


@pytest.fixture(scope="module")
async def contacts(
    seeded: EventStore, app_options: ConnectionOptions, pool: asyncpg.Pool
) -> AsyncIterator[ContactsProjection]:
    """The projection, with tables of its own, caught up with the seed."""
    projection = _fresh_projection()
    await _catch_up(seeded, projection, app_options, pool)
    yield projection
    await _drop(projection, app_options)


async def _drop(projection: ContactsProjection, options: ConnectionOptions) -> None:
    conn = await connect(options)
    try:
        await projection.drop(conn)
    finally:
        await conn.close()


async def _history(
    pool: asyncpg.Pool,
    projection: ContactsProjection,
    actor_id: str,
    *,
    counterpart: str | None = None,
    kind: str | None = None,
    window: tuple[date | None, date | None] | None = None,
    window_mode: WindowMode = "possible",
    as_person_only: bool = False,
) -> list[HistoryEntry]:
    return await contact_history(
        pool,
        actor_id,
        counterpart=counterpart,
        kind=kind,
        window=window,
        window_mode=window_mode,
        as_person_only=as_person_only,
        prefix=projection.prefix,
    )


async def _register(handler: CommandHandler, *actors: tuple[str, ActorKind]) -> None:
    for actor_id, kind in actors:
        await handler.handle(
            RegisterActor(actor_id=actor_id, kind=kind, canonical_name=f"Actor {actor_id}")
        )


# -- contact history -----------------------------------------------------------------------------


async def test_a_factions_history_includes_its_members_at_the_time(
    pool: asyncpg.Pool, contacts: ContactsProjection
) -> None:
    history = await _history(pool, contacts, "hamas")
    assert [(e.interaction_id, e.via) for e in history] == HAMAS_HISTORY
    entries = _by_id(history)

    call = entries["call_bogdanov_abu_marzook_2024"]
    assert call.kind == "phone_call"
    assert call.counterparts == (
        Counterpart(actor_id="bogdanov", role="recipient", name_as_reported="Mikhail Bogdanov"),
    )
    assert call.roles == ("initiator",)
    assert (call.cameo, call.plover_type, call.plover_mode) == ("041", "CONSULT", "phone")
    assert call.attributed_to == "Russian Ministry of Foreign Affairs"
    assert (call.valid_time.edtf, call.valid_time.precision) == ("../2024-02", "open")
    assert (call.valid_time.lower, call.valid_time.upper) == (None, date(2024, 2, 29))
    assert call.sources
    assert call.sources[0].quote is not None

    visits = [e for e in history if e.kind == "visit"]
    assert [v.valid_time.edtf for v in visits] == ["2010-02", "2007-02", "2006-03"]
    assert all(v.counterparts[0].actor_id == "russia" for v in visits)
    assert all(v.place is not None and v.place.name == "Moscow" for v in visits)

    for month in ("2008_03", "2009_05"):
        meeting = entries[f"meeting_lavrov_mashal_{month}"]
        assert meeting.place is not None
        assert meeting.place.name == "Damascus"
        assert [c.actor_id for c in meeting.counterparts] == ["lavrov"]

    hamdan = entries["contacts_hamdan_moscow_2007_2011"]
    assert (hamdan.kind, hamdan.cardinality_text, hamdan.min_count) == (
        "contacts",
        "frequently",
        None,
    )
    assert (hamdan.valid_time.lower, hamdan.valid_time.upper) == (
        date(2007, 1, 1),
        date(2011, 12, 31),
    )
    delegations = entries["contacts_mfa_hamas_delegations_2023"]
    assert (delegations.cardinality_text, delegations.min_count) == (
        "several Hamas delegations",
        2,
    )
    assert delegations.roles == ("visitor",)

    putin = entries["pattern_putin_avoids_hamas"]
    assert putin.negated
    assert putin.kind == "statement"
    assert putin.claim == "avoids public personal contact with Hamas representatives"
    # The only other negation: Russia does not consider Hamas a terrorist organisation.
    assert [e.interaction_id for e in history if e.negated] == [
        "pattern_putin_avoids_hamas",
        "statement_russia_hamas_pij_not_terrorist",
    ]

    medvedev = entries["meeting_medvedev_hamas"]
    assert [c.actor_id for c in medvedev.counterparts] == ["medvedev"]
    address = entries["address_lavrov_factions_2017_01"]
    assert [(c.actor_id, c.role) for c in address.counterparts] == [
        ("lavrov", "speaker"),
        ("fatah", "audience"),
        ("pij", "audience"),
    ]
    assert entries["meeting_moscow_2019"].roles == ("participant",)


async def test_members_outside_their_role_period_do_not_count(
    seeded: EventStore,
    pool: asyncpg.Pool,
    app_options: ConnectionOptions,
    contacts: ContactsProjection,
) -> None:
    u = uuid.uuid4().hex[:8]
    person, other, faction = f"p_{u}", f"q_{u}", f"f_{u}"
    handler = CommandHandler(seeded)
    await _register(handler, (person, "person"), (other, "person"), (faction, "organisation"))
    await handler.handle(AssignRole(actor=person, organisation=faction, valid_time="2010/2012"))
    for year in ("2009-05", "2011-05", "2013-05"):
        await handler.handle(
            RecordInteraction(
                kind="meeting",
                interaction_id=f"m_{u}_{year}",
                participants=(
                    ParticipantRef(actor=person, role="participant"),
                    ParticipantRef(actor=other, role="participant"),
                ),
                valid_time=year,
            )
        )
    await _catch_up(seeded, contacts, app_options, pool)

    # Only the meeting inside the role's years counts for the faction, through the member.
    faction_history = await _history(pool, contacts, faction)
    assert [(e.interaction_id, e.via) for e in faction_history] == [(f"m_{u}_2011-05", person)]
    assert _ids(await _history(pool, contacts, person)) == [
        f"m_{u}_2013-05",
        f"m_{u}_2011-05",
        f"m_{u}_2009-05",
    ]
    # Haniyeh heads Hamas's Politburo from 2017: his meetings with Lavrov count for Hamas.
    hamas = await _history(pool, contacts, "hamas")
    assert {(e.interaction_id, e.via) for e in hamas} >= {
        ("meeting_haniyeh_lavrov_2022_09", "haniyeh"),
        ("meeting_haniyeh_lavrov_2020_03", "haniyeh"),
    }
    direct = await _history(pool, contacts, "hamas", as_person_only=True)
    assert [(e.interaction_id, e.via) for e in direct] == [
        (i, v) for i, v in HAMAS_HISTORY if v is None
    ]


async def test_a_persons_history_is_their_own(
    pool: asyncpg.Pool, contacts: ContactsProjection
) -> None:
    history = await _history(pool, contacts, "mashal")
    assert _ids(history) == [
        "visit_mashal_moscow_2010_02",
        "meeting_lavrov_mashal_2009_05",
        "meeting_lavrov_mashal_2008_03",
        "visit_mashal_moscow_2007_02",
        "visit_mashal_moscow_2006_03",
    ]
    assert all(e.via is None for e in history)
    visitor = history[0]
    assert visitor.roles == ("visitor",)


async def test_counterpart_and_kind_filters(
    pool: asyncpg.Pool, contacts: ContactsProjection
) -> None:
    with_lavrov = await _history(pool, contacts, "hamas", counterpart="lavrov")
    assert _ids(with_lavrov) == [
        "contacts_lavrov_abu_marzook_moscow",
        "meeting_haniyeh_lavrov_2022_09",
        "meeting_haniyeh_lavrov_2020_03",
        "address_lavrov_factions_2017_01",
        "meeting_lavrov_mashal_2009_05",
        "meeting_lavrov_mashal_2008_03",
    ]
    visits = await _history(pool, contacts, "hamas", kind="visit")
    assert _ids(visits) == [
        "visit_mashal_moscow_2010_02",
        "visit_mashal_moscow_2007_02",
        "visit_mashal_moscow_2006_03",
    ]
    assert _ids(await _history(pool, contacts, "lavrov", counterpart="mashal")) == [
        "meeting_lavrov_mashal_2009_05",
        "meeting_lavrov_mashal_2008_03",
    ]


async def test_window_certain_and_possible(
    pool: asyncpg.Pool, contacts: ContactsProjection
) -> None:
    window = (date(2008, 1, 1), date(2009, 12, 31))
    certain = await _history(pool, contacts, "hamas", window=window, window_mode="certain")
    assert _ids(certain) == ["meeting_lavrov_mashal_2009_05", "meeting_lavrov_mashal_2008_03"]
    possible = await _history(pool, contacts, "hamas", window=window)
    assert _ids(possible) == [
        "call_bogdanov_abu_marzook_2024",
        "contacts_lavrov_abu_marzook_moscow",
        "contacts_mfa_hamas_leadership",
        "meeting_medvedev_hamas",
        "contacts_hamdan_moscow_2007_2011",
        "meeting_lavrov_mashal_2009_05",
        "meeting_lavrov_mashal_2008_03",
    ]
    # An open window side: everything from 2023 on, certainly.
    recent = await _history(
        pool, contacts, "hamas", window=(date(2023, 1, 1), None), window_mode="certain"
    )
    assert _ids(recent) == [
        "pattern_putin_avoids_hamas",
        "statement_russia_hamas_pij_not_terrorist",
        "contacts_mfa_hamas_delegations_2023",
        "statement_mfa_hamas_contacts_release",
    ]
    with pytest.raises(ValueError, match="ends"):
        await _history(pool, contacts, "hamas", window=(date(2009, 1, 1), date(2008, 1, 1)))


# -- contact graph -------------------------------------------------------------------------------


async def test_the_graph_counts_certain_and_possible_years(
    pool: asyncpg.Pool, contacts: ContactsProjection
) -> None:
    edges = await contact_graph(pool, actor_id="mashal", prefix=contacts.prefix)
    with_lavrov = [e for e in edges if (e.a, e.b) == ("lavrov", "mashal")]
    assert with_lavrov == [
        GraphEdge(a="lavrov", b="mashal", kind="meeting", year=2008, certain=1, possible=1),
        GraphEdge(a="lavrov", b="mashal", kind="meeting", year=2009, certain=1, possible=1),
    ]
    visits = [e for e in edges if (e.a, e.b, e.kind) == ("mashal", "russia", "visit")]
    assert [(e.year, e.certain, e.possible) for e in visits] == [
        (2006, 1, 1),
        (2007, 1, 1),
        (2010, 1, 1),
    ]

    everything = await contact_graph(pool, prefix=contacts.prefix)
    assert all(e.a < e.b for e in everything)
    # Hamdan's "frequently" 2007-2011 is one report: possible in each of its years, never
    # certain in any, and never multiplied.
    hamdan = [e for e in everything if (e.a, e.b) == ("hamdan", "russia")]
    assert [(e.kind, e.year, e.certain, e.possible) for e in hamdan] == [
        ("contacts", year, 0, 1) for year in range(2007, 2012)
    ]
    # The negated statement is no contact.
    assert not [e for e in everything if {e.a, e.b} == {"hamas", "putin"}]
    # An open start reaches back only as far as the pair's own record: Bogdanov and Abu Marzook
    # appear in nothing dated before 2024.
    call = [e for e in everything if (e.a, e.b) == ("abu_marzook", "bogdanov")]
    assert call == [
        GraphEdge(
            a="abu_marzook", b="bogdanov", kind="phone_call", year=2024, certain=0, possible=1
        )
    ]
    # Lavrov's record reaches back to 2008, so the undated contacts are possible since then.
    several = [e for e in everything if (e.a, e.b) == ("abu_marzook", "lavrov")]
    assert [(e.year, e.certain, e.possible) for e in several] == [
        (year, 0, 1) for year in range(2008, 2025)
    ]
    meetings = await contact_graph(pool, kind="meeting", prefix=contacts.prefix)
    assert {e.kind for e in meetings} == {"meeting"}
    assert (
        GraphEdge(a="haniyeh", b="lavrov", kind="meeting", year=2022, certain=1, possible=1)
        in meetings
    )


# -- actor directory -----------------------------------------------------------------------------


async def test_the_directory_serves_actors_by_id_and_name(
    pool: asyncpg.Pool, contacts: ContactsProjection
) -> None:
    mashal = await get_actor(pool, "mashal", prefix=contacts.prefix)
    assert mashal is not None
    assert (mashal.kind, mashal.canonical_name, mashal.aliases) == (
        "person",
        "Khaled Mashal",
        ("Khalid Meshal",),
    )
    assert [(r.organisation_id, r.valid_time.edtf) for r in mashal.roles] == [
        ("hamas", "2006/2010")
    ]
    assert await get_actor(pool, "nobody_at_all", prefix=contacts.prefix) is None

    def ids(found: list[ActorView]) -> list[str]:
        return [a.actor_id for a in found]

    assert ids(await search_actors(pool, "Khalid Meshal", prefix=contacts.prefix)) == ["mashal"]
    assert ids(await search_actors(pool, "pflp", prefix=contacts.prefix)) == ["pflp"]
    assert ids(await search_actors(pool, "Hamdan", prefix=contacts.prefix)) == ["hamdan"]
    assert ids(await search_actors(pool, "ham", prefix=contacts.prefix)) == ["hamas", "hamdan"]
    assert ids(await search_actors(pool, "Islamic Jihad", prefix=contacts.prefix)) == ["pij"]
    assert await search_actors(pool, "100%_", prefix=contacts.prefix) == []


# -- amendments ----------------------------------------------------------------------------------


async def test_corrections_and_retractions_reach_every_view(
    seeded: EventStore,
    pool: asyncpg.Pool,
    app_options: ConnectionOptions,
    contacts: ContactsProjection,
) -> None:
    u = uuid.uuid4().hex[:8]
    person, other, faction, meeting = f"p_{u}", f"q_{u}", f"f_{u}", f"m_{u}"
    handler = CommandHandler(seeded)
    await _register(handler, (person, "person"), (other, "person"), (faction, "organisation"))
    role = await handler.handle(
        AssignRole(actor=person, organisation=faction, valid_time="2001/2003")
    )
    recorded = await handler.handle(
        RecordInteraction(
            kind="meeting",
            interaction_id=meeting,
            participants=(
                ParticipantRef(actor=person, role="participant", name_as_reported="P."),
                ParticipantRef(actor=other, role="participant"),
            ),
            valid_time="2002-05",
        )
    )
    [meeting_event] = recorded.event_ids
    await _catch_up(seeded, contacts, app_options, pool)

    async def graph() -> list[tuple[int, int, int]]:
        edges = await contact_graph(pool, actor_id=person, prefix=contacts.prefix)
        return [(e.year, e.certain, e.possible) for e in edges]

    [entry] = await _history(pool, contacts, faction)
    assert (entry.interaction_id, entry.via, entry.roles) == (meeting, person, ("participant",))
    assert [c.actor_id for c in entry.counterparts] == [other]
    assert await graph() == [(2002, 1, 1)]

    # A corroborating source joins the view.
    await handler.handle(
        AddSource(
            stream=f"interaction-{meeting}",
            target_event_id=meeting_event,
            source=Source(publisher="Another paper", quote="They met in May 2002."),
        )
    )
    # The role is withdrawn: the faction no longer counts the meeting; the person still does.
    await handler.handle(
        RetractEvent(stream=f"actor-{person}", target_event_id=role.event_ids[0], reason="wrong")
    )
    await _catch_up(seeded, contacts, app_options, pool)
    assert await _history(pool, contacts, faction) == []
    [own] = await _history(pool, contacts, person)
    assert [s.publisher for s in own.sources] == ["Another paper"]
    actor = await get_actor(pool, person, prefix=contacts.prefix)
    assert actor is not None
    assert actor.roles == ()

    # The date is corrected: the entry and the graph move to the new year.
    await handler.handle(
        CorrectEvent(
            stream=f"interaction-{meeting}",
            target_event_id=meeting_event,
            changes={"valid_time": "2004"},
            reason="the source gives 2004",
        )
    )
    await _catch_up(seeded, contacts, app_options, pool)
    [own] = await _history(pool, contacts, person)
    assert (own.valid_time.edtf, own.valid_time.lower, own.valid_time.upper) == (
        "2004",
        date(2004, 1, 1),
        date(2004, 12, 31),
    )
    assert [s.publisher for s in own.sources] == ["Another paper"]
    assert await graph() == [(2004, 1, 1)]
    window = (date(2002, 1, 1), date(2002, 12, 31))
    assert await _history(pool, contacts, person, window=window) == []

    # A rebuild in one batch gives the same views as the batches applied one by one.
    rebuilt = _fresh_projection()
    await _catch_up(seeded, rebuilt, app_options, pool, batch_size=1_000)
    assert await _history(pool, rebuilt, person) == [own]
    assert await _history(pool, rebuilt, "hamas") == await _history(pool, contacts, "hamas")
    assert await contact_graph(pool, prefix=rebuilt.prefix) == await contact_graph(
        pool, prefix=contacts.prefix
    )
    await _drop(rebuilt, app_options)

    # The meeting is retracted: gone from every history and from the graph.
    await handler.handle(
        RetractEvent(stream=f"interaction-{meeting}", target_event_id=meeting_event, reason="no")
    )
    await _catch_up(seeded, contacts, app_options, pool)
    assert await _history(pool, contacts, person) == []
    assert await _history(pool, contacts, other) == []
    assert await graph() == []


async def test_a_rebuild_builds_the_next_version_beside_the_live_one(
    seeded: EventStore,
    pool: asyncpg.Pool,
    app_options: ConnectionOptions,
    contacts: ContactsProjection,
) -> None:
    tag = uuid.uuid4().hex[:10]
    name, prefix = f"contacts_{tag}", f"t{tag}_"

    def make(version: int) -> ContactsProjection:
        return ContactsProjection(name=name, prefix=prefix, version=version)

    await _catch_up(seeded, make(1), app_options, pool)
    report = await rebuild(seeded, make, lambda: connect(app_options), name, batch_size=1_000)
    assert (report.old_version, report.new_version) == (1, 2)
    assert await live_version(pool, name) == 2
    v2 = await contact_history(pool, "hamas", prefix=prefix, version=2)
    assert [(e.interaction_id, e.via) for e in v2] == HAMAS_HISTORY
    tables = await pool.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'projections' AND tablename LIKE $1",
        f"{prefix}%",
    )
    assert sorted(t["tablename"] for t in tables) == sorted(
        f"{prefix}{table}_v2"
        for table in (
            "interactions",
            "interaction_actors",
            "actors",
            "actor_roles",
            *GRAPH_TABLES.values(),
        )
    )
    await _drop(make(2), app_options)
