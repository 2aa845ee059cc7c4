"""The meeting aggregate (stream ``meeting-<id>``): a planned meeting's lifecycle, invitations,
attendance and delegations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, assert_never

import msgspec

from events.domain.amendments import (
    Record,
    Stored,
    decide_amendment,
    evolve_record,
    is_amendment,
    refold,
)
from events.domain.catalogue import (
    AttendanceConfirmed,
    AttendanceDeclined,
    DelegationLeaderNamed,
    DelegationMemberNamed,
    FactionInvited,
    MeetingCancelled,
    MeetingDateRevised,
    MeetingPostponed,
    MeetingPurposeStated,
    MeetingScheduled,
)
from events.domain.coding import code_for
from events.domain.commands import (
    AddSource,
    CancelMeeting,
    ConfirmAttendance,
    CorrectEvent,
    DeclineAttendance,
    InviteFaction,
    NameDelegationLeader,
    NameDelegationMember,
    PostponeMeeting,
    RetractEvent,
    ReviseMeetingDate,
    ScheduleMeeting,
    StateMeetingPurpose,
)
from events.domain.directory import ORGANISATION_KINDS
from events.domain.errors import RuleViolationError, UnknownTargetError
from events.domain.valid_time import valid_time

if TYPE_CHECKING:
    from events.domain.catalogue import DomainEvent
    from events.domain.directory import Directory

__all__ = ("MeetingCommand", "MeetingState", "decide", "evolve")

MeetingCommand = (
    ScheduleMeeting
    | StateMeetingPurpose
    | ReviseMeetingDate
    | PostponeMeeting
    | CancelMeeting
    | InviteFaction
    | ConfirmAttendance
    | DeclineAttendance
    | NameDelegationLeader
    | NameDelegationMember
    | AddSource
    | CorrectEvent
    | RetractEvent
)

Status = Literal["scheduled", "postponed", "cancelled"]
_PERSON = frozenset({"person"})


class MeetingState(msgspec.Struct, frozen=True, kw_only=True):
    """One meeting as its stream tells it."""

    meeting_id: str | None = None
    status: Status | None = None
    purpose: str | None = None
    invited: frozenset[str] = frozenset()
    confirmed: frozenset[str] = frozenset()
    declined: frozenset[str] = frozenset()
    leaders: dict[str, str] = msgspec.field(default_factory=dict)
    members: frozenset[tuple[str, str]] = frozenset()
    record: Record = Record()


def evolve(state: MeetingState, stored: Stored) -> MeetingState:
    """Fold one stored event into the state."""
    event = stored.event
    record = evolve_record(state.record, stored)
    if is_amendment(event):
        return refold(MeetingState(), evolve, record)
    replace = msgspec.structs.replace
    if isinstance(event, MeetingScheduled):
        # A purpose stated before a retracted scheduling still stands unless this one gives one.
        purpose = event.purpose if event.purpose is not None else state.purpose
        return MeetingState(
            meeting_id=event.meeting_id, status="scheduled", purpose=purpose, record=record
        )
    if isinstance(event, MeetingPurposeStated):
        return replace(state, purpose=event.purpose, record=record)
    if isinstance(event, MeetingPostponed):
        return replace(state, status="postponed", record=record)
    if isinstance(event, MeetingDateRevised):
        status: Status = "scheduled" if state.status == "postponed" else state.status or "scheduled"
        return replace(state, status=status, record=record)
    if isinstance(event, MeetingCancelled):
        return replace(state, status="cancelled", record=record)
    if isinstance(event, FactionInvited):
        return replace(state, invited=state.invited | {event.faction_id}, record=record)
    if isinstance(event, AttendanceConfirmed):
        return replace(
            state,
            confirmed=state.confirmed | {event.faction_id},
            declined=state.declined - {event.faction_id},
            record=record,
        )
    if isinstance(event, AttendanceDeclined):
        return replace(
            state,
            declined=state.declined | {event.faction_id},
            confirmed=state.confirmed - {event.faction_id},
            record=record,
        )
    if isinstance(event, DelegationLeaderNamed):
        return replace(
            state, leaders={**state.leaders, event.faction_id: event.person_id}, record=record
        )
    if isinstance(event, DelegationMemberNamed):
        return replace(
            state, members=state.members | {(event.faction_id, event.person_id)}, record=record
        )
    return replace(state, record=record)


def _faction(state: MeetingState, ref: str, directory: Directory, *, invited: bool) -> str:
    faction = directory.resolve(ref, field="faction", kinds=ORGANISATION_KINDS)
    if invited and faction not in state.invited:
        raise RuleViolationError(
            f"{faction!r} was not invited to meeting {state.meeting_id!r}", field="faction"
        )
    return faction


def _known(state: MeetingState, meeting_id: str) -> str:
    if state.meeting_id is None:
        raise UnknownTargetError(f"meeting {meeting_id!r} was never scheduled", field="meeting_id")
    return state.meeting_id


def _open(state: MeetingState, action: str, meeting_id: str) -> str:
    meeting = _known(state, meeting_id)
    if state.status == "cancelled":
        raise RuleViolationError(
            f"cannot {action}: meeting {meeting_id!r} was cancelled", field="meeting_id"
        )
    return meeting


def decide(state: MeetingState, command: MeetingCommand, directory: Directory) -> list[DomainEvent]:
    """The rules for a meeting: one function per command."""
    match command:
        case ScheduleMeeting():
            return _schedule(state, command, directory)
        case AddSource() | CorrectEvent() | RetractEvent():
            if not state.record.facts:
                raise UnknownTargetError("the meeting was never scheduled", field="stream")
            return decide_amendment(state.record, command, directory)
        case StateMeetingPurpose():
            return _state_purpose(state, command)
        case ReviseMeetingDate():
            return _revise_date(state, command)
        case PostponeMeeting():
            return _postpone(state, command)
        case CancelMeeting():
            return _cancel(state, command)
        case InviteFaction():
            return _invite(state, command, directory)
        case ConfirmAttendance():
            return _confirm(state, command, directory)
        case DeclineAttendance():
            return _decline(state, command, directory)
        case NameDelegationLeader():
            return _name_leader(state, command, directory)
        case NameDelegationMember():
            return _name_member(state, command, directory)
        case _:
            assert_never(command)


def _schedule(
    state: MeetingState, command: ScheduleMeeting, directory: Directory
) -> list[DomainEvent]:
    if state.meeting_id is not None:
        raise RuleViolationError(
            f"meeting {command.meeting_id!r} is already scheduled; revise its date instead",
            field="meeting_id",
        )
    host = directory.resolve(command.host, field="host") if command.host else None
    organiser = (
        directory.resolve(command.organiser, field="organiser") if command.organiser else None
    )
    return [
        MeetingScheduled(
            meeting_id=command.meeting_id,
            title=command.title,
            host_id=host,
            organiser_id=organiser,
            place=command.place,
            valid_time=valid_time(command.valid_time, command.valid_time_raw),
            modality=command.modality,
            attributed_to=command.attributed_to,
            coding=code_for("meeting_scheduled"),
            sources=command.sources,
            purpose=command.purpose,
        )
    ]


def _state_purpose(state: MeetingState, command: StateMeetingPurpose) -> list[DomainEvent]:
    # Whatever the status: what a cancelled meeting was for is still worth recording.
    meeting = _known(state, command.meeting_id)
    if command.purpose == state.purpose:
        return []  # already stated so
    return [
        MeetingPurposeStated(meeting_id=meeting, purpose=command.purpose, sources=command.sources)
    ]


def _revise_date(state: MeetingState, command: ReviseMeetingDate) -> list[DomainEvent]:
    meeting = _open(state, "revise its date", command.meeting_id)
    return [
        MeetingDateRevised(
            meeting_id=meeting,
            valid_time=valid_time(command.valid_time, command.valid_time_raw),
            reason=command.reason,
            sources=command.sources,
        )
    ]


def _postpone(state: MeetingState, command: PostponeMeeting) -> list[DomainEvent]:
    meeting = _open(state, "postpone it", command.meeting_id)
    when = valid_time(command.valid_time, command.valid_time_raw) if command.valid_time else None
    return [
        MeetingPostponed(
            meeting_id=meeting, valid_time=when, reason=command.reason, sources=command.sources
        )
    ]


def _cancel(state: MeetingState, command: CancelMeeting) -> list[DomainEvent]:
    meeting = _open(state, "cancel it again", command.meeting_id)
    return [MeetingCancelled(meeting_id=meeting, reason=command.reason, sources=command.sources)]


def _invite(state: MeetingState, command: InviteFaction, directory: Directory) -> list[DomainEvent]:
    meeting = _open(state, "invite to it", command.meeting_id)
    faction = _faction(state, command.faction, directory, invited=False)
    if faction in state.invited:
        raise RuleViolationError(f"{faction!r} is already invited", field="faction")
    inviter = directory.resolve(command.inviter, field="inviter") if command.inviter else None
    return [
        FactionInvited(
            meeting_id=meeting,
            faction_id=faction,
            name_as_reported=command.name_as_reported,
            inviter_id=inviter,
            coding=code_for("faction_invited"),
            sources=command.sources,
        )
    ]


def _confirm(
    state: MeetingState, command: ConfirmAttendance, directory: Directory
) -> list[DomainEvent]:
    meeting, faction = _invited(state, command, directory, "confirm attendance")
    if faction in state.confirmed:
        return []
    coding = code_for("attendance_confirmed")
    return [AttendanceConfirmed(meeting_id=meeting, faction_id=faction, coding=coding,
                                sources=command.sources)]  # fmt: skip


def _decline(
    state: MeetingState, command: DeclineAttendance, directory: Directory
) -> list[DomainEvent]:
    meeting, faction = _invited(state, command, directory, "decline attendance")
    if faction in state.declined:
        return []
    coding = code_for("attendance_declined")
    return [AttendanceDeclined(meeting_id=meeting, faction_id=faction, reason=command.reason,
                               coding=coding, sources=command.sources)]  # fmt: skip


def _invited(
    state: MeetingState,
    command: ConfirmAttendance | DeclineAttendance | NameDelegationLeader | NameDelegationMember,
    directory: Directory,
    action: str,
) -> tuple[str, str]:
    """The open meeting and the invited faction a command names."""
    meeting = _open(state, action, command.meeting_id)
    return meeting, _faction(state, command.faction, directory, invited=True)


def _delegate(
    state: MeetingState, command: NameDelegationLeader | NameDelegationMember, directory: Directory
) -> tuple[str, str, str]:
    """The meeting, faction and person a delegation command names, checked."""
    meeting, faction = _invited(state, command, directory, "name its delegations")
    person = directory.resolve(command.person, field="person", organisation=faction, kinds=_PERSON)
    return meeting, faction, person


def _name_leader(
    state: MeetingState, command: NameDelegationLeader, directory: Directory
) -> list[DomainEvent]:
    meeting, faction, person = _delegate(state, command, directory)
    if state.leaders.get(faction) == person:
        return []  # already named so
    return [_named(DelegationLeaderNamed, command, meeting, faction, person, directory=directory)]


def _name_member(
    state: MeetingState, command: NameDelegationMember, directory: Directory
) -> list[DomainEvent]:
    meeting, faction, person = _delegate(state, command, directory)
    if (faction, person) in state.members:
        return []  # already named so
    return [_named(DelegationMemberNamed, command, meeting, faction, person, directory=directory)]


def _named(
    event_type: type[DelegationLeaderNamed | DelegationMemberNamed],
    command: NameDelegationLeader | NameDelegationMember,
    meeting: str,
    faction: str,
    person: str,
    *,
    directory: Directory,
) -> DomainEvent:
    # Named by a spelling, the delegate keeps it as the source's (as participants do).
    return event_type(
        meeting_id=meeting,
        faction_id=faction,
        person_id=person,
        name_as_reported=command.name_as_reported or directory.as_reported(command.person),
        title_as_reported=command.title_as_reported,
        sources=command.sources,
    )
