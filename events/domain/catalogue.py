"""Every event Diplofeed records: frozen, keyword-only Structs, each with a stable dotted,
versioned tag (its stored type), registered in ``CATALOGUE`` for decoding and upcasting.

Streams: ``actor-<id>``, ``interaction-<id>``, ``meeting-<id>``, ``declaration-<id>``. Source
additions, corrections and retractions are recorded in the stream of the event they amend.
Interaction events are defined with their kinds (``events.domain.kinds``) and re-exported here.
"""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import msgspec

from events.domain.codes import Coding
from events.domain.event import Event
from events.domain.kinds import (
    INTERACTION_KINDS,
    AddressDelivered,
    ApologyIssued,
    ContactsReported,
    InteractionEvent,
    MeetingHeld,
    PhoneCallHeld,
    StatementReported,
    VisitMade,
)
from events.domain.valid_time import ValidTime
from events.domain.vocabulary import ActorKind, Alias, Modality, Place, Source
from events.registry import EventRegistry

__all__ = (
    "CATALOGUE",
    "EVENT_DECODER",
    "INTERACTION_EVENTS",
    "ActorRegistered",
    "ActorsMerged",
    "AddressDelivered",
    "AliasAdded",
    "ApologyIssued",
    "AttendanceConfirmed",
    "AttendanceDeclined",
    "ContactsReported",
    "DeclarationDrafted",
    "DeclarationSigned",
    "DelegationLeaderNamed",
    "DelegationMemberNamed",
    "DomainEvent",
    "EventCorrected",
    "EventRetracted",
    "FactionInvited",
    "Interaction",
    "MeetingCancelled",
    "MeetingDateRevised",
    "MeetingHeld",
    "MeetingPostponed",
    "MeetingPurposeStated",
    "MeetingScheduled",
    "PhoneCallHeld",
    "RoleAssigned",
    "SignatureRefused",
    "SourceAdded",
    "StatementReported",
    "VisitMade",
)


# -- actors -------------------------------------------------------------------------------------


class ActorRegistered(Event, frozen=True, kw_only=True, tag="actor.registered.v1"):
    """A person, organisation, state or institution enters the registry."""

    actor_id: str
    kind: ActorKind
    canonical_name: str
    aliases: tuple[Alias, ...] = ()
    cameo_code: str | None = None
    wikidata_qid: str | None = None
    country: str | None = None
    sources: tuple[Source, ...] = ()


class AliasAdded(Event, frozen=True, kw_only=True, tag="actor.alias_added.v1"):
    """Another spelling of an actor's name, as some source wrote it."""

    actor_id: str
    alias: Alias
    sources: tuple[Source, ...] = ()


class RoleAssigned(Event, frozen=True, kw_only=True, tag="actor.role_assigned.v1"):
    """A person's membership and title in an organisation, for a valid time."""

    actor_id: str
    organisation_id: str
    title_as_reported: str | None = None
    role_code: str | None = None
    valid_time: ValidTime
    sources: tuple[Source, ...] = ()


class ActorsMerged(Event, frozen=True, kw_only=True, tag="actor.merged.v1"):
    """Two registered actors turned out to be one: ``merged_actor_id`` lives on as this one."""

    actor_id: str
    merged_actor_id: str
    reason: str | None = None


# -- interactions -------------------------------------------------------------------------------


# Each kind's event type is defined where the kind is registered (events.domain.kinds).
INTERACTION_EVENTS: Final = INTERACTION_KINDS.events()
"""Every interaction event type, in the order the kinds were registered."""
if TYPE_CHECKING:
    Interaction: TypeAlias = InteractionEvent
else:
    Interaction = functools.reduce(operator.or_, INTERACTION_EVENTS)
"""Any interaction event (the union of ``INTERACTION_EVENTS``)."""

# -- meetings -----------------------------------------------------------------------------------


class MeetingScheduled(Event, frozen=True, kw_only=True, tag="meeting.scheduled.v1"):
    """A meeting announced or planned, with its (often uncertain) date window."""

    meeting_id: str
    title: str
    host_id: str | None = None
    organiser_id: str | None = None
    place: Place | None = None
    valid_time: ValidTime
    modality: Modality = "announced"
    attributed_to: str | None = None
    coding: Coding
    sources: tuple[Source, ...] = ()
    purpose: str | None = None
    """What the meeting is for, as the source gives it (events recorded before the field
    existed have none)."""


class MeetingPurposeStated(Event, frozen=True, kw_only=True, tag="meeting.purpose_stated.v1"):
    """What the meeting is for, its agenda, as a (later) report gives it."""

    meeting_id: str
    purpose: str
    sources: tuple[Source, ...] = ()


class MeetingDateRevised(Event, frozen=True, kw_only=True, tag="meeting.date_revised.v1"):
    """The meeting's date window, as a later report gives it."""

    meeting_id: str
    valid_time: ValidTime
    reason: str | None = None
    sources: tuple[Source, ...] = ()


class MeetingPostponed(Event, frozen=True, kw_only=True, tag="meeting.postponed.v1"):
    """The meeting is put off, to a new window if one is known."""

    meeting_id: str
    valid_time: ValidTime | None = None
    reason: str | None = None
    sources: tuple[Source, ...] = ()


class MeetingCancelled(Event, frozen=True, kw_only=True, tag="meeting.cancelled.v1"):
    """The meeting will not take place."""

    meeting_id: str
    reason: str | None = None
    sources: tuple[Source, ...] = ()


class FactionInvited(Event, frozen=True, kw_only=True, tag="meeting.faction_invited.v1"):
    """A faction is invited to the meeting."""

    meeting_id: str
    faction_id: str
    name_as_reported: str | None = None
    inviter_id: str | None = None
    coding: Coding
    sources: tuple[Source, ...] = ()


class AttendanceConfirmed(Event, frozen=True, kw_only=True, tag="meeting.attendance_confirmed.v1"):
    """A faction confirms it will take part."""

    meeting_id: str
    faction_id: str
    coding: Coding
    sources: tuple[Source, ...] = ()


class AttendanceDeclined(Event, frozen=True, kw_only=True, tag="meeting.attendance_declined.v1"):
    """A faction says it will not take part."""

    meeting_id: str
    faction_id: str
    reason: str | None = None
    coding: Coding
    sources: tuple[Source, ...] = ()


class DelegationLeaderNamed(
    Event, frozen=True, kw_only=True, tag="meeting.delegation_leader_named.v1"
):
    """Who heads a faction's delegation to the meeting."""

    meeting_id: str
    faction_id: str
    person_id: str
    name_as_reported: str | None = None
    title_as_reported: str | None = None
    sources: tuple[Source, ...] = ()


class DelegationMemberNamed(
    Event, frozen=True, kw_only=True, tag="meeting.delegation_member_named.v1"
):
    """A member of a faction's delegation to the meeting."""

    meeting_id: str
    faction_id: str
    person_id: str
    name_as_reported: str | None = None
    title_as_reported: str | None = None
    sources: tuple[Source, ...] = ()


# -- declarations -------------------------------------------------------------------------------


class DeclarationDrafted(Event, frozen=True, kw_only=True, tag="declaration.drafted.v1"):
    """A declaration put forward, usually at a meeting."""

    declaration_id: str
    title: str
    meeting_id: str | None = None
    valid_time: ValidTime | None = None
    sources: tuple[Source, ...] = ()


class DeclarationSigned(Event, frozen=True, kw_only=True, tag="declaration.signed.v1"):
    """A party signs the declaration (CAMEO 057)."""

    declaration_id: str
    signatory_id: str
    name_as_reported: str | None = None
    valid_time: ValidTime | None = None
    coding: Coding
    sources: tuple[Source, ...] = ()


class SignatureRefused(Event, frozen=True, kw_only=True, tag="declaration.signature_refused.v1"):
    """A party refuses to sign the declaration (CAMEO 127)."""

    declaration_id: str
    refuser_id: str
    name_as_reported: str | None = None
    reason: str | None = None
    valid_time: ValidTime | None = None
    coding: Coding
    sources: tuple[Source, ...] = ()


# -- provenance and amendments ------------------------------------------------------------------


class SourceAdded(Event, frozen=True, kw_only=True, tag="record.source_added.v1"):
    """Another source corroborates an event already recorded."""

    target_event_id: str
    source: Source


class EventCorrected(Event, frozen=True, kw_only=True, tag="record.event_corrected.v1"):
    """Some fields of an earlier event were wrong: these values replace them."""

    target_event_id: str
    changes: dict[str, Any]
    reason: str
    sources: tuple[Source, ...] = ()


class EventRetracted(Event, frozen=True, kw_only=True, tag="record.event_retracted.v1"):
    """An earlier event should not have been recorded: every view drops it."""

    target_event_id: str
    reason: str
    sources: tuple[Source, ...] = ()


DomainEvent = (
    ActorRegistered
    | AliasAdded
    | RoleAssigned
    | ActorsMerged
    | Interaction
    | MeetingScheduled
    | MeetingPurposeStated
    | MeetingDateRevised
    | MeetingPostponed
    | MeetingCancelled
    | FactionInvited
    | AttendanceConfirmed
    | AttendanceDeclined
    | DelegationLeaderNamed
    | DelegationMemberNamed
    | DeclarationDrafted
    | DeclarationSigned
    | SignatureRefused
    | SourceAdded
    | EventCorrected
    | EventRetracted
)

EVENT_DECODER: msgspec.json.Decoder[DomainEvent] = msgspec.json.Decoder(DomainEvent)
"""Decodes any domain event whose JSON carries its ``type`` tag (exports, fixtures)."""

CATALOGUE = EventRegistry()
"""Every domain event type, for decoding stored events (with upcasting) and appending."""
for _cls in DomainEvent.__args__:
    CATALOGUE.register(_cls)
