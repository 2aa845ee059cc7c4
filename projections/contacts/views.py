"""What the contacts projection's queries return: interactions, actors, history entries and
graph edges, and the kind each interaction event type gives its view."""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from events.domain.coding import Coding
from events.domain.kinds import INTERACTION_KINDS
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

KINDS: Final[dict[type[Any], str]] = {kind.event: kind.name for kind in INTERACTION_KINDS}
"""The kind of the view of each interaction event type (``events.domain.kinds``)."""


class InteractionView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An interaction in its current form: corrections applied, every source that backs it."""

    interaction_id: str
    kind: str
    """One of the interaction kinds (``events.domain.kinds``)."""
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
    # Every field a kind carries shows in its view (the fold copies them by name).


# A kind whose field the view lacks is refused here, at import, not in the projection runner.
_MISSING = set(INTERACTION_KINDS.fields()) - set(InteractionView.__struct_fields__)
if _MISSING:
    raise TypeError(f"InteractionView has no field for {sorted(_MISSING)} (events.domain.kinds)")


class RoleView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A role an actor held in an organisation, for a valid time."""

    organisation_id: str
    title: str | None = None
    role_code: str | None = None
    valid_time: ValidTime


class ActorView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An actor as the directory shows it. Its lists are required fields: always sent, ``[]``
    when empty, as clients of the schema expect (an absent code is left out)."""

    actor_id: str
    kind: str
    canonical_name: str
    aliases: tuple[str, ...]
    cameo_code: str | None = None
    wikidata_qid: str | None = None
    country: str | None = None
    roles: tuple[RoleView, ...]
    merged: tuple[str, ...]
    """Actors found to be this one (their own rows remain; ``get_actor`` follows the merge)."""
    sources: tuple[Source, ...]


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
