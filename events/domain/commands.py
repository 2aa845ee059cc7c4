"""What users ask Diplofeed to record. Commands refer to actors by id or by any name a source
used; dates are EDTF strings with the source's own phrase beside them. Inbound, so unknown
fields are refused (a typo must not silently drop data) and every value is bounded
(``events.domain.bounds``): what a command carries is stored for ever."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, TypeAlias

import msgspec

from events.domain.bounds import (
    INBOUND,
    MAX_ALIASES,
    MAX_CONTEXTS,
    MAX_PARTICIPANTS,
    MAX_TOPICS,
    Changes,
    Code,
    Count,
    Name,
    Prose,
    Sources,
    anchored,
    line,
)
from events.domain.coding import CodingOverride
from events.domain.kinds import INTERACTION_KINDS
from events.domain.strict import StrictDecoder
from events.domain.vocabulary import ActorKind, Alias, Modality, ParticipantRole, Place, Source

__all__ = (
    "COMMAND_DECODER",
    "AddAlias",
    "AddSource",
    "AssignRole",
    "CancelMeeting",
    "Command",
    "ConfirmAttendance",
    "CorrectEvent",
    "DeclineAttendance",
    "DraftDeclaration",
    "InteractionKind",
    "InviteFaction",
    "MergeActors",
    "NameDelegationLeader",
    "NameDelegationMember",
    "ParticipantRef",
    "PostponeMeeting",
    "RecordInteraction",
    "RefuseSignature",
    "RegisterActor",
    "RetractEvent",
    "ReviseMeetingDate",
    "ScheduleMeeting",
    "SignDeclaration",
    "StateMeetingPurpose",
)

Id = Annotated[str, msgspec.Meta(max_length=100, pattern=anchored("[a-z0-9][a-z0-9_.]{0,99}"))]
"""An aggregate id: lowercase letters, digits, dot and underscore (no dash: the stream id is
``<category>-<id>``)."""
Ref = Annotated[str, line(300, 1)]
"""An actor, by id or by any of its names."""
Edtf = Annotated[str, line(200, 1)]
"""An EDTF date, interval or set."""
EventId = Annotated[str, line(100, 1)]
"""An event id, as the log gave it (a UUID)."""

if TYPE_CHECKING:
    InteractionKind: TypeAlias = str
else:
    InteractionKind = INTERACTION_KINDS.names_literal()
"""The name of a registered interaction kind (``events.domain.kinds``)."""


class _Command(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    command_id: Annotated[str, line(200, 1)] | None = None
    """Makes the command idempotent: the same id is recorded once, however often it is sent."""
    sources: Sources = ()


# -- actors -------------------------------------------------------------------------------------


class RegisterActor(_Command, frozen=True, kw_only=True, tag="register_actor"):
    actor_id: Id
    kind: ActorKind
    canonical_name: Name
    aliases: Annotated[tuple[Alias, ...], msgspec.Meta(max_length=MAX_ALIASES)] = ()
    cameo_code: (
        Annotated[str, msgspec.Meta(max_length=30, pattern=anchored("[A-Z]{3}([A-Z]{3})*"))] | None
    ) = None
    wikidata_qid: (
        Annotated[str, msgspec.Meta(max_length=19, pattern=anchored("Q[0-9]{1,18}"))] | None
    ) = None
    country: Annotated[str, msgspec.Meta(max_length=3, pattern=anchored("[A-Z]{3}"))] | None = None


class AddAlias(_Command, frozen=True, kw_only=True, tag="add_alias"):
    actor: Ref
    alias: Alias


class AssignRole(_Command, frozen=True, kw_only=True, tag="assign_role"):
    actor: Ref
    organisation: Ref
    title_as_reported: Name | None = None
    role_code: Code | None = None
    valid_time: Edtf
    valid_time_raw: Name | None = None


class MergeActors(_Command, frozen=True, kw_only=True, tag="merge_actors"):
    actor: Ref
    merged_actor: Ref
    reason: Prose | None = None


# -- interactions -------------------------------------------------------------------------------


class ParticipantRef(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A participant named by id or name; ``organisation`` helps resolve a shared name."""

    actor: Ref
    role: ParticipantRole
    name_as_reported: Name | None = None
    title_as_reported: Name | None = None
    organisation: Ref | None = None


class RecordInteraction(_Command, frozen=True, kw_only=True, tag="record_interaction"):
    """Any interaction: a call, meeting, visit, address, aggregate contacts, a statement or
    pattern, an apology. Kind-specific fields are checked by the rules."""

    kind: InteractionKind
    interaction_id: Id
    participants: Annotated[tuple[ParticipantRef, ...], msgspec.Meta(max_length=MAX_PARTICIPANTS)]
    valid_time: Edtf
    valid_time_raw: Name | None = None
    place: Place | None = None
    topics: Annotated[tuple[Name, ...], msgspec.Meta(max_length=MAX_TOPICS)] = ()
    modality: Modality = "reported"
    attributed_to: Name | None = None
    coding: CodingOverride | None = None
    contexts: Annotated[tuple[Code, ...], msgspec.Meta(max_length=MAX_CONTEXTS)] = ()
    meeting_id: Id | None = None
    format: Literal["bilateral", "multilateral", "third_party"] | None = None
    quote: Prose | None = None
    cardinality_text: Name | None = None
    min_count: Count | None = None
    claim: Prose | None = None
    negated: bool = False
    subject: Name | None = None


# Every field a kind carries is given on the command; a kind whose field it lacks is refused
# here, at import, rather than when the first such command arrives.
_MISSING = set(INTERACTION_KINDS.fields()) - set(RecordInteraction.__struct_fields__)
if _MISSING:
    raise TypeError(f"RecordInteraction has no field for {sorted(_MISSING)} (events.domain.kinds)")


# -- meetings -----------------------------------------------------------------------------------


class ScheduleMeeting(_Command, frozen=True, kw_only=True, tag="schedule_meeting"):
    meeting_id: Id
    title: Name
    host: Ref | None = None
    organiser: Ref | None = None
    place: Place | None = None
    valid_time: Edtf
    valid_time_raw: Name | None = None
    modality: Modality = "announced"
    attributed_to: Name | None = None
    purpose: Prose | None = None
    """What the meeting is for, its agenda, as the source gives it."""


class StateMeetingPurpose(_Command, frozen=True, kw_only=True, tag="state_meeting_purpose"):
    """A source gives what the meeting is for; the roster shows the latest purpose stated."""

    meeting_id: Id
    purpose: Prose


class ReviseMeetingDate(_Command, frozen=True, kw_only=True, tag="revise_meeting_date"):
    meeting_id: Id
    valid_time: Edtf
    valid_time_raw: Name | None = None
    reason: Prose | None = None


class PostponeMeeting(_Command, frozen=True, kw_only=True, tag="postpone_meeting"):
    meeting_id: Id
    valid_time: Edtf | None = None
    valid_time_raw: Name | None = None
    reason: Prose | None = None


class CancelMeeting(_Command, frozen=True, kw_only=True, tag="cancel_meeting"):
    meeting_id: Id
    reason: Prose | None = None


class InviteFaction(_Command, frozen=True, kw_only=True, tag="invite_faction"):
    meeting_id: Id
    faction: Ref
    name_as_reported: Name | None = None
    inviter: Ref | None = None


class ConfirmAttendance(_Command, frozen=True, kw_only=True, tag="confirm_attendance"):
    meeting_id: Id
    faction: Ref


class DeclineAttendance(_Command, frozen=True, kw_only=True, tag="decline_attendance"):
    meeting_id: Id
    faction: Ref
    reason: Prose | None = None


class NameDelegationLeader(_Command, frozen=True, kw_only=True, tag="name_delegation_leader"):
    meeting_id: Id
    faction: Ref
    person: Ref
    name_as_reported: Name | None = None
    title_as_reported: Name | None = None


class NameDelegationMember(_Command, frozen=True, kw_only=True, tag="name_delegation_member"):
    meeting_id: Id
    faction: Ref
    person: Ref
    name_as_reported: Name | None = None
    title_as_reported: Name | None = None


# -- declarations -------------------------------------------------------------------------------


class DraftDeclaration(_Command, frozen=True, kw_only=True, tag="draft_declaration"):
    declaration_id: Id
    title: Name
    meeting_id: Id | None = None
    valid_time: Edtf | None = None
    valid_time_raw: Name | None = None


class SignDeclaration(_Command, frozen=True, kw_only=True, tag="sign_declaration"):
    declaration_id: Id
    signatory: Ref
    name_as_reported: Name | None = None
    valid_time: Edtf | None = None
    valid_time_raw: Name | None = None


class RefuseSignature(_Command, frozen=True, kw_only=True, tag="refuse_signature"):
    declaration_id: Id
    refuser: Ref
    name_as_reported: Name | None = None
    reason: Prose | None = None
    valid_time: Edtf | None = None
    valid_time_raw: Name | None = None


# -- amendments ---------------------------------------------------------------------------------

StreamRef = Annotated[
    str,
    msgspec.Meta(
        max_length=112,
        pattern=anchored("(actor|interaction|meeting|declaration)-[a-z0-9][a-z0-9_.]{0,99}"),
    ),
]


class AddSource(_Command, frozen=True, kw_only=True, tag="add_source"):
    """Corroborate an event already recorded with another source."""

    stream: StreamRef
    target_event_id: EventId
    source: Source


class CorrectEvent(_Command, frozen=True, kw_only=True, tag="correct_event"):
    """Replace some fields of an earlier event (``valid_time`` given as EDTF)."""

    stream: StreamRef
    target_event_id: EventId
    changes: Changes
    reason: Prose


class RetractEvent(_Command, frozen=True, kw_only=True, tag="retract_event"):
    """Withdraw an earlier event: every view drops it; the log keeps it."""

    stream: StreamRef
    target_event_id: EventId
    reason: Prose


Command = (
    RegisterActor
    | AddAlias
    | AssignRole
    | MergeActors
    | RecordInteraction
    | ScheduleMeeting
    | StateMeetingPurpose
    | ReviseMeetingDate
    | PostponeMeeting
    | CancelMeeting
    | InviteFaction
    | ConfirmAttendance
    | DeclineAttendance
    | NameDelegationLeader
    | NameDelegationMember
    | DraftDeclaration
    | SignDeclaration
    | RefuseSignature
    | AddSource
    | CorrectEvent
    | RetractEvent
)

COMMAND_DECODER: StrictDecoder[Command] = StrictDecoder(Command, substitutes=INBOUND)
"""Decodes one command from JSON carrying its ``type`` tag (the seed file, the CLI loader),
refusing unknown fields at any depth."""
