"""What the contacts projection's queries return: interactions, actors, history entries and
graph edges, and the kind each interaction event type gives its view."""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from events.domain.catalogue import (
    AddressDelivered,
    ApologyIssued,
    ContactsReported,
    MeetingHeld,
    PhoneCallHeld,
    StatementReported,
    VisitMade,
)
from events.domain.coding import Coding
from events.domain.valid_time import ValidTime
from events.domain.vocabulary import Participant, Place, Source

__all__ = (
    "KINDS",
    "ActorView",
    "Counterpart",
    "HistoryEntry",
    "InteractionView",
    "RoleView",
    "WindowMode",
)

WindowMode = Literal["possible", "certain"]

KINDS: Final[dict[type[Any], str]] = {
    PhoneCallHeld: "phone_call",
    MeetingHeld: "meeting",
    VisitMade: "visit",
    AddressDelivered: "address",
    ContactsReported: "contacts",
    StatementReported: "statement",
    ApologyIssued: "apology",
}
"""The kind of the view of each interaction event type."""


class InteractionView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An interaction in its current form: corrections applied, every source that backs it."""

    interaction_id: str
    kind: str
    """phone_call, meeting, visit, address, contacts, statement or apology."""
    participants: tuple[Participant, ...]
    valid_time: ValidTime
    place: Place | None = None
    topics: tuple[str, ...] = ()
    modality: str = "reported"
    attributed_to: str | None = None
    coding: Coding
    sources: tuple[Source, ...] = ()
    meeting_id: str | None = None
    format: str | None = None
    quote: str | None = None
    cardinality_text: str | None = None
    min_count: int | None = None
    claim: str | None = None
    negated: bool = False
    subject: str | None = None


class RoleView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A role an actor held in an organisation, for a valid time."""

    organisation_id: str
    title: str | None = None
    role_code: str | None = None
    valid_time: ValidTime


class ActorView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An actor as the directory shows it."""

    actor_id: str
    kind: str
    canonical_name: str
    aliases: tuple[str, ...] = ()
    cameo_code: str | None = None
    wikidata_qid: str | None = None
    country: str | None = None
    roles: tuple[RoleView, ...] = ()
    merged: tuple[str, ...] = ()
    """Actors found to be this one (their own rows remain; ``get_actor`` follows the merge)."""
    sources: tuple[Source, ...] = ()


class Counterpart(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Another participant of an interaction, as the source named them."""

    actor_id: str
    role: str
    name_as_reported: str | None = None
    title_as_reported: str | None = None


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One interaction in an actor's contact history."""

    interaction_id: str
    kind: str
    counterparts: tuple[Counterpart, ...]
    roles: tuple[str, ...]
    """The roles the actor (or the member it is included through) took in it."""
    via: str | None
    """For an organisation: the member through whom the interaction is included (the first by
    id if several); ``None`` when the actor took part itself."""
    cameo: str
    plover_type: str | None
    plover_mode: str | None
    valid_time: ValidTime
    place: Place | None
    modality: str
    attributed_to: str | None
    sources: tuple[Source, ...]
    topics: tuple[str, ...]
    cardinality_text: str | None
    """For an aggregate report ("frequently"): the source's own words, never split up."""
    min_count: int | None
    negated: bool
    claim: str | None
