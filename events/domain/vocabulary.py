"""The shared parts of every recorded fact: who took part and how, where, how sure the source
is, and where the report comes from (PROV-style provenance down to the quote)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

__all__ = (
    "ACTOR_KINDS",
    "ActorKind",
    "Alias",
    "Modality",
    "Participant",
    "ParticipantRole",
    "Place",
    "Source",
)

ActorKind = Literal["person", "organisation", "state", "institution"]
ACTOR_KINDS: frozenset[str] = frozenset(ActorKind.__args__)  # type: ignore[attr-defined]

ParticipantRole = Literal[
    "initiator",
    "recipient",
    "host",
    "visitor",
    "organiser",
    "convener",
    "inviter",
    "invitee",
    "delegation_head",
    "delegation_member",
    "signatory",
    "refuser",
    "apologiser",
    "apology_recipient",
    "speaker",
    "audience",
    "mediator",
    "participant",
    "subject",
    "mentioned",
]

Modality = Literal["reported", "announced", "planned", "confirmed", "denied"]
"""How the source presents the claim: a past fact it reports, an announcement, a plan, a
confirmation, or a denial."""

NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class Participant(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An actor's part in a fact, with the name exactly as the source wrote it."""

    actor_id: str
    role: ParticipantRole
    name_as_reported: str | None = None
    title_as_reported: str | None = None


class Place(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Where something happened, as precisely as known."""

    name: NonEmpty
    country: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] | None = None
    """ISO 3166-1 alpha-3."""
    geonames_id: int | None = None
    venue: str | None = None


class Source(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One report a fact rests on, down to the sentence."""

    url: Annotated[str, msgspec.Meta(pattern=r"^https?://\S+$", max_length=2000)] | None = None
    publisher: str | None = None
    published_at: datetime | None = None
    language: Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)*$")] | None = None
    quote: Annotated[str, msgspec.Meta(max_length=5000)] | None = None
    """The exact sentence the fact comes from."""
    attributed_to: str | None = None
    """Whom the source attributes the claim to (e.g. the Russian Foreign Ministry)."""
    title: str | None = None


class Alias(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Another spelling or name of an actor, and where it was seen."""

    text: NonEmpty
    lang: str | None = None
    script: str | None = None
    scheme: str | None = None
    """The transliteration scheme or usage, e.g. "BGN" or "press"."""
