"""Projection benchmark: full rebuilds of the roster and contacts projections against the raw
feed-read floor, memory during each rebuild, and live lag under a sustained append load.

    python -m bench.projections            # full run: 100k and 1M events, 20 s of live load
    python -m bench.projections --quick    # smaller: 20k and 100k events, 8 s of live load

One scratch database, created and migrated like bench/event_store.py and dropped at the end.
The log is filled with synthetic but valid domain events (they decode with ``CATALOGUE`` and
pass the projections): ~2% actor events, ~60% interactions, ~30% meeting lifecycle events,
~5% declaration events and ~3% amendments of earlier events of the same stream. Rows are
computed with ``events.rows`` (valid hash chains) and bulk-loaded with COPY by a child process,
so that the generator's bookkeeping never weighs on the memory measured here.

The floor is reading the same events (the projection's categories) in feed order through
``EventStore.read_all`` in pages of 5,000, applying nothing, in the same run. Each rebuild is a
fresh projection (own name and tables) driven from ``START`` by ``ProjectionRunner`` with
batches of 5,000 until ``projection_lag`` is zero. Peak RSS is sampled from /proc/self/statm
every 50 ms by a thread (which an event loop busy applying a batch cannot delay). The CPU
seconds each rebuild cost this process and the server's backends for the scratch database are
printed beside it (server: from /proc, so only for a local server): on a shared machine the
rates move with other work, the CPU cost much less.
Set BENCH_DATABASE_URL to a server where a scratch database may be created (default: local).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import msgspec

from events import (
    NO_STREAM,
    START,
    ConnectionOptions,
    Cursor,
    EventStore,
    FeedListener,
    Metadata,
    NewEvent,
    Notifier,
    RecordedEvent,
    connect,
    migrate,
)
from events.connect import create_pool
from events.domain.catalogue import (
    CATALOGUE,
    ActorRegistered,
    AddressDelivered,
    AliasAdded,
    AttendanceConfirmed,
    AttendanceDeclined,
    ContactsReported,
    DeclarationDrafted,
    DeclarationSigned,
    DelegationLeaderNamed,
    DelegationMemberNamed,
    EventCorrected,
    EventRetracted,
    FactionInvited,
    MeetingDateRevised,
    MeetingHeld,
    MeetingPostponed,
    MeetingScheduled,
    PhoneCallHeld,
    RoleAssigned,
    SignatureRefused,
    SourceAdded,
    StatementReported,
    VisitMade,
)
from events.domain.coding import code_for
from events.domain.valid_time import ValidTime, valid_time
from events.domain.vocabulary import Alias, Participant, Place, Source
from events.rows import EMPTY_HEAD, StreamHead, extend_chain, prepare
from projections.collector import long_lived_collector
from projections.roster import RosterProjection
from projections.runner import ProjectionRunner, projection_lag

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from multiprocessing.connection import Connection

    from projections.runner import Projection

try:
    from projections.contacts import ContactsProjection
except ImportError:  # another engineer may still be finishing it: benchmark the roster alone
    ContactsProjection = None  # type: ignore[assignment,misc]

PAGE: Final = 5_000
COPY_CHUNK: Final = 20_000
GOAL_EVENTS_PER_S: Final = 25_000
LAG_GOAL_MS: Final = 1_000
COPY_COLUMNS: Final = (
    "stream_id",
    "stream_version",
    "event_id",
    "type",
    "schema_version",
    "data",
    "metadata",
    "hash",
)
CHECKPOINTS_SQL: Final = """
SELECT name, transaction_id, position FROM projection_checkpoints
WHERE name = any($1::text[]) AND version = 1
"""
CATEGORY_COUNTS_SQL: Final = """
SELECT split_part(stream_id, '-', 1) AS category, count(*) AS n FROM events GROUP BY 1
"""
ACTORS_SQL: Final = """
SELECT data->>'actor_id' AS actor_id, data->>'kind' AS kind FROM events
WHERE type = 'actor.registered.v1'
"""
MAX_MEETING_FACTS: Final = 40
"""Facts routed to one meeting's roster (its stream, its declarations, linked interactions)."""
ACTIVE_MEETINGS: Final = 300
ACTIVE_DECLARATIONS: Final = 60
AMENDABLE: Final = 5_000

# -- realistic values ---------------------------------------------------------------------------

FIRST_NAMES: Final = [
    "Mikhail",
    "Sergei",
    "Ismail",
    "Mousa",
    "Khaled",
    "Osama",
    "Azzam",
    "Jibril",
    "Mahmoud",
    "Yahya",
    "Saleh",
    "Nabil",
    "Hussein",
    "Ahmed",
    "Ali",
    "Omar",
    "Rashid",
    "Laila",
    "Hanan",
    "Samir",
    "Ziad",
    "Tariq",
    "Walid",
    "Dmitry",
    "Vladimir",
    "Anatoly",
    "Igor",
    "Yuri",
]
LAST_NAMES: Final = [
    "Bogdanov",
    "Lavrov",
    "Haniyeh",
    "Abu-Marzook",
    "Mashal",
    "Hamdan",
    "al-Ahmad",
    "Rajoub",
    "Abbas",
    "Sinwar",
    "al-Arouri",
    "Shaath",
    "Ashrawi",
    "Zakout",
    "al-Hindi",
    "Nakhalah",
    "Habash",
    "Hawatmeh",
    "Barghouti",
    "Dahlan",
    "Medvedev",
    "Margelov",
    "Sultanov",
    "Vershinin",
    "Ryabkov",
    "Peskov",
    "Ushakov",
    "Kadyrov",
]
ORG_WORDS: Final = [
    "Popular",
    "Democratic",
    "National",
    "Islamic",
    "Revolutionary",
    "Liberation",
    "Unity",
    "Reform",
    "Resistance",
    "Solidarity",
    "Progressive",
    "Independent",
    "Palestinian",
    "Arab",
    "People's",
]
ORG_KINDS: Final = ("Front", "Movement", "Committee", "Council", "Initiative", "Party", "Union")
CITIES: Final = (
    ("Moscow", "RUS"),
    ("Cairo", "EGY"),
    ("Doha", "QAT"),
    ("Beirut", "LBN"),
    ("Damascus", "SYR"),
    ("Istanbul", "TUR"),
    ("Algiers", "DZA"),
    ("Amman", "JOR"),
    ("Beijing", "CHN"),
    ("Tehran", "IRN"),
    ("Ramallah", None),
    ("Gaza", None),
)
VENUES: Final = (
    None,
    "Ministry of Foreign Affairs",
    "Institute of Oriental Studies",
    "President-Hotel",
    "the Palestinian embassy",
)
PUBLISHERS: Final = ("TASS", "RIA Novosti", "Al Jazeera", "Reuters", "Kommersant", "Al-Monitor")
TOPICS: Final = (
    "humanitarian situation in Gaza",
    "Palestinian unity",
    "ceasefire",
    "prisoner exchange",
    "reconstruction",
    "inter-Palestinian reconciliation",
    "settlements",
    "elections",
)
CARDINALITIES: Final = (
    ("several times", 2),
    ("on several occasions", 2),
    ("frequently", None),
    ("regularly", None),
    ("at least three times", 3),
    ("repeatedly", 2),
)
CLAIMS: Final = (
    ("avoids public personal contact with", True),
    ("maintains regular contact with", False),
    ("expressed support for the continuity of relations with", False),
    ("refused to comment on contacts with", True),
)
TITLES: Final = (
    "Deputy Minister of Foreign Affairs",
    "Special Representative for the Middle East",
    "member of the Political Bureau",
    "Deputy Chairman of the Politburo",
    "head of the international relations department",
    "Secretary-General",
    "spokesman",
    "member of the Executive Committee",
)
REASONS: Final = (
    "a later report gives other dates",
    "the delegations asked for more time",
    "security situation",
    "dates given in an earlier report",
)
META: Final = Metadata(recorded_by="bench-loader", correlation_id="bench-projections")
LIVE_META: Final = Metadata(recorded_by="bench-live", correlation_id="bench-projections")


def _edtf_pool(rng: random.Random) -> list[ValidTime]:
    """Plausible EDTF valid times: days, months, years, intervals, open ranges, one-of sets."""
    months = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ]
    pool: list[ValidTime] = []
    for _ in range(240):
        year = rng.randint(2005, 2025)
        month = rng.randint(1, 12)
        day = rng.randint(1, 28)
        shape = rng.random()
        if shape < 0.25:
            pool.append(valid_time(f"{year}-{month:02d}", f"in {months[month - 1]} {year}"))
        elif shape < 0.45:
            text = f"{year}-{month:02d}-{day:02d}"
            pool.append(valid_time(text, f"on {months[month - 1]} {day}, {year}"))
        elif shape < 0.55:
            pool.append(valid_time(f"{year}", f"in {year}"))
        elif shape < 0.7:
            end = year + rng.randint(1, 4)
            pool.append(valid_time(f"{year}/{end}", f"from {year} to {end}"))
        elif shape < 0.8:
            pool.append(valid_time(f"../{year}-{month:02d}", "undated, before the report"))
        elif shape < 0.9:
            text = f"[{year}-{month:02d}-{day:02d}..{year}-{month:02d}-{min(day + 12, 28):02d}]"
            pool.append(valid_time(text, f"in the second half of {months[month - 1]}"))
        else:
            pool.append(valid_time(f"{year}-{month:02d}~", f"around {months[month - 1]} {year}"))
    return pool


@dataclass
class _Meeting:
    meeting_id: str
    budget: int
    facts: int = 1
    invited: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    led: set[str] = field(default_factory=set)
    amendable: list[str] = field(default_factory=list)
    """Event ids of this meeting's own facts that an amendment may target."""


@dataclass
class _Declaration:
    declaration_id: str
    meeting: _Meeting
    parties: list[str]


@dataclass
class _Amendable:
    stream_id: str
    event_id: str
    kind: str
    meeting: _Meeting | None = None


class Synth:
    """Generates valid domain events with realistic shapes, keeping just enough state to link
    them: registered actors, open meetings, open declarations, recent amendable facts."""

    def __init__(self, seed: int, prefix: str, weights: tuple[float, ...]) -> None:
        self.rng = random.Random(seed)
        self.prefix = prefix
        self.weights = weights  # actor, interaction, meeting, declaration, amendment
        self.times = _edtf_pool(self.rng)
        self.codings = {
            kind: code_for(kind)
            for kind in (
                "phone_call",
                "contacts",
                "meeting",
                "visit",
                "address",
                "statement",
                "meeting_scheduled",
                "faction_invited",
                "attendance_confirmed",
                "attendance_declined",
                "declaration_signed",
                "signature_refused",
            )
        }
        self.places = [
            Place(name=city, country=country, venue=self.rng.choice(VENUES))
            if country
            else Place(name=city)
            for city, country in CITIES
        ]
        self.sources = [self._source(i) for i in range(300)]
        self.persons: list[str] = []
        self.person_ids: set[str] = set()
        self.open_meetings: dict[str, _Meeting] = {}
        self.orgs: list[str] = []
        self.names: dict[str, str] = {}
        self.meetings: list[_Meeting] = []
        self.declarations: list[_Declaration] = []
        self.amendable: list[_Amendable] = []
        self.busy: set[str] = set()
        self.serial = 0

    def _source(self, i: int) -> Source:
        rng = self.rng
        year = rng.randint(2005, 2025)
        return Source(
            url=f"https://news.example.org/{year}/{rng.randint(1, 12)}/{i}-{rng.getrandbits(24)}",
            publisher=rng.choice(PUBLISHERS),
            language="en",
            quote=(
                f"The {rng.choice(PUBLISHERS)} report said the talks focused on the "
                f"{rng.choice(TOPICS)} and the {rng.choice(TOPICS)}, according to an official "
                "statement from the Russian Foreign Ministry."
            ),
            attributed_to=rng.choice((None, "Russian Ministry of Foreign Affairs", "Hamas")),
        )

    def _id(self, kind: str) -> str:
        self.serial += 1
        return f"{self.prefix}{kind}{self.serial}"

    def _sources(self) -> tuple[Source, ...]:
        return tuple(self.rng.sample(self.sources, self.rng.choice((1, 1, 1, 2))))

    def adopt_actors(self, actors: list[tuple[str, str]]) -> None:
        """Use actors registered earlier (the live phase's generator registers none)."""
        for actor_id, kind in actors:
            (self.persons if kind == "person" else self.orgs).append(actor_id)
            if kind == "person":
                self.person_ids.add(actor_id)
            self.names[actor_id] = actor_id.replace("_", " ").title()

    # -- one event -----------------------------------------------------------------------------

    def next(self) -> tuple[str, Any]:
        """A stream id and the domain event (a catalogue Struct) to append to it."""
        if len(self.persons) < 40 or len(self.orgs) < 20:
            return self._actor(register=True)
        pick = self.rng.choices(range(5), self.weights)[0]
        if pick == 0:
            return self._actor(register=self.rng.random() < 0.5)
        if pick == 2:
            found = self._meeting_event()
            if found is not None:
                return found
        if pick == 3:
            found = self._declaration_event()
            if found is not None:
                return found
        if pick == 4:
            found = self._amendment()
            if found is not None:
                return found
        return self._interaction()

    def _actor(self, *, register: bool) -> tuple[str, Any]:
        rng = self.rng
        if register:
            person = len(self.persons) < 40 or (len(self.orgs) >= 20 and rng.random() < 0.75)
            if person:
                name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
                actor_id = self._id("p")
                self.persons.append(actor_id)
                self.person_ids.add(actor_id)
                aliases: tuple[Alias, ...] = ()
                if rng.random() < 0.3:
                    aliases = (Alias(text=name.rsplit(maxsplit=1)[-1], lang="en", scheme="press"),)
                event: Any = ActorRegistered(
                    actor_id=actor_id,
                    kind="person",
                    canonical_name=name,
                    aliases=aliases,
                    country=rng.choice((None, "RUS", "PSE", "EGY")),
                    sources=self._sources(),
                )
            else:
                name = f"{rng.choice(ORG_WORDS)} {rng.choice(ORG_WORDS)} {rng.choice(ORG_KINDS)}"
                actor_id = self._id("o")
                self.orgs.append(actor_id)
                short = "".join(w[0] for w in name.split()).upper()
                event = ActorRegistered(
                    actor_id=actor_id,
                    kind="organisation",
                    canonical_name=name,
                    aliases=(Alias(text=short, lang="en"),),
                    sources=self._sources(),
                )
            self.names[actor_id] = name
            return f"actor-{actor_id}", event
        if rng.random() < 0.7:
            actor_id = rng.choice(self.persons)
            return f"actor-{actor_id}", RoleAssigned(
                actor_id=actor_id,
                organisation_id=rng.choice(self.orgs),
                title_as_reported=rng.choice(TITLES),
                valid_time=rng.choice(self.times),
                sources=self._sources(),
            )
        actor_id = rng.choice(self.persons + self.orgs)
        spelling = self.names[actor_id].replace("a", "e", 1).replace("ou", "u")
        return f"actor-{actor_id}", AliasAdded(
            actor_id=actor_id,
            alias=Alias(text=spelling, lang="en", scheme="BGN"),
            sources=self._sources(),
        )

    def _participant(self, actor_id: str, role: Any) -> Participant:
        person = actor_id in self.person_ids
        title = self.rng.choice(TITLES) if person and self.rng.random() < 0.3 else None
        return Participant(
            actor_id=actor_id,
            role=role,
            name_as_reported=self.names.get(actor_id),
            title_as_reported=title,
        )

    def _interaction(self, meeting: _Meeting | None = None) -> tuple[str, Any]:
        rng = self.rng
        interaction_id = self._id("i")
        a = rng.choice(self.persons)
        b = rng.choice(self.persons + self.orgs)
        while b == a:
            b = rng.choice(self.orgs)
        common: dict[str, Any] = {
            "interaction_id": interaction_id,
            "valid_time": rng.choice(self.times),
            "sources": self._sources(),
            "topics": tuple(rng.sample(TOPICS, rng.randint(0, 2))),
        }
        if meeting is None and self.meetings and rng.random() < 0.03:
            candidate = rng.choice(self.meetings)
            if candidate.facts < candidate.budget:
                meeting = candidate
        if meeting is not None:
            meeting.facts += 1
            parties = meeting.confirmed or meeting.invited or [b]
            event: Any = MeetingHeld(
                participants=tuple(self._participant(p, "participant") for p in parties[:6]),
                place=rng.choice(self.places),
                format="multilateral",
                coding=self.codings["meeting"],
                meeting_id=meeting.meeting_id,
                **common,
            )
        else:
            kind = rng.choices(
                ("phone_call", "meeting", "visit", "contacts", "statement", "address"),
                (25, 25, 20, 14, 10, 6),
            )[0]
            coding = self.codings[kind]
            if kind == "phone_call":
                event = PhoneCallHeld(
                    participants=(
                        self._participant(a, "initiator"),
                        self._participant(b, "recipient"),
                    ),
                    coding=coding,
                    **common,
                )
            elif kind == "meeting":
                event = MeetingHeld(
                    participants=(
                        self._participant(a, "participant"),
                        self._participant(b, "participant"),
                    ),
                    place=rng.choice(self.places),
                    format=rng.choice(("bilateral", "third_party")),
                    coding=coding,
                    **common,
                )
            elif kind == "visit":
                event = VisitMade(
                    participants=(
                        self._participant(a, "visitor"),
                        self._participant(b, "host"),
                    ),
                    place=rng.choice(self.places),
                    coding=coding,
                    **common,
                )
            elif kind == "contacts":
                text, least = rng.choice(CARDINALITIES)
                event = ContactsReported(
                    participants=(
                        self._participant(a, "participant"),
                        self._participant(b, "participant"),
                    ),
                    cardinality_text=text,
                    min_count=least,
                    coding=coding,
                    **common,
                )
            elif kind == "statement":
                claim, negated = rng.choice(CLAIMS)
                event = StatementReported(
                    participants=(
                        self._participant(a, "subject"),
                        self._participant(b, "mentioned"),
                    ),
                    claim=f"{claim} {self.names.get(b, b)}",
                    negated=negated,
                    coding=coding,
                    **common,
                )
            else:
                event = AddressDelivered(
                    participants=(
                        self._participant(a, "speaker"),
                        *(self._participant(o, "audience") for o in rng.sample(self.orgs, 3)),
                    ),
                    quote="Dear guests, dear friends...",
                    coding=coding,
                    **common,
                )
        return f"interaction-{interaction_id}", event

    def remember(self, stream_id: str, event: Any, event_id: str) -> None:
        """Note a fact that later amendments may target."""
        if self.weights[4] == 0:
            return
        kind = type(event).__name__
        meeting = None
        if stream_id.startswith("meeting-"):
            meeting = self.open_meetings.get(stream_id)
            if meeting is None or isinstance(event, MeetingScheduled):
                return  # keep every meeting scheduled: retracting that empties the roster
        elif not stream_id.startswith("interaction-"):
            return
        if isinstance(event, EventCorrected | EventRetracted | SourceAdded):
            return
        if isinstance(event, MeetingHeld) and event.meeting_id:
            return
        self.amendable.append(_Amendable(stream_id, event_id, kind, meeting))
        if len(self.amendable) > AMENDABLE:
            del self.amendable[: AMENDABLE // 2]

    def _new_meeting(self) -> tuple[str, Any]:
        rng = self.rng
        meeting_id = self._id("m")
        city = rng.choice(self.places)
        meeting = _Meeting(meeting_id, budget=rng.randint(12, MAX_MEETING_FACTS - 6))
        self.meetings.append(meeting)
        self.open_meetings[f"meeting-{meeting_id}"] = meeting
        event = MeetingScheduled(
            meeting_id=meeting_id,
            title=f"Inter-Palestinian meeting in {city.name}",
            host_id=rng.choice(self.orgs),
            place=city,
            valid_time=rng.choice(self.times),
            modality="announced",
            attributed_to="Russian Ministry of Foreign Affairs",
            coding=self.codings["meeting_scheduled"],
            sources=self._sources(),
        )
        return f"meeting-{meeting_id}", event

    def _meeting_event(self) -> tuple[str, Any] | None:  # noqa: PLR0911
        rng = self.rng
        if len(self.meetings) < ACTIVE_MEETINGS and rng.random() < 0.15:
            return self._new_meeting()
        sample = rng.sample(self.meetings, min(5, len(self.meetings)))
        stream = ""
        meeting = next((m for m in sample if f"meeting-{m.meeting_id}" not in self.busy), None)
        if meeting is None:
            return self._new_meeting()
        stream = f"meeting-{meeting.meeting_id}"
        meeting.facts += 1
        if meeting.facts >= meeting.budget:
            self.meetings.remove(meeting)
            self.open_meetings.pop(stream, None)
        roll = rng.random()
        mid = meeting.meeting_id
        uninvited = [o for o in rng.sample(self.orgs, 3) if o not in meeting.invited]
        if (roll < 0.35 or not meeting.invited) and uninvited and len(meeting.invited) < 8:
            faction = uninvited[0]
            meeting.invited.append(faction)
            return stream, FactionInvited(
                meeting_id=mid,
                faction_id=faction,
                name_as_reported=self.names.get(faction),
                inviter_id=rng.choice(self.orgs),
                coding=self.codings["faction_invited"],
                sources=self._sources(),
            )
        pending = [f for f in meeting.invited if f not in meeting.confirmed]
        if roll < 0.6 and pending:
            faction = rng.choice(pending)
            meeting.confirmed.append(faction)
            if rng.random() < 0.85:
                return stream, AttendanceConfirmed(
                    meeting_id=mid,
                    faction_id=faction,
                    coding=self.codings["attendance_confirmed"],
                    sources=self._sources(),
                )
            return stream, AttendanceDeclined(
                meeting_id=mid,
                faction_id=faction,
                reason=rng.choice(REASONS),
                coding=self.codings["attendance_declined"],
                sources=self._sources(),
            )
        if roll < 0.85 and meeting.confirmed:
            faction = rng.choice(meeting.confirmed)
            person = rng.choice(self.persons)
            common: dict[str, Any] = {
                "meeting_id": mid,
                "faction_id": faction,
                "person_id": person,
                "name_as_reported": self.names.get(person),
                "title_as_reported": rng.choice(TITLES),
                "sources": self._sources(),
            }
            if faction not in meeting.led:
                meeting.led.add(faction)
                return stream, DelegationLeaderNamed(**common)
            return stream, DelegationMemberNamed(**common)
        if roll < 0.97:
            return stream, MeetingDateRevised(
                meeting_id=mid,
                valid_time=rng.choice(self.times),
                reason=rng.choice(REASONS),
                sources=self._sources(),
            )
        return stream, MeetingPostponed(
            meeting_id=mid, reason=rng.choice(REASONS), sources=self._sources()
        )

    def _declaration_event(self) -> tuple[str, Any] | None:
        rng = self.rng
        if not self.meetings:
            return None
        if len(self.declarations) < ACTIVE_DECLARATIONS or rng.random() < 0.2:
            meeting = rng.choice(self.meetings)
            if meeting.facts + 6 > MAX_MEETING_FACTS:
                return None
            meeting.facts += 1
            declaration_id = self._id("d")
            parties = meeting.invited or rng.sample(self.orgs, 3)
            self.declarations.append(_Declaration(declaration_id, meeting, list(parties)))
            return f"declaration-{declaration_id}", DeclarationDrafted(
                declaration_id=declaration_id,
                title=f"{rng.choice(('Moscow', 'Cairo', 'Beijing', 'Algiers'))} Declaration",
                meeting_id=meeting.meeting_id,
                valid_time=rng.choice(self.times),
                sources=self._sources(),
            )
        declaration = rng.choice(self.declarations)
        meeting = declaration.meeting
        if not declaration.parties or meeting.facts >= MAX_MEETING_FACTS:
            self.declarations.remove(declaration)
            return None
        party = declaration.parties.pop()
        meeting.facts += 1
        stream = f"declaration-{declaration.declaration_id}"
        if rng.random() < 0.7:
            return stream, DeclarationSigned(
                declaration_id=declaration.declaration_id,
                signatory_id=party,
                name_as_reported=self.names.get(party),
                coding=self.codings["declaration_signed"],
                sources=self._sources(),
            )
        return stream, SignatureRefused(
            declaration_id=declaration.declaration_id,
            refuser_id=party,
            name_as_reported=self.names.get(party),
            reason="objected to the wording on the PLO",
            coding=self.codings["signature_refused"],
            sources=self._sources(),
        )

    def _amendment(self) -> tuple[str, Any] | None:
        rng = self.rng
        if not self.amendable:
            return None
        index = rng.randrange(len(self.amendable))
        target = self.amendable[index]
        meeting = target.meeting
        if meeting is not None:
            if meeting.facts >= MAX_MEETING_FACTS:
                return None
            meeting.facts += 1
        roll = rng.random()
        if roll < 0.6:
            return target.stream_id, SourceAdded(
                target_event_id=target.event_id, source=rng.choice(self.sources)
            )
        # A corrected or retracted fact is amended no further.
        self.amendable[index] = self.amendable[-1]
        self.amendable.pop()
        if roll < 0.85:
            changes: dict[str, Any]
            if target.kind in {"MeetingDateRevised"} or target.stream_id.startswith("interaction"):
                changes = {"valid_time": msgspec.to_builtins(rng.choice(self.times))}
            else:
                changes = {"sources": msgspec.to_builtins(self._sources())}
            return target.stream_id, EventCorrected(
                target_event_id=target.event_id,
                changes=changes,
                reason="a later report corrects the date",
                sources=self._sources(),
            )
        return target.stream_id, EventRetracted(
            target_event_id=target.event_id,
            reason="the source withdrew the report",
            sources=self._sources(),
        )

    def live(self) -> tuple[str, Any]:
        """One event for the live phase: an interaction or a meeting lifecycle event."""
        if self.rng.random() < 0.35:
            found = self._meeting_event()
            if found is not None:
                return found
        return self._interaction()


def new_event(event: Any, metadata: Metadata) -> NewEvent:
    """The event wrapped for ``EventStore.append``, as the command handler wraps it."""
    return CATALOGUE.new_event(event, metadata=metadata)


# -- bulk loading (child process) ---------------------------------------------------------------

Row = tuple[str, int, uuid.UUID, str, int, str, str, bytes]
WEIGHTS: Final = (0.02, 0.60, 0.30, 0.05, 0.03)


def _rows(synth: Synth, heads: dict[str, StreamHead], n: int) -> list[Row]:
    out: list[Row] = []
    for _ in range(n):
        stream_id, event = synth.next()
        new = new_event(event, META)
        prepared = prepare(stream_id, [new])
        head = heads.get(stream_id, EMPTY_HEAD)
        versions, hashes = extend_chain(head, prepared)
        heads[stream_id] = StreamHead(versions[-1], hashes[-1])
        p = prepared[0]
        synth.remember(stream_id, event, str(p.event_id))
        out.append(
            (
                stream_id,
                versions[0],
                p.event_id,
                p.type,
                p.schema_version,
                p.data,
                p.metadata,
                hashes[0],
            )
        )
    return out


async def _load(dsn: str, pipe: Connection) -> None:
    synth = Synth(20240228, "", WEIGHTS)
    heads: dict[str, StreamHead] = {}
    conn = await asyncpg.connect(dsn)
    loaded = 0
    try:
        while True:
            target = pipe.recv()
            if target is None:
                return
            started = time.perf_counter()
            while loaded < target:
                rows = _rows(synth, heads, min(COPY_CHUNK, target - loaded))
                for row in rows[::50]:  # spot check: every generated event decodes
                    CATALOGUE.decode(RecordedEvent(0, 0, *row[:7], datetime.now(UTC), row[7]))
                await conn.copy_records_to_table("events", records=rows, columns=COPY_COLUMNS)
                loaded += len(rows)
            pipe.send(time.perf_counter() - started)
    finally:
        await conn.close()


def _loader_main(dsn: str, pipe: Connection) -> None:
    asyncio.run(_load(dsn, pipe))


# -- measuring ----------------------------------------------------------------------------------


class RssSampler:
    """Peak resident set size of this process, sampled every 50 ms by a thread."""

    def __init__(self, interval: float = 0.05) -> None:
        self._interval = interval
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.start_mb = self.current_mb()
        self.peak_mb = self.start_mb

    def current_mb(self) -> float:
        resident = int(Path("/proc/self/statm").read_text().split()[1])
        return resident * self._page / 1e6

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_mb = max(self.peak_mb, self.current_mb())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self.current_mb())


class CpuMeter:
    """CPU seconds used by this process and by the server's backends for one database (read
    from /proc, so only when the server runs on this machine): on a shared machine, rates vary
    with the other work, the CPU a rebuild costs much less."""

    def __init__(self, database: str, interval: float = 0.5) -> None:
        self._marker = f" {database} ".encode()
        self._interval = interval
        self._tick = os.sysconf("SC_CLK_TCK")
        self._backends: dict[int, float] = {}
        self._start: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._process = time.process_time()
        self.process_s = 0.0
        self.server_s: float | None = None

    def _sample(self) -> dict[int, float]:
        seen: dict[int, float] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes()
                if not command.startswith(b"postgres: ") or self._marker not in command:
                    continue
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            seen[int(entry.name)] = (int(fields[11]) + int(fields[12])) / self._tick
        return seen

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._backends.update(self._sample())

    def __enter__(self) -> CpuMeter:
        self._start = self._sample()
        self._backends = dict(self._start)
        self._process = time.process_time()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take the final sample (before the runner's connection closes)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        self._backends.update(self._sample())
        self.process_s = time.process_time() - self._process
        if self._backends:
            self.server_s = sum(v - self._start.get(k, 0.0) for k, v in self._backends.items())

    def __exit__(self, *_: object) -> None:
        self.stop()


async def read_floor(store: EventStore, projection: Projection) -> tuple[int, float]:
    """Read the projection's categories in feed order, in pages of 5,000, applying nothing."""
    started = time.perf_counter()
    cursor, total = START, 0
    while True:
        page = await store.read_all(cursor, limit=PAGE, filter=projection.filter)
        total += len(page.events)
        cursor = page.next_cursor
        if not page.full:
            return total, total / (time.perf_counter() - started)


async def rebuild(
    store: EventStore,
    projection: Projection,
    opener: Callable[[], Awaitable[asyncpg.Connection]],
    pool: asyncpg.Pool,
    expected: int,
    *,
    cpu: CpuMeter,
) -> tuple[float, RssSampler]:
    """Run the projection from START until it has nothing left to apply."""
    runner = ProjectionRunner(store, projection, opener, batch_size=PAGE)
    with RssSampler() as rss, cpu:
        started = time.perf_counter()
        task = asyncio.get_running_loop().create_task(runner.run())
        try:
            while True:
                if task.done():
                    task.result()
                # The lag query scans what is left: only ask once the count says we are there.
                if (
                    runner.applied >= expected
                    and (await projection_lag(pool, projection)).events == 0
                ):
                    break
                await asyncio.sleep(0.01)
            seconds = time.perf_counter() - started
            cpu.stop()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return runner.applied / seconds, rss


def _categories(projection: Projection) -> list[str]:
    assert projection.filter is not None  # noqa: S101
    return projection.filter.category_list() or []


async def measure(
    *,
    size: int,
    database: str,
    store: EventStore,
    pool: asyncpg.Pool,
    opener: Callable[[], Awaitable[asyncpg.Connection]],
    counts: dict[str, int],
    projections: list[Projection],
) -> None:
    for projection in projections:
        expected = sum(counts.get(c, 0) for c in _categories(projection))
        read, floor = await read_floor(store, projection)
        cpu = CpuMeter(database)
        rate, rss = await rebuild(store, projection, opener, pool, expected, cpu=cpu)
        _, again = await read_floor(store, projection)
        floor = max(floor, again)
        ratio = rate / floor
        verdict = "meets" if rate >= GOAL_EVENTS_PER_S else "BELOW"
        label = f"rebuild {projection.name.split('_')[0]}"
        server = f"{cpu.server_s:>6.1f}" if cpu.server_s is not None else "   n/a"
        print(
            f"{label:<18} {read:>10,} {floor:>12,.0f} {rate:>12,.0f} {ratio:>6.2f}x "
            f"{rss.peak_mb:>9.0f} (start {rss.start_mb:>4.0f}) "
            f"{cpu.process_s:>6.1f} {server}"
            f"   goal >= {GOAL_EVENTS_PER_S / 1000:.0f}k ev/s: {verdict}",
            flush=True,
        )


@dataclass
class _Pending:
    cursor: Cursor
    returned: float
    needs: tuple[str, ...]


async def live_lag(  # noqa: PLR0915
    *,
    store: EventStore,
    pool: asyncpg.Pool,
    opener: Callable[[], Awaitable[asyncpg.Connection]],
    projections: list[Projection],
    actors: list[tuple[str, str]],
    seconds: float,
    rate: float,
) -> None:
    """Sustained appends while runners follow; commit-to-applied lag of every append."""
    loop = asyncio.get_running_loop()
    runners = [ProjectionRunner(store, p, opener, batch_size=1_000) for p in projections]
    tasks = [loop.create_task(r.run()) for r in runners]
    for projection in projections:
        while (await projection_lag(pool, projection)).events > 0:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    synth = Synth(7, "live", (0.0, 0.65, 0.35, 0.0, 0.0))
    synth.adopt_actors(actors)
    versions: dict[str, int] = {}
    pending: list[_Pending] = []
    lags: list[float] = []
    names = [p.name for p in projections]
    consumers = {
        c: tuple(p.name for p in projections if c in _categories(p))
        for c in ("interaction", "meeting")
    }
    done = asyncio.Event()
    returned: list[float] = []

    async def monitor() -> None:
        while not (done.is_set() and not pending):
            rows = await pool.fetch(CHECKPOINTS_SQL, names)
            now = time.perf_counter()
            reached = {r["name"]: Cursor(r["transaction_id"], r["position"]) for r in rows}
            still: list[_Pending] = []
            for item in pending:
                if all(reached.get(n, START) >= item.cursor for n in item.needs):
                    lags.append(max(now - item.returned, 0.0) * 1000)
                else:
                    still.append(item)
            pending[:] = still
            await asyncio.sleep(0.01)

    async def append(stream_id: str, event: Any) -> None:
        # One append in flight per meeting stream (``busy``), so its version is known exactly.
        expected = versions.get(stream_id, NO_STREAM)
        try:
            result = await store.append(stream_id, [new_event(event, LIVE_META)], expected)
        finally:
            synth.busy.discard(stream_id)
        versions[stream_id] = result.last_version
        now = time.perf_counter()
        returned.append(now)
        pending.append(_Pending(result.cursor, now, consumers[stream_id.split("-", 1)[0]]))

    watcher = loop.create_task(monitor())
    appends: set[asyncio.Task[None]] = set()
    total = int(seconds * rate)
    started = time.perf_counter()
    for i in range(total):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        stream_id, event = synth.live()
        synth.busy.add(stream_id)
        task = loop.create_task(append(stream_id, event))
        appends.add(task)
        task.add_done_callback(appends.discard)
    await asyncio.gather(*appends)
    elapsed = max(returned) - started
    done.set()
    try:
        await asyncio.wait_for(watcher, 60)
    except TimeoutError:
        print(f"  {len(pending):,} appends not applied 60 s after the load ended")
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if not lags:
        print("  no append was applied")
        return
    lags.sort()
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    verdict = "meets" if p99 < LAG_GOAL_MS else "BELOW"
    print(
        f"live lag ({', '.join(n.split('_')[0] for n in names)} following): "
        f"{len(returned):,} appends of 1 event in {elapsed:.1f} s = "
        f"{len(returned) / elapsed:,.0f} appends/s (target {rate:,.0f})"
    )
    print(
        f"  commit-to-applied lag: p50 {statistics.median(lags):,.0f} ms   p99 {p99:,.0f} ms   "
        f"max {lags[-1]:,.0f} ms   (goal p99 < {LAG_GOAL_MS:,} ms: {verdict})"
    )


# -- main ---------------------------------------------------------------------------------------


async def main() -> None:  # noqa: PLR0915
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller volumes, shorter load")
    args = parser.parse_args()
    sizes = [20_000, 100_000] if args.quick else [100_000, 1_000_000]
    live_seconds, live_rate = (8.0, 500.0) if args.quick else (20.0, 500.0)
    server = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"diplofeed_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = server.rsplit("/", 1)[0] + "/" + name
    owner = await asyncpg.connect(dsn)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    loader = context.Process(target=_loader_main, args=(dsn, theirs), daemon=True)
    try:
        await migrate(owner)
        loader.start()
        options = ConnectionOptions(dsn=dsn, role="diplofeed_app", max_pool_size=8)
        pool = await create_pool(options)

        async def opener() -> asyncpg.Connection:
            return await connect(options)

        store = EventStore(pool)
        print(
            f"PostgreSQL {await owner.fetchval('SHOW server_version')}, {os.cpu_count()} CPUs; "
            f"pages and batches of {PAGE:,}; floor = read_all of the projection's categories"
            + (
                ""
                if ContactsProjection is not None
                else "; projections/contacts missing: roster only"
            ),
            flush=True,
        )
        last: list[Projection] = []
        for size in sizes:
            ours.send(size)
            load_seconds = await asyncio.get_running_loop().run_in_executor(None, ours.recv)
            await owner.execute("VACUUM ANALYZE events")
            # The load leaves a checkpoint's worth of dirty buffers and WAL behind; flushed now,
            # rather than by the checkpointer on the same two cores during the first rebuild,
            # which then also logged a full-page image for each page it first touched.
            await owner.execute("CHECKPOINT")
            counts = {r["category"]: r["n"] for r in await owner.fetch(CATEGORY_COUNTS_SQL)}
            mix = ", ".join(f"{c} {n / size:.0%}" for c, n in sorted(counts.items()))
            print(f"-- {size:,} events stored (loaded in {load_seconds:.0f} s; {mix})", flush=True)
            print(
                f"{'workload':<18} {'events':>10} {'floor ev/s':>12} {'rebuild ev/s':>12} "
                f"{'ratio':>7} {'peak RSS MB':>11}            {'CPU s: this process, server':>6}"
            )
            label = f"{size // 1000}k"
            last = [RosterProjection(name=f"roster_{label}", table_prefix=f"roster_{label}")]
            if ContactsProjection is not None:
                last.append(ContactsProjection(name=f"contacts_{label}", prefix=f"c{label}_"))
            await measure(
                size=size,
                database=name,
                store=store,
                pool=pool,
                opener=opener,
                counts=counts,
                projections=last,
            )
        ours.send(None)
        actors = [(r["actor_id"], r["kind"]) for r in await owner.fetch(ACTORS_SQL)]
        listener = FeedListener(opener)
        await listener.start()
        notifier = Notifier(pool)
        live = EventStore(pool, notifier=notifier, listener=listener)
        await live_lag(
            store=live,
            pool=pool,
            opener=opener,
            projections=last,
            actors=actors,
            seconds=live_seconds,
            rate=live_rate,
        )
        await notifier.close()
        await listener.close()
        await pool.close()
    finally:
        if loader.is_alive():
            loader.terminate()
        loader.join()
        await owner.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    # The collector tuned as in the service's long-running processes (serve, project,
    # rebuild), for the floor and the rebuilds alike.
    with long_lived_collector():
        asyncio.run(main())
