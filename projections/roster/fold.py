"""The pure fold: a meeting's facts, amendments applied, folded into its roster.

``roster_from`` is the definition: the live facts (``_live_facts``: retracted ones left out,
corrected ones in corrected form) folded in feed order. The projection keeps the fold so far as
a ``Draft`` so that later facts fold into it (``fold_further``); ``draft_of`` folds from the
facts themselves when that is not possible (an amendment changes facts folded earlier).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

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
    MeetingPurposeStated,
    MeetingScheduled,
    SignatureRefused,
    SourceAdded,
)
from events.domain.valid_time import ValidTime
from events.domain.vocabulary import Place, Source
from events.records import Cursor, RecordedEvent, category_of
from projections.roster.view import (
    AsOf,
    Attendance,
    AttendanceChange,
    DateChange,
    DeclarationRef,
    Delegate,
    FactionDeclaration,
    FactionRoster,
    Outcome,
    RosterView,
    Status,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = (
    "Draft",
    "Fact",
    "as_of_fact",
    "draft_of",
    "fold_each",
    "fold_further",
    "refold_each",
    "roster_from",
    "view_of",
)


T = TypeVar("T")

# Roles in a held meeting's participants that name a delegation taking part (organisers,
# hosts and mediators are not delegations).
_TAKING_PART: Final = frozenset({"participant", "invitee"})


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
    added: list[Source] = msgspec.field(default_factory=list)
    """Sources added later to corroborate the fact, in feed order."""


def _live_facts(facts: Sequence[Fact]) -> list[_Live]:
    """The facts as they stand: retracted ones left out, corrected ones in corrected form,
    each with the sources added to it."""
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
        elif isinstance(event, SourceAdded):
            target = live.get(event.target_event_id)
            if target is not None:
                target.added.append(event.source)
        else:
            live[fact.event_id] = _Live(fact=fact, event=event)
    return [item for event_id, item in live.items() if event_id not in retracted]


def _in_utc(sources: Sequence[Source]) -> list[Source]:
    """``sources`` with their publication times in UTC: a draft keeps a time as an instant
    (msgpack), and the view must read the same whether folded from a draft or from facts."""
    return [
        msgspec.structs.replace(s, published_at=s.published_at.astimezone(UTC))
        if s.published_at is not None and s.published_at.tzinfo is not None
        else s
        for s in sources
    ]


class _FactionDraft(msgspec.Struct, kw_only=True):
    invited: bool = False
    name_as_reported: str | None = None
    attendance: Attendance | None = None
    history: list[AttendanceChange] = msgspec.field(default_factory=list)
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


class Draft(msgspec.Struct, kw_only=True):
    """A meeting's roster folded so far; stored between batches so that new facts fold into it
    (msgpack, which keeps the pair keys of ``outcomes`` and every field's type)."""

    meeting_id: str
    scheduling: _Scheduling | None = None
    """The first live scheduling folded (``roster_from``'s: the roster exists once there is one)."""
    scheduled: _Scheduling | None = None
    status: Status = "scheduled"
    held: bool = False
    purpose: str | None = None
    date: ValidTime | None = None
    history: list[DateChange] = msgspec.field(default_factory=list)
    factions: dict[str, _FactionDraft] = msgspec.field(default_factory=dict)
    declarations: dict[str, DeclarationRef] = msgspec.field(default_factory=dict)
    outcomes: dict[tuple[str, str], Outcome] = msgspec.field(default_factory=dict)
    retracted: list[str] = msgspec.field(default_factory=list)
    """Event ids retracted so far: a later fact with one of them cannot simply be folded in."""

    def faction(self, faction_id: str) -> _FactionDraft:
        return self.factions.setdefault(faction_id, _FactionDraft())


def _fold_meeting(draft: Draft, item: _Live) -> None:
    event, at = item.event, item.fact.recorded_at
    if isinstance(event, MeetingScheduled):
        draft.scheduled, draft.date = _Scheduling.of(event), event.valid_time
        if event.purpose is not None:
            draft.purpose = event.purpose
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
    elif isinstance(event, MeetingPurposeStated):
        draft.purpose = event.purpose


def _attendance_change(item: _Live, attendance: Attendance) -> AttendanceChange:
    event = item.event
    return AttendanceChange(
        attendance=attendance,
        event_id=item.fact.event_id,
        recorded_at=item.fact.recorded_at,
        reason=event.reason if isinstance(event, AttendanceDeclined) else None,
        sources=_in_utc([*event.sources, *item.added]),
        corrected_at=item.corrected_at,
    )


def _fold_delegations(draft: Draft, item: _Live) -> None:
    event = item.event
    if isinstance(event, FactionInvited):
        faction = draft.faction(event.faction_id)
        faction.invited = True
        faction.name_as_reported = event.name_as_reported
        faction.attendance = faction.attendance or "invited"
        faction.history.append(_attendance_change(item, "invited"))
    elif isinstance(event, (AttendanceConfirmed, AttendanceDeclined)):
        answer: Attendance = "confirmed" if isinstance(event, AttendanceConfirmed) else "declined"
        faction = draft.faction(event.faction_id)
        faction.attendance = answer
        faction.history.append(_attendance_change(item, answer))
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


def _fold_linked(draft: Draft, event: Any) -> None:
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


def _fold(draft: Draft, item: _Live) -> None:
    if isinstance(item.event, MeetingScheduled) and draft.scheduling is None:
        draft.scheduling = _Scheduling.of(item.event)
    if category_of(item.fact.stream_id) == "meeting":
        _fold_meeting(draft, item)
        _fold_delegations(draft, item)
    else:
        _fold_linked(draft, item.event)


def _corroborate(draft: Draft, event: SourceAdded) -> None:
    """A source added to a fact of a faction's attendance history joins that entry's."""
    for faction in draft.factions.values():
        for n, change in enumerate(faction.history):
            if change.event_id == event.target_event_id:
                sources = [*change.sources, *_in_utc([event.source])]
                faction.history[n] = msgspec.structs.replace(change, sources=sources)
                return


def draft_of(facts: Sequence[Fact], meeting_id: str) -> Draft:
    """Every fact folded, amendments applied first: what ``roster_from`` computes, as a draft
    that later facts can be folded into."""
    live = _live_facts(facts)
    scheduling = next((i.event for i in live if isinstance(i.event, MeetingScheduled)), None)
    # roster_from's rule: the meeting is the one its first live scheduling names.
    draft = Draft(meeting_id=scheduling.meeting_id if scheduling is not None else meeting_id)
    for item in live:
        _fold(draft, item)
    draft.retracted = [
        f.event.target_event_id for f in facts if isinstance(f.event, EventRetracted)
    ]
    return draft


def view_of(draft: Draft, as_of: AsOf) -> RosterView | None:
    """The roster ``draft`` shows, stamped with its last fact (``None``: not scheduled)."""
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
            attendance_history=list(faction.history),
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
        purpose=draft.purpose,
        status="held" if draft.held else draft.status,
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


def as_of_fact(fact: Fact) -> AsOf:
    """The stamp of a view whose last fact is ``fact``."""
    return AsOf(cursor=fact.cursor.encode(), recorded_at=fact.recorded_at)


def roster_from(facts: Sequence[Fact]) -> RosterView | None:
    """The roster of the meeting whose facts these are, in feed order.

    ``facts`` are the meeting stream's events and those of the declaration and interaction
    streams linked to it (``Routes``). Retractions and corrections are applied first, then the
    remaining facts are folded; ``None`` if no live fact schedules the meeting.
    """
    if not facts:
        return None
    return view_of(draft_of(facts, ""), as_of_fact(facts[-1]))


def fold_further(draft: Draft, meeting_id: str, facts: Sequence[Fact]) -> bool:
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
            _corroborate(draft, event)
            continue
        _fold(draft, _Live(fact=fact, event=event))
    return draft.meeting_id == meeting_id and (
        draft.scheduling is None or draft.scheduling.meeting_id == meeting_id
    )


def fold_each(
    draft: Draft, meeting_id: str, facts: Sequence[Fact], emit: Callable[[RosterView | None], T]
) -> list[T] | None:
    """The view after each of ``facts`` in turn, folded into ``draft`` (which ends holding them
    all): the meeting's versions, one per fact, each passed through ``emit`` as soon as it is
    made (the writer encodes it, so that a batch holds its bytes, not its Structs). ``None``
    (the draft then to be thrown away) when one of them cannot simply be folded in
    (``fold_further``): see ``refold_each``."""
    out: list[T] = []
    for fact in facts:
        if not fold_further(draft, meeting_id, (fact,)):
            return None
        out.append(emit(view_of(draft, as_of_fact(fact))))
    return out


def refold_each(
    earlier: Sequence[Fact],
    meeting_id: str,
    facts: Sequence[Fact],
    emit: Callable[[RosterView | None], T],
) -> tuple[list[T], Draft]:
    """``fold_each`` for a meeting whose facts before ``facts`` are ``earlier``, whatever
    ``facts`` hold: the view after ``facts[n]`` is ``roster_from(earlier + facts[:n + 1])``. A
    fact that cannot be folded into the draft so far (an amendment) is met by folding the
    meeting again from all its facts up to it, so each version depends on the facts alone,
    never on where a batch began. Returns the emitted views and the draft after the last
    fact."""
    draft = draft_of(earlier, meeting_id)
    out: list[T] = []
    for n, fact in enumerate(facts):
        if not fold_further(draft, meeting_id, (fact,)):
            draft = draft_of([*earlier, *facts[: n + 1]], meeting_id)
        out.append(emit(view_of(draft, as_of_fact(fact))))
    return out, draft
