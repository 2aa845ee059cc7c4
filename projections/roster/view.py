"""What a roster shows: one meeting's delegations, dates and declarations (the API's entry)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from events.domain.valid_time import ValidTime
from events.domain.vocabulary import Place, Source
from events.records import CursorText

__all__ = (
    "AsOf",
    "Attendance",
    "AttendanceChange",
    "DateChange",
    "DateChangeKind",
    "DeclarationRef",
    "Delegate",
    "FactionDeclaration",
    "FactionRoster",
    "Outcome",
    "RosterView",
    "Status",
)

Status = Literal["scheduled", "postponed", "cancelled", "held"]
Attendance = Literal["invited", "confirmed", "declined"]
Outcome = Literal["signed", "refused"]
DateChangeKind = Literal["scheduled", "revised", "postponed"]


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


class AttendanceChange(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a faction's attendance: invited, confirmed or declined, as one fact of the
    log said it (``event_id``), when the log learned it (``recorded_at``), and on what sources
    (the fact's own, then those added later to corroborate it; a source's publication time is
    given in UTC). ``reason`` is a declining faction's; ``corrected_at`` is set when the fact
    was later corrected (the entry then shows its corrected form)."""

    attendance: Attendance
    event_id: str
    recorded_at: datetime
    reason: str | None = None
    sources: list[Source]
    corrected_at: datetime | None = None


class FactionRoster(msgspec.Struct, frozen=True, kw_only=True):
    """One faction at the meeting.

    ``attendance`` is the latest state of ``attendance_history`` (an invitation after an
    answer leaves the answer standing); ``None`` for a faction never invited nor answering
    (one known only from the held meeting's participants or from a declaration). ``took_part``
    says it appears among the participants of the held meeting.
    """

    faction_id: str
    invited: bool
    name_as_reported: str | None = None
    attendance: Attendance | None = None
    attendance_history: list[AttendanceChange]
    """Every invitation and answer of the faction, in the order the log recorded them."""
    took_part: bool = False
    head: Delegate | None = None
    members: list[Delegate]
    declarations: list[FactionDeclaration]
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

    cursor: CursorText
    """The fact's feed cursor, opaque (``Cursor.encode``) as everywhere in the API."""
    recorded_at: datetime


class RosterView(msgspec.Struct, frozen=True, kw_only=True):
    """The delegation roster of one meeting.

    ``status`` is ``held`` once an interaction records the meeting as having taken place
    (``held`` is then true too), whatever was said of its date before; otherwise ``cancelled``,
    ``postponed`` (until a revised date) or ``scheduled``.
    """

    meeting_id: str
    title: str
    purpose: str | None = None
    """What the meeting is for, as last stated (at scheduling or since)."""
    status: Status
    held: bool
    host_id: str | None = None
    organiser_id: str | None = None
    place: Place | None = None
    date: ValidTime | None = None
    date_history: list[DateChange]
    factions: list[FactionRoster]
    declarations: list[DeclarationRef]
    as_of: AsOf
