"""The one registry of interaction kinds. Each kind is registered where its event type is
defined, with its name (what a command says), its row of the mapping table (CAMEO, Goldstein,
PLOVER) and, from the event type itself, the fields only it carries.

Everything else derives from the registry: the command's ``kind`` enum (so the OpenAPI
document), the event catalogue, the mapping table (``events.domain.coding.CODINGS``), the
rules for kind-specific fields (``events.domain.interactions``), the contact views' kinds and
fields. A field a kind adds must also be a field of ``RecordInteraction`` and of the contact
``InteractionView``: both modules refuse to import otherwise. How to add a kind:
docs/extending.md.

Codes (the domain notes, section 1.1; CAMEO codes are strings, leading zeros kept). A change
to a kind's codes needs a new ``MAPPING_VERSION`` (``events.domain.codes``): recorded codings
keep the version they followed.

================  =====  =========  ====  ======================================================
kind              CAMEO  Goldstein  Quad  PLOVER type / mode
================  =====  =========  ====  ======================================================
``phone_call``    041    1.0        1     CONSULT / phone
``meeting``       044    2.5        1     CONSULT / third-party (a meeting at a third location;
                                          override the mode to multilateral in an IGO setting)
``visit``         042    1.9        1     CONSULT / visit (actor: the visitor)
``address``       010    0.0        1     none (PLOVER drops statements)
``contacts``      040    1.0        1     CONSULT (regular consultation, form unknown)
``statement``     010    0.0        1     none
``apology``       055    7.0        1     CONCEDE (the PLOVER manual); CAMEO2PLOVER-2021 says
                                          SUPPORT, kept in ``alternatives``
================  =====  =========  ====  ======================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import msgspec

from events.domain.codes import Coding, table_coding
from events.domain.event import Event
from events.domain.valid_time import ValidTime
from events.domain.vocabulary import Modality, Participant, Place, Source

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = (
    "INTERACTION_KINDS",
    "AddressDelivered",
    "ApologyIssued",
    "ContactsReported",
    "InteractionEvent",
    "Kind",
    "KindRegistry",
    "MeetingHeld",
    "PhoneCallHeld",
    "StatementReported",
    "VisitMade",
)


class InteractionEvent(Event, frozen=True, kw_only=True):
    """What every interaction records; each kind's event type adds its own fields."""

    interaction_id: str
    participants: tuple[Participant, ...]
    valid_time: ValidTime
    place: Place | None = None
    topics: tuple[str, ...] = ()
    modality: Modality = "reported"
    attributed_to: str | None = None
    coding: Coding
    sources: tuple[Source, ...] = ()
    meeting_id: str | None = None
    """The planned meeting this interaction belongs to, if any."""


E = TypeVar("E", bound=InteractionEvent)
_SHARED = frozenset(InteractionEvent.__struct_fields__)


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of interaction and everything that derives from it."""

    name: str
    """What a command's ``kind`` says and a view's ``kind`` shows (``phone_call``)."""
    event: type[InteractionEvent]
    """The event type recording it."""
    coding: Coding
    """Its row of the mapping table."""
    fields: tuple[str, ...]
    """The fields only it carries (its event type's, beyond ``InteractionEvent``'s): a
    command may give them for this kind only, and its view shows them."""
    required: frozenset[str]
    """Those of ``fields`` a command must give."""


class KindRegistry:
    """The interaction kinds, in registration order. Every kind is registered before anything
    reads the registry: what derives from it is computed once, at import, so a later kind
    would be missed; registering one then is refused."""

    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}
        self._read = False

    def kind(self, name: str, coding: Coding) -> Callable[[type[E]], type[E]]:
        """Register the decorated event type as kind ``name`` with ``coding``."""

        def register(event: type[E]) -> type[E]:
            self.register(name, event, coding)
            return event

        return register

    def register(self, name: str, event: type[InteractionEvent], coding: Coding) -> Kind:
        """Register kind ``name``, recorded by ``event`` and coded ``coding``.

        Raises:
            RuntimeError: the registry was read already (see the class docstring).
            ValueError: ``name`` or ``event`` is registered already.
        """
        if self._read:
            raise RuntimeError(
                f"interaction kind {name!r} registered after the registry was read: register "
                "every kind before importing what derives from the registry"
            )
        if name in self._kinds or any(k.event is event for k in self._kinds.values()):
            raise ValueError(f"interaction kind {name!r} or its event type is registered already")
        own = [f for f in msgspec.structs.fields(event) if f.name not in _SHARED]
        kind = Kind(
            name=name,
            event=event,
            coding=coding,
            fields=tuple(f.name for f in own),
            required=frozenset(f.name for f in own if f.required),
        )
        self._kinds[name] = kind
        return kind

    def __iter__(self) -> Iterator[Kind]:
        self._read = True
        return iter(tuple(self._kinds.values()))

    def __getitem__(self, name: str) -> Kind:
        self._read = True
        return self._kinds[name]

    def names(self) -> tuple[str, ...]:
        """Every kind's name."""
        return tuple(kind.name for kind in self)

    def events(self) -> tuple[type[InteractionEvent], ...]:
        """Every kind's event type."""
        return tuple(kind.event for kind in self)

    def names_literal(self) -> Any:
        """``Literal`` of every kind's name: the enum commands and query parameters take."""
        return Literal[self.names()]

    def fields(self) -> tuple[str, ...]:
        """Every field some kind carries and others do not, each once, in registration order."""
        return tuple(dict.fromkeys(name for kind in self for name in kind.fields))


INTERACTION_KINDS = KindRegistry()
"""Every interaction kind Diplofeed records."""

_kind = INTERACTION_KINDS.kind


@_kind("phone_call", table_coding("041", 1.0, "CONSULT", "phone"))
class PhoneCallHeld(
    InteractionEvent, frozen=True, kw_only=True, tag="interaction.phone_call_held.v1"
):
    """A telephone conversation (CAMEO 041)."""


@_kind("meeting", table_coding("044", 2.5, "CONSULT", "third-party"))
class MeetingHeld(InteractionEvent, frozen=True, kw_only=True, tag="interaction.meeting_held.v1"):
    """A meeting that took place."""

    format: str | None = None
    """bilateral, multilateral or third_party."""


@_kind("visit", table_coding("042", 1.9, "CONSULT", "visit"))
class VisitMade(InteractionEvent, frozen=True, kw_only=True, tag="interaction.visit_made.v1"):
    """A visit: the visitor travels to the host."""


@_kind("address", table_coding("010", 0.0, None))
class AddressDelivered(
    InteractionEvent, frozen=True, kw_only=True, tag="interaction.address_delivered.v1"
):
    """A speech or address to an audience."""

    quote: str | None = None


@_kind("contacts", table_coding("040", 1.0, "CONSULT"))
class ContactsReported(
    InteractionEvent, frozen=True, kw_only=True, tag="interaction.contacts_reported.v1"
):
    """An aggregate report ("several times", "frequently"): never a single invented meeting."""

    cardinality_text: str
    min_count: int | None = None


@_kind("statement", table_coding("010", 0.0, None))
class StatementReported(
    InteractionEvent, frozen=True, kw_only=True, tag="interaction.statement_reported.v1"
):
    """A statement or a pattern of behaviour, possibly negative ("avoids public contact")."""

    claim: str
    negated: bool = False


# The PLOVER manual: "expressions of regret or remorse ... should be coded as CONCEDE";
# CAMEO2PLOVER-2021.txt maps 055 to SUPPORT. We follow the manual and keep the other.
@_kind(
    "apology",
    table_coding("055", 7.0, "CONCEDE", alternatives={"cameo2plover_2021": "SUPPORT"}),
)
class ApologyIssued(
    InteractionEvent, frozen=True, kw_only=True, tag="interaction.apology_issued.v1"
):
    """An apology (CAMEO 055)."""

    subject: str | None = None
