"""The delegation roster: for each planned meeting, which factions were invited, who answered
how, who heads and fills each delegation, and how each faction dealt with the declarations put
forward there.

A meeting's roster is folded from its facts by one pure function, ``roster_from``: the events of
its own stream, of the declarations drafted for it and of the interactions recorded as part of
it. The SQL projection keeps, per meeting, the fold so far (a draft) next to the view made from
it, and folds a batch's new facts into the draft. A correction or retraction changes facts
folded earlier, so a batch that brings one folds that meeting again from its facts in the log:
the view then equals folding the log "as of" that point (``roster_as_of``), as it must.

Which meeting an event belongs to (``Routes``): a meeting stream's events belong to that meeting;
a declaration or interaction stream is linked to a meeting by its first fact that names one
(``DeclarationDrafted.meeting_id``, ``MeetingHeld.meeting_id``), and every later event of the
stream (signatures, refusals, amendments) follows that link. Links are kept in
``roster_links_v<n>`` so a batch needs no scan of earlier events.

Known limitation: a correction that changes the ``meeting_id`` link of a declaration or an
interaction drops it from its old meeting's roster, but does not move it to the new one.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import msgspec

from events.domain.amendments import apply_changes
from events.domain.catalogue import (
    CATALOGUE,
    AttendanceConfirmed,
    AttendanceDeclined,
    DeclarationDrafted,
    DeclarationSigned,
    DelegationLeaderNamed,
    DelegationMemberNamed,
    EventCorrected,
    EventRetracted,
    FactionInvited,
    MeetingCancelled,
    MeetingDateRevised,
    MeetingHeld,
    MeetingPostponed,
    MeetingScheduled,
    SignatureRefused,
    SourceAdded,
)
from events.domain.valid_time import ValidTime
from events.domain.vocabulary import Place
from events.errors import UnknownEventTypeError
from events.records import START, Cursor, FeedFilter, RecordedEvent, category_of
from events.store import MAX_PAGE
from projections.collector import collector_paused

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    import asyncpg

    from events.store import EventStore

__all__ = (
    "AsOf",
    "DateChange",
    "DeclarationRef",
    "Delegate",
    "Fact",
    "FactionDeclaration",
    "FactionRoster",
    "RosterProjection",
    "RosterView",
    "Routes",
    "get_roster",
    "list_meetings",
    "roster_as_of",
    "roster_as_of_time",
    "roster_from",
)

log = logging.getLogger(__name__)

CATEGORIES: Final = ("meeting", "declaration", "interaction")

CREATE_SQL: Final = """
CREATE TABLE IF NOT EXISTS projections.{table} (
    meeting_id text PRIMARY KEY,
    draft      bytea,
    view       jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS projections.{links} (
    stream_id  text PRIMARY KEY,
    meeting_id text NOT NULL
);
CREATE INDEX IF NOT EXISTS {links}_meeting_idx ON projections.{links} (meeting_id)
"""
COLUMNS_SQL: Final = """
SELECT column_name FROM information_schema.columns
WHERE table_schema = 'projections' AND table_name = $1
"""
# A table from before drafts were kept: its rows get a draft by a fold from the log.
UPGRADE_SQL: Final = """
ALTER TABLE projections.{table} ADD COLUMN IF NOT EXISTS draft bytea;
ALTER TABLE projections.{table} DROP COLUMN IF EXISTS facts
"""
# lz4 where the server has it (Debian's does; the embedded pgserver's does not): every batch
# rewrites its meetings' drafts and views, and pglz takes twice as long.
LZ4_SQL: Final = """
SELECT 'lz4' = any(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'
"""
PLAIN_COLUMNS_SQL: Final = """
SELECT count(*) FROM pg_attribute
WHERE attrelid = $1::regclass AND attname IN ('draft', 'view') AND attcompression <> 'l'
"""
USE_LZ4_SQL: Final = """
ALTER TABLE projections.{table}
    ALTER COLUMN draft SET COMPRESSION lz4, ALTER COLUMN view SET COMPRESSION lz4
"""
DROP_SQL: Final = """
DROP TABLE IF EXISTS projections.{table};
DROP TABLE IF EXISTS projections.{links}
"""
# Joined to the ids rather than filtered by ``= any($1)``: a cached generic plan kept the seq
# scan it chose while the table was empty, and without a constant array it cannot hash it, so
# each batch compared every id with every row (48 ms a batch over 1M events, most of a roster
# rebuild's time in the database, against well under 1 ms through the primary key).
LOAD_LINKS_SQL: Final = """
SELECT l.stream_id, l.meeting_id
FROM unnest($1::text[]) AS wanted(stream_id)
JOIN projections.{links} AS l USING (stream_id)
"""
SAVE_LINKS_SQL: Final = """
INSERT INTO projections.{links} (stream_id, meeting_id)
SELECT * FROM unnest($1::text[], $2::text[])
ON CONFLICT (stream_id) DO NOTHING
"""
LOAD_DRAFTS_SQL: Final = """
SELECT t.meeting_id, t.draft
FROM unnest($1::text[]) AS wanted(meeting_id)
JOIN projections.{table} AS t USING (meeting_id)
"""
# The facts meetings had before this batch ($2, $3: its first event), from the log itself:
# the events of their own streams and of the streams linked to them (links made in this batch
# are saved before this runs). Everything below the batch is committed and was applied.
EARLIER_FACTS_SQL: Final = """
WITH streams AS (
    SELECT 'meeting-' || meeting_id AS stream_id FROM unnest($1::text[]) AS m(meeting_id)
    UNION
    SELECT l.stream_id
    FROM unnest($1::text[]) AS wanted(meeting_id)
    JOIN projections.{links} AS l USING (meeting_id)
)
SELECT e.stream_id, e.event_id, e.type, e.schema_version, e.data::text AS data, e.recorded_at,
       e.transaction_id, e.position
FROM streams JOIN events AS e USING (stream_id)
WHERE (e.transaction_id, e.position) < ($2::xid8, $3::bigint)
ORDER BY e.transaction_id, e.position
"""
# The view is JSON ``null`` (not SQL NULL) while a meeting has facts but no live scheduling,
# e.g. its scheduling was retracted, or a declaration names a meeting not recorded yet.
SAVE_SQL: Final = """
INSERT INTO projections.{table} (meeting_id, draft, view, updated_at)
SELECT meeting_id, draft, view::jsonb, now()
FROM unnest($1::text[], $2::bytea[], $3::text[]) AS input(meeting_id, draft, view)
ON CONFLICT (meeting_id) DO UPDATE
SET draft = excluded.draft, view = excluded.view, updated_at = excluded.updated_at
"""
GET_SQL: Final = "SELECT view::text FROM projections.{table} WHERE meeting_id = $1"
LIST_SQL: Final = """
SELECT view::text FROM projections.{table} WHERE view <> 'null'::jsonb ORDER BY meeting_id
"""

_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")

Status = Literal["scheduled", "postponed", "cancelled"]
Attendance = Literal["invited", "confirmed", "declined"]
Outcome = Literal["signed", "refused"]
DateChangeKind = Literal["scheduled", "revised", "postponed"]

# Roles in a held meeting's participants that name a delegation taking part (organisers,
# hosts and mediators are not delegations).
_TAKING_PART: Final = frozenset({"participant", "invitee"})


# -- the view -----------------------------------------------------------------------------------


class Delegate(msgspec.Struct, frozen=True, kw_only=True):
    """A person in a faction's delegation, as the source named them."""

    person_id: str
    name_as_reported: str | None = None
    title_as_reported: str | None = None


class FactionDeclaration(msgspec.Struct, frozen=True, kw_only=True):
    """What a faction did with one declaration of the meeting (``None``: nothing reported)."""

    declaration_id: str
    title: str
    outcome: Outcome | None = None


class FactionRoster(msgspec.Struct, frozen=True, kw_only=True):
    """One faction at the meeting.

    ``attendance`` is ``None`` for a faction never invited nor answering (one known only from
    the held meeting's participants or from a declaration); ``took_part`` says it appears
    among the participants of the held meeting.
    """

    faction_id: str
    invited: bool
    name_as_reported: str | None = None
    attendance: Attendance | None = None
    took_part: bool = False
    head: Delegate | None = None
    members: list[Delegate] = msgspec.field(default_factory=list)
    declarations: list[FactionDeclaration] = msgspec.field(default_factory=list)
    """One entry per declaration of the meeting, in the order they were drafted."""


class DateChange(msgspec.Struct, frozen=True, kw_only=True):
    """One step of the meeting's date history; ``valid_time`` is ``None`` for a postponement
    to no known date. ``corrected_at`` is set when the fact was later corrected (the entry
    then shows its corrected form)."""

    kind: DateChangeKind
    valid_time: ValidTime | None
    recorded_at: datetime
    reason: str | None = None
    corrected_at: datetime | None = None


class DeclarationRef(msgspec.Struct, frozen=True, kw_only=True):
    """A declaration drafted for the meeting."""

    declaration_id: str
    title: str


class AsOf(msgspec.Struct, frozen=True, kw_only=True):
    """The last fact folded into a view: its feed cursor and when it was recorded."""

    cursor: Cursor
    recorded_at: datetime


class RosterView(msgspec.Struct, frozen=True, kw_only=True):
    """The delegation roster of one meeting."""

    meeting_id: str
    title: str
    status: Status
    held: bool
    host_id: str | None = None
    organiser_id: str | None = None
    place: Place | None = None
    date: ValidTime | None = None
    date_history: list[DateChange] = msgspec.field(default_factory=list)
    factions: list[FactionRoster] = msgspec.field(default_factory=list)
    declarations: list[DeclarationRef] = msgspec.field(default_factory=list)
    as_of: AsOf


# -- the pure fold ------------------------------------------------------------------------------


class Fact(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded event with where and when it was recorded."""

    event_id: str
    stream_id: str
    recorded_at: datetime
    cursor: Cursor
    event: Any
    """The decoded domain event (a Struct of ``events.domain.catalogue``)."""

    @classmethod
    def of(cls, recorded: RecordedEvent) -> Fact:
        """Decode a stored event."""
        return cls(
            event_id=str(recorded.event_id),
            stream_id=recorded.stream_id,
            recorded_at=recorded.recorded_at,
            cursor=recorded.cursor,
            event=CATALOGUE.decode(recorded),
        )


class _Live(msgspec.Struct, kw_only=True):
    fact: Fact
    event: Any
    corrected_at: datetime | None = None


def _live_facts(facts: Sequence[Fact]) -> list[_Live]:
    """The facts as they stand: retracted ones left out, corrected ones in corrected form."""
    live: dict[str, _Live] = {}
    retracted: set[str] = set()
    for fact in facts:
        event = fact.event
        if isinstance(event, EventRetracted):
            retracted.add(event.target_event_id)
        elif isinstance(event, EventCorrected):
            target = live.get(event.target_event_id)
            if target is not None:
                target.event = apply_changes(target.event, event.changes)
                target.corrected_at = fact.recorded_at
        elif not isinstance(event, SourceAdded):
            live[fact.event_id] = _Live(fact=fact, event=event)
    return [item for event_id, item in live.items() if event_id not in retracted]


class _FactionDraft(msgspec.Struct, kw_only=True):
    invited: bool = False
    name_as_reported: str | None = None
    attendance: Attendance | None = None
    took_part: bool = False
    head: Delegate | None = None
    members: dict[str, Delegate] = msgspec.field(default_factory=dict)


class _Scheduling(msgspec.Struct, frozen=True, kw_only=True):
    """What the roster shows of a ``MeetingScheduled`` (a draft keeps no more of it)."""

    meeting_id: str
    title: str
    host_id: str | None
    organiser_id: str | None
    place: Place | None

    @classmethod
    def of(cls, event: MeetingScheduled) -> _Scheduling:
        return cls(
            meeting_id=event.meeting_id,
            title=event.title,
            host_id=event.host_id,
            organiser_id=event.organiser_id,
            place=event.place,
        )


class _Draft(msgspec.Struct, kw_only=True):
    """A meeting's roster folded so far; stored between batches so that new facts fold into it
    (msgpack, which keeps the pair keys of ``outcomes`` and every field's type)."""

    meeting_id: str
    scheduling: _Scheduling | None = None
    """The first live scheduling folded (``roster_from``'s: the roster exists once there is one)."""
    scheduled: _Scheduling | None = None
    status: Status = "scheduled"
    held: bool = False
    date: ValidTime | None = None
    history: list[DateChange] = msgspec.field(default_factory=list)
    factions: dict[str, _FactionDraft] = msgspec.field(default_factory=dict)
    declarations: dict[str, DeclarationRef] = msgspec.field(default_factory=dict)
    outcomes: dict[tuple[str, str], Outcome] = msgspec.field(default_factory=dict)
    retracted: list[str] = msgspec.field(default_factory=list)
    """Event ids retracted so far: a later fact with one of them cannot simply be folded in."""

    def faction(self, faction_id: str) -> _FactionDraft:
        return self.factions.setdefault(faction_id, _FactionDraft())


def _fold_meeting(draft: _Draft, item: _Live) -> None:
    event, at = item.event, item.fact.recorded_at
    if isinstance(event, MeetingScheduled):
        draft.scheduled, draft.date = _Scheduling.of(event), event.valid_time
        draft.history.append(
            DateChange(
                kind="scheduled",
                valid_time=event.valid_time,
                recorded_at=at,
                corrected_at=item.corrected_at,
            )
        )
    elif isinstance(event, (MeetingDateRevised, MeetingPostponed)):
        postponed = isinstance(event, MeetingPostponed)
        if postponed:
            draft.status = "postponed"
        elif draft.status == "postponed":
            draft.status = "scheduled"
        if event.valid_time is not None:
            draft.date = event.valid_time
        draft.history.append(
            DateChange(
                kind="postponed" if postponed else "revised",
                valid_time=event.valid_time,
                recorded_at=at,
                reason=event.reason,
                corrected_at=item.corrected_at,
            )
        )
    elif isinstance(event, MeetingCancelled):
        draft.status = "cancelled"


def _fold_delegations(draft: _Draft, event: Any) -> None:
    if isinstance(event, FactionInvited):
        faction = draft.faction(event.faction_id)
        faction.invited = True
        faction.name_as_reported = event.name_as_reported
        faction.attendance = faction.attendance or "invited"
    elif isinstance(event, (AttendanceConfirmed, AttendanceDeclined)):
        confirmed = isinstance(event, AttendanceConfirmed)
        draft.faction(event.faction_id).attendance = "confirmed" if confirmed else "declined"
    elif isinstance(event, (DelegationLeaderNamed, DelegationMemberNamed)):
        person = Delegate(
            person_id=event.person_id,
            name_as_reported=event.name_as_reported,
            title_as_reported=event.title_as_reported,
        )
        faction = draft.faction(event.faction_id)
        if isinstance(event, DelegationLeaderNamed):
            faction.head = person
        else:
            faction.members[event.person_id] = person


def _fold_linked(draft: _Draft, event: Any) -> None:
    """Declarations and interactions linked to the meeting."""
    if isinstance(event, DeclarationDrafted):
        # A corrected link takes the declaration out of this meeting's roster.
        if event.meeting_id == draft.meeting_id:
            draft.declarations[event.declaration_id] = DeclarationRef(
                declaration_id=event.declaration_id, title=event.title
            )
    elif isinstance(event, DeclarationSigned):
        draft.outcomes[event.declaration_id, event.signatory_id] = "signed"
    elif isinstance(event, SignatureRefused):
        draft.outcomes[event.declaration_id, event.refuser_id] = "refused"
    elif isinstance(event, MeetingHeld) and event.meeting_id == draft.meeting_id:
        draft.held = True
        for participant in event.participants:
            if participant.role in _TAKING_PART:
                draft.faction(participant.actor_id).took_part = True


def _fold(draft: _Draft, item: _Live) -> None:
    if isinstance(item.event, MeetingScheduled) and draft.scheduling is None:
        draft.scheduling = _Scheduling.of(item.event)
    if category_of(item.fact.stream_id) == "meeting":
        _fold_meeting(draft, item)
        _fold_delegations(draft, item.event)
    else:
        _fold_linked(draft, item.event)


def _draft_of(facts: Sequence[Fact], meeting_id: str) -> _Draft:
    """Every fact folded, amendments applied first: what ``roster_from`` computes, as a draft
    that later facts can be folded into."""
    live = _live_facts(facts)
    scheduling = next((i.event for i in live if isinstance(i.event, MeetingScheduled)), None)
    # roster_from's rule: the meeting is the one its first live scheduling names.
    draft = _Draft(meeting_id=scheduling.meeting_id if scheduling is not None else meeting_id)
    for item in live:
        _fold(draft, item)
    draft.retracted = [
        f.event.target_event_id for f in facts if isinstance(f.event, EventRetracted)
    ]
    return draft


def _view(draft: _Draft, as_of: AsOf) -> RosterView | None:
    scheduling = draft.scheduling
    if scheduling is None:
        return None
    scheduled = draft.scheduled or scheduling
    outcomes = {
        key: outcome for key, outcome in draft.outcomes.items() if key[0] in draft.declarations
    }
    # Factions known only from an outcome come after the others, as they were first seen.
    factions_seen = dict(draft.factions)
    for _, faction_id in outcomes:
        if faction_id not in factions_seen:
            factions_seen[faction_id] = _FactionDraft()
    factions = [
        FactionRoster(
            faction_id=faction_id,
            invited=faction.invited,
            name_as_reported=faction.name_as_reported,
            attendance=faction.attendance,
            took_part=faction.took_part,
            head=faction.head,
            members=list(faction.members.values()),
            declarations=[
                FactionDeclaration(
                    declaration_id=ref.declaration_id,
                    title=ref.title,
                    outcome=outcomes.get((ref.declaration_id, faction_id)),
                )
                for ref in draft.declarations.values()
            ],
        )
        for faction_id, faction in factions_seen.items()
    ]
    return RosterView(
        meeting_id=draft.meeting_id,
        title=scheduled.title,
        status=draft.status,
        held=draft.held,
        host_id=scheduled.host_id,
        organiser_id=scheduled.organiser_id,
        place=scheduled.place,
        date=draft.date,
        date_history=list(draft.history),
        factions=factions,
        declarations=list(draft.declarations.values()),
        as_of=as_of,
    )


def _as_of(fact: Fact) -> AsOf:
    return AsOf(cursor=fact.cursor, recorded_at=fact.recorded_at)


def roster_from(facts: Sequence[Fact]) -> RosterView | None:
    """The roster of the meeting whose facts these are, in feed order.

    ``facts`` are the meeting stream's events and those of the declaration and interaction
    streams linked to it (``Routes``). Retractions and corrections are applied first, then the
    remaining facts are folded; ``None`` if no live fact schedules the meeting.
    """
    if not facts:
        return None
    return _view(_draft_of(facts, ""), _as_of(facts[-1]))


def fold_further(draft: _Draft, meeting_id: str, facts: Sequence[Fact]) -> bool:
    """Fold ``facts``, later than those ``draft`` holds, into it; ``False`` (the draft then
    half-folded, to be thrown away) when that would not give ``roster_from`` of all of them:
    an amendment among them, which changes earlier facts, or a meeting that does not know
    itself by the id its facts are routed to."""
    retracted = set(draft.retracted)
    for fact in facts:
        event = fact.event
        if isinstance(event, (EventCorrected, EventRetracted)) or fact.event_id in retracted:
            return False
        if isinstance(event, SourceAdded):
            continue
        _fold(draft, _Live(fact=fact, event=event))
    return draft.meeting_id == meeting_id and (
        draft.scheduling is None or draft.scheduling.meeting_id == meeting_id
    )


# -- which meeting an event belongs to ----------------------------------------------------------


class Routes:
    """Links declaration and interaction streams to meetings; see the module docstring.

    ``links`` maps a stream id to its meeting; the projection preloads the links of a batch's
    streams and saves ``new_links``.
    """

    def __init__(self, links: dict[str, str] | None = None) -> None:
        self.links: dict[str, str] = dict(links or {})
        self.new_links: dict[str, str] = {}

    def route(self, fact: Fact) -> str | None:
        """The meeting ``fact`` belongs to (``None``: none, or it adds nothing to a roster)."""
        event = fact.event
        if isinstance(event, SourceAdded):
            return None
        stream_id = fact.stream_id
        if category_of(stream_id) == "meeting":
            return stream_id.split("-", 1)[1]
        linked = self.links.get(stream_id)
        if linked is not None:
            return linked
        meeting_id = getattr(event, "meeting_id", None)
        if isinstance(event, (DeclarationDrafted, MeetingHeld)) and meeting_id:
            self.links[stream_id] = self.new_links[stream_id] = meeting_id
            return str(meeting_id)
        return None


def _might_route(stream_id: str, data: str, routes: Routes) -> bool:
    """Cheap pre-check before decoding: most interactions belong to no meeting."""
    if category_of(stream_id) == "meeting" or stream_id in routes.links:
        return True
    return '"meeting_id"' in data


def _may_belong(recorded: RecordedEvent) -> bool:
    """``_might_route`` before the links are known: a stream can only be linked already when
    this is not its first event."""
    if recorded.stream_version > 1 or category_of(recorded.stream_id) == "meeting":
        return True
    return '"meeting_id"' in recorded.data


def _decode(recorded: RecordedEvent) -> Fact | None:
    try:
        return Fact.of(recorded)
    except UnknownEventTypeError:
        # Not a domain event (a test or tooling event in a domain category): no roster's business.
        log.warning("roster skips event %s of unknown type %r", recorded.event_id, recorded.type)
        return None


def _route_all(
    events: Iterable[RecordedEvent],
    routes: Routes,
    decoded: Mapping[int, Fact | None] | None = None,
) -> dict[str, list[Fact]]:
    """The events that belong to a meeting, decoded and grouped by meeting, in feed order.

    ``decoded`` holds facts decoded beforehand, by the event's position in ``events``."""
    grouped: dict[str, list[Fact]] = {}
    for index, recorded in enumerate(events):
        if not _might_route(recorded.stream_id, recorded.data, routes):
            continue
        fact = decoded[index] if decoded is not None and index in decoded else _decode(recorded)
        if fact is None:
            continue
        meeting_id = routes.route(fact)
        if meeting_id is not None:
            grouped.setdefault(meeting_id, []).append(fact)
    return grouped


def _route_rows(rows: Iterable[asyncpg.Record], wanted: set[str]) -> dict[str, list[Fact]]:
    """``_route_all`` for rows of ``EARLIER_FACTS_SQL``, keeping the meetings in ``wanted``.

    Routing starts afresh: a stream's link is made by the stream's own first fact that names
    a meeting, and the rows hold every earlier event of each stream they come from."""
    routes = Routes()
    grouped: dict[str, list[Fact]] = {}
    for row in rows:
        stream_id = row["stream_id"]
        if not _might_route(stream_id, row["data"], routes):
            continue
        event_id = str(row["event_id"])
        try:
            event = CATALOGUE.decode_data(
                row["type"], row["schema_version"], row["data"], event_id=event_id
            )
        except UnknownEventTypeError:
            continue  # skipped, with a warning, when it was first applied
        fact = Fact(
            event_id=event_id,
            stream_id=stream_id,
            recorded_at=row["recorded_at"],
            cursor=Cursor(row["transaction_id"], row["position"]),
            event=event,
        )
        meeting_id = routes.route(fact)
        if meeting_id in wanted:
            grouped.setdefault(meeting_id, []).append(fact)
    return grouped


# -- the SQL projection -------------------------------------------------------------------------


_DRAFT_DECODER: Final = msgspec.msgpack.Decoder(_Draft)
_DRAFT_ENCODER: Final = msgspec.msgpack.Encoder()
_VIEW_DECODER: Final = msgspec.json.Decoder(RosterView | None)
_ENCODER: Final = msgspec.json.Encoder()


def _tables(prefix: str, version: int) -> dict[str, str]:
    if not _NAME.match(prefix):
        raise ValueError(f"table prefix {prefix!r} must be a lowercase SQL identifier")
    return {"table": f"{prefix}_v{version}", "links": f"{prefix}_links_v{version}"}


def _first_versions(events: Iterable[RecordedEvent]) -> dict[str, int]:
    first: dict[str, int] = {}
    for event in events:
        first.setdefault(event.stream_id, event.stream_version)
    return first


class RosterProjection:
    """Keeps ``projections.<prefix>_v<version>`` (draft and view per meeting) and
    ``<prefix>_links_v<version>`` (declaration/interaction stream -> meeting).

    A batch's facts are folded into each meeting's stored draft, in order. When they hold an
    amendment (which changes facts folded earlier), the meeting is folded again from its facts
    in the log, so that an amendment has exactly the effect it has in ``roster_from``.

    ``name`` and ``table_prefix`` default to ``roster``; tests give each instance its own so
    that several can be built side by side over one feed.
    """

    def __init__(
        self, *, name: str = "roster", table_prefix: str = "roster", version: int = 1
    ) -> None:
        self.name = name
        self.version = version
        self.filter: FeedFilter | None = FeedFilter(categories=CATEGORIES)
        self._table = _tables(table_prefix, version)["table"]
        self._sql = {
            key: sql.format(**_tables(table_prefix, self.version))
            for key, sql in (
                ("create", CREATE_SQL),
                ("upgrade", UPGRADE_SQL),
                ("use_lz4", USE_LZ4_SQL),
                ("drop", DROP_SQL),
                ("load_links", LOAD_LINKS_SQL),
                ("save_links", SAVE_LINKS_SQL),
                ("load_drafts", LOAD_DRAFTS_SQL),
                ("earlier", EARLIER_FACTS_SQL),
                ("save", SAVE_SQL),
            )
        }

    async def setup(self, conn: asyncpg.Connection) -> None:
        """Create the tables if they do not exist, and upgrade an older layout."""
        await conn.execute(self._sql["create"])
        columns = {r["column_name"] for r in await conn.fetch(COLUMNS_SQL, self._table)}
        # Asked first: ALTER TABLE locks out readers even when it has nothing to do.
        if "facts" in columns or "draft" not in columns:
            await conn.execute(self._sql["upgrade"])
        if await conn.fetchval(LZ4_SQL) and await conn.fetchval(
            PLAIN_COLUMNS_SQL, f"projections.{self._table}"
        ):
            await conn.execute(self._sql["use_lz4"])

    async def drop(self, conn: asyncpg.Connection) -> None:
        """Drop this version's tables (after a newer version took over)."""
        await conn.execute(self._sql["drop"])

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        """Route the batch's facts to meetings, fold them into each meeting's draft (or fold
        the meeting again from the log) and write each affected meeting once."""
        await self.apply_prepared(conn, events, await self.prepare(conn, events))

    async def prepare(
        self, conn: asyncpg.Connection | asyncpg.Pool, events: Sequence[RecordedEvent]
    ) -> dict[int, Fact | None]:
        """Decode, ahead of the batch's turn, every event that may belong to a meeting (by
        position in the batch): routing needs the stored links, decoding does not."""
        del conn  # decoding reads nothing
        with collector_paused():
            return {
                index: _decode(event) for index, event in enumerate(events) if _may_belong(event)
            }

    async def apply_prepared(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], prepared: object
    ) -> None:
        """``apply``, with the facts ``prepare`` decoded."""
        if not events:
            return
        decoded = cast("dict[int, Fact | None]", prepared)
        # Only a stream that began in an earlier batch can have a stored link.
        continuing = [
            stream_id
            for stream_id, first in _first_versions(events).items()
            if first > 1 and category_of(stream_id) != "meeting"
        ]
        rows = await conn.fetch(self._sql["load_links"], continuing) if continuing else []
        routes = Routes({r["stream_id"]: r["meeting_id"] for r in rows})
        with collector_paused():
            grouped = _route_all(events, routes, decoded)
        if routes.new_links:
            await conn.execute(
                self._sql["save_links"], list(routes.new_links), list(routes.new_links.values())
            )
        if not grouped:
            return
        meetings = list(grouped)
        stored: dict[str, bytes | None] = {
            r["meeting_id"]: r["draft"]
            for r in await conn.fetch(self._sql["load_drafts"], meetings)
        }
        drafts: dict[str, _Draft] = {}
        refold: list[str] = []
        with collector_paused():
            for meeting_id in meetings:
                raw = stored.get(meeting_id, b"")
                if raw is None:  # a row from before drafts were kept
                    refold.append(meeting_id)
                    continue
                draft = _DRAFT_DECODER.decode(raw) if raw else _Draft(meeting_id=meeting_id)
                if fold_further(draft, meeting_id, grouped[meeting_id]):
                    drafts[meeting_id] = draft
                else:
                    refold.append(meeting_id)
        if refold:
            first = events[0]
            rows = await conn.fetch(
                self._sql["earlier"], refold, first.transaction_id, first.position
            )
            with collector_paused():
                earlier = _route_rows(rows, set(refold))
                for meeting_id in refold:
                    facts = earlier.get(meeting_id, []) + grouped[meeting_id]
                    drafts[meeting_id] = _draft_of(facts, meeting_id)
        drafts_out: list[bytes] = []
        views_out: list[str] = []
        with collector_paused():
            for meeting_id in meetings:
                draft = drafts[meeting_id]
                view = _view(draft, _as_of(grouped[meeting_id][-1]))
                drafts_out.append(_DRAFT_ENCODER.encode(draft))
                views_out.append(_ENCODER.encode(view).decode())
        await conn.execute(self._sql["save"], meetings, drafts_out, views_out)


# -- queries ------------------------------------------------------------------------------------


async def get_roster(
    conn: asyncpg.Connection | asyncpg.Pool,
    meeting_id: str,
    *,
    version: int = 1,
    table_prefix: str = "roster",
) -> RosterView | None:
    """The projected roster of one meeting (``None``: unknown, or not scheduled)."""
    sql = GET_SQL.format(**_tables(table_prefix, version))
    text = await conn.fetchval(sql, meeting_id)
    return None if text is None else _VIEW_DECODER.decode(text)


async def list_meetings(
    conn: asyncpg.Connection | asyncpg.Pool, *, version: int = 1, table_prefix: str = "roster"
) -> list[RosterView]:
    """Every projected meeting's roster, by meeting id."""
    sql = LIST_SQL.format(**_tables(table_prefix, version))
    views = [_VIEW_DECODER.decode(r["view"]) for r in await conn.fetch(sql)]
    return [v for v in views if v is not None]


async def _fold_log(
    store: EventStore,
    meeting_id: str,
    *,
    cursor: Cursor | None = None,
    recorded_at: datetime | None = None,
) -> RosterView | None:
    routes = Routes()
    facts: list[Fact] = []
    after = START
    feed = FeedFilter(categories=CATEGORIES)
    while True:
        page = await store.read_all(after, limit=MAX_PAGE, filter=feed)
        events = page.events
        if cursor is not None:
            events = [e for e in events if e.cursor <= cursor]
        if recorded_at is not None:
            events = [e for e in events if e.recorded_at <= recorded_at]
        # Every event is routed, not only this meeting's: links are made by other streams.
        facts.extend(_route_all(events, routes).get(meeting_id, ()))
        after = page.next_cursor
        if not page.full or (cursor is not None and after >= cursor):
            return roster_from(facts)


async def roster_as_of(store: EventStore, meeting_id: str, cursor: Cursor) -> RosterView | None:
    """The roster as the log told it once every event up to ``cursor`` (inclusive) was in:
    the same fold as the projection, over the log read from the start."""
    return await _fold_log(store, meeting_id, cursor=cursor)


async def roster_as_of_time(
    store: EventStore, meeting_id: str, recorded_at: datetime
) -> RosterView | None:
    """The roster from the events recorded at or before ``recorded_at``."""
    return await _fold_log(store, meeting_id, recorded_at=recorded_at)
