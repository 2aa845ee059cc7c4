"""What a correction may change: for each kind of fact, its correctable fields with their types,
and how a correction's values become an event's (actor references resolved, dates parsed).

A correction names the fields of the event it corrects (``{"person_id": ...}``). Each fact type
has a ``<Event>Changes`` Struct built from the event's own fields, so the two cannot drift:
every field but those that identify the fact, each optional, bounded like a command's
(``events.domain.bounds``) and refusing unknown fields; a ``valid_time`` is an EDTF string.
An actor reference (``person_id``, ``faction_id``, a participant's ``actor_id``...) takes an
id or any spelling of a name, and is resolved by the directory like any command's: a name
that matches nobody, or several actors, is refused, so a correction can never leave an id
that points at no actor.
"""

from __future__ import annotations

import re
import types
import typing
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, Union

import msgspec

from events.domain import bounds
from events.domain.bounds import INBOUND, Name, Prose
from events.domain.catalogue import DomainEvent, EventCorrected, EventRetracted, SourceAdded
from events.domain.commands import Edtf, Ref
from events.domain.errors import InvalidCommandError
from events.domain.strict import strict_type
from events.domain.valid_time import ValidTime, valid_time
from events.domain.vocabulary import ACTOR_KINDS, Participant

if TYPE_CHECKING:
    from datetime import date

    from events.domain.directory import Directory

__all__ = ("ACTOR_REFERENCES", "CHANGES", "CORRECTABLE", "corrected_fields", "identity_fields")

_IDENTITY_FIELDS: Final = frozenset(
    {"actor_id", "interaction_id", "declaration_id", "merged_actor_id"}
)
"""Fields that say what a fact is about; a correction that changed them would be a different
fact. ``meeting_id`` identifies a meeting's own events, but is only a link on an interaction or
a declaration, and a link may be corrected."""

_ORGANISATIONS: Final = ACTOR_KINDS - {"person"}
ACTOR_REFERENCES: Final[dict[str, frozenset[str] | None]] = {
    "person_id": frozenset({"person"}),
    "faction_id": _ORGANISATIONS,
    "organisation_id": _ORGANISATIONS,
    "host_id": None,
    "organiser_id": None,
    "inviter_id": None,
    "signatory_id": None,
    "refuser_id": None,
}
"""The event fields that refer to an actor, and the kinds of actor each may name (``None``:
any), as the commands that record them resolve them."""

_PROSE: Final = frozenset({"reason", "quote", "claim"})
"""Text fields that may run over lines (the others are one line, like a command's names)."""
_LIST_BOUNDS: Final = {
    "sources": bounds.MAX_SOURCES,
    "aliases": bounds.MAX_ALIASES,
    "topics": bounds.MAX_TOPICS,
    "plover_contexts": bounds.MAX_CONTEXTS,
}
"""How many items a list field may hold, as a command's (the longest, participants, else)."""
_Int = Annotated[int, msgspec.Meta(ge=-(2**53), le=2**53)]
_PATH = re.compile(r"at `\$\.(\w+)")


def identity_fields(event: Any) -> frozenset[str]:
    """The fields that identify ``event``'s fact (an event or its type), which no correction
    may change."""
    cls: Any = event if isinstance(event, type) else type(event)
    tag = cls.__struct_config__.tag
    if isinstance(tag, str) and tag.startswith("meeting."):
        return _IDENTITY_FIELDS | {"meeting_id"}
    return _IDENTITY_FIELDS


class _Inbound:
    """A correctable field's type as a correction takes it: bounded, strict, references as
    ``Ref`` and dates as EDTF; each nested Struct mirrored once (sources, aliases and places
    stay as they are, for ``strict_type`` to bound like a command's)."""

    def __init__(self) -> None:
        self._mirrors: dict[type, type] = {}

    def field(self, name: str, tp: Any) -> Any:
        if name in ACTOR_REFERENCES or name == "actor_id":
            return self._nullable(tp, Ref)
        if name == "valid_time":
            return self._nullable(tp, Edtf)
        if name in _PROSE:
            return self._nullable(tp, Prose)
        if typing.get_origin(tp) is tuple:
            items = self(typing.get_args(tp)[0])
            bound = msgspec.Meta(max_length=_LIST_BOUNDS.get(name, bounds.MAX_PARTICIPANTS))
            return Annotated[tuple[items, ...], bound]  # type: ignore[valid-type]
        return self(tp)

    @staticmethod
    def _nullable(tp: Any, inbound: Any) -> Any:
        return inbound | None if type(None) in typing.get_args(tp) else inbound

    def __call__(self, tp: Any) -> Any:
        if tp is str:
            return Name
        if tp is int:
            return _Int
        if tp in (bool, float, type(None), datetime):
            return tp
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            return self._struct(tp)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is Literal:
            return tp
        if origin is Annotated:
            return Annotated[(self(args[0]), *tp.__metadata__)]
        if origin is dict:
            values = self(args[1])
            return Annotated[dict[Name, values], msgspec.Meta(max_length=50)]  # type: ignore[valid-type]
        if origin in (Union, types.UnionType):
            return Union[tuple(self(a) for a in args)]  # noqa: UP007 (built from a tuple)
        raise TypeError(f"no inbound form for {tp!r}: say how a correction takes it")

    def _struct(self, tp: type[msgspec.Struct]) -> type:
        if tp in INBOUND:
            return tp  # taken in its bounded form (``_STRICT``), like a command's
        if tp is ValidTime:
            raise TypeError("a nested valid time: say how a correction takes it")
        if tp not in self._mirrors:
            fields = [
                (f.name, self.field(f.name, f.type), _default(f))
                for f in msgspec.structs.fields(tp)
            ]
            self._mirrors[tp] = msgspec.defstruct(
                f"{tp.__name__}Input",
                [(n, t) if d is msgspec.NODEFAULT else (n, t, d) for n, t, d in fields],
                kw_only=True,
                frozen=True,
                omit_defaults=True,
                forbid_unknown_fields=True,
                module=__name__,
            )
        return self._mirrors[tp]

    def changes(self, event: type[msgspec.Struct]) -> type[msgspec.Struct]:
        """The ``<Event>Changes`` Struct: every correctable field, optional."""
        identity = identity_fields(event)
        fields = [
            (f.name, self.field(f.name, f.type) | msgspec.UnsetType, msgspec.UNSET)
            for f in msgspec.structs.fields(event)
            if f.name not in identity
        ]
        changes = msgspec.defstruct(
            f"{event.__name__}Changes",
            fields,
            kw_only=True,
            frozen=True,
            forbid_unknown_fields=True,
            module=__name__,
        )
        tag = event.__struct_config__.tag
        changes.__doc__ = (
            f"What a correction of a `{tag}` event may change; a field left out keeps its value."
        )
        return changes


def _default(field: msgspec.structs.FieldInfo) -> Any:
    if field.default_factory is not msgspec.NODEFAULT:
        return msgspec.field(default_factory=field.default_factory)
    return field.default


_AMENDMENTS: Final = (SourceAdded, EventCorrected, EventRetracted)
_FACTS: Final = tuple(t for t in typing.get_args(DomainEvent) if t not in _AMENDMENTS)
_INBOUND = _Inbound()
CHANGES: Final[dict[type[msgspec.Struct], type[msgspec.Struct]]] = {
    t: _INBOUND.changes(t) for t in _FACTS
}
"""Each fact type's correctable fields (amendments themselves are not corrected)."""
_STRICT: Final = {event: strict_type(changes, INBOUND) for event, changes in CHANGES.items()}
"""What a correction's changes are decoded with: unknown fields refused at any depth, and the
shared vocabulary in its bounded forms."""


class Correctable(msgspec.Struct, frozen=True):
    """Marks a correction's ``changes`` (in ``Annotated``) for documentation: they are the
    fields of one of ``changes``, whichever type the corrected event has."""

    changes: tuple[type[msgspec.Struct], ...]


CORRECTABLE: Final = Correctable(tuple(CHANGES.values()))


def corrected_fields(target: Any, changes: dict[str, Any], directory: Directory) -> dict[str, Any]:
    """``changes`` checked against ``target``'s correctable fields, in the form the event
    stores them: actor references resolved to ids, a valid time parsed from EDTF.

    Raises:
        InvalidCommandError: a field the event does not have or that identifies it, or a value
            of the wrong type (``field`` names it, ``changes.<name>``).
        UnknownActorError, AmbiguousActorError: an actor reference that names nobody, or
            several actors.
        RuleViolationError: an actor reference naming an actor of the wrong kind.
    """
    fields = set(target.__struct_fields__)
    for name in changes:
        if name not in fields:
            raise InvalidCommandError(
                f"{type(target).__name__} has no field {name!r}; it has {sorted(fields)}",
                field=f"changes.{name}",
            )
        if name in identity_fields(target):
            raise InvalidCommandError(
                f"{name!r} identifies the fact and cannot be corrected; retract it and record "
                "the right one instead",
                field=f"changes.{name}",
            )
    try:
        typed = msgspec.convert(changes, _STRICT[type(target)])
    except msgspec.ValidationError as exc:
        path = _PATH.search(str(exc))
        raise InvalidCommandError(
            f"the corrected event would be invalid: {exc}",
            field=f"changes.{path.group(1)}" if path else "changes",
        ) from exc
    when = _when(typed, target)
    stored: dict[str, Any] = {}
    for name in changes:
        value = getattr(typed, name)
        if value is None:
            stored[name] = None
        elif name == "valid_time":
            stored[name] = msgspec.to_builtins(when)
        elif name in ACTOR_REFERENCES:
            # A delegate of a faction: the faction helps tell namesakes apart.
            faction = _after(typed, target, "faction_id") if name == "person_id" else None
            stored[name] = directory.resolve(
                value, field=f"changes.{name}", organisation=faction, kinds=ACTOR_REFERENCES[name]
            )
        elif name == "participants":
            day = when.lower if when is not None else None
            stored[name] = [
                msgspec.to_builtins(_participant(p, f"changes.participants[{i}]", day, directory))
                for i, p in enumerate(value)
            ]
        else:
            stored[name] = msgspec.to_builtins(value)
    return stored


def _after(typed: Any, target: Any, name: str) -> Any:
    """A field's value after the correction: the corrected one if given, else the event's."""
    given = getattr(typed, name, msgspec.UNSET)
    return getattr(target, name, None) if given is msgspec.UNSET else given


def _when(typed: Any, target: Any) -> ValidTime | None:
    """The fact's valid time after the correction."""
    given = getattr(typed, "valid_time", msgspec.UNSET)
    if given is msgspec.UNSET or given is None:
        known: ValidTime | None = getattr(target, "valid_time", None)
        return None if given is None else known
    try:
        return valid_time(given)
    except InvalidCommandError as exc:
        raise type(exc)(str(exc), field="changes.valid_time") from exc


def _participant(p: Any, field: str, day: date | None, directory: Directory) -> Participant:
    """A corrected participant as stored: its actor resolved on the fact's first day, the
    spelling it was named by kept as reported (like a recorded interaction's)."""
    return Participant(
        actor_id=directory.resolve(p.actor_id, field=f"{field}.actor_id", on=day),
        role=p.role,
        name_as_reported=p.name_as_reported or directory.as_reported(p.actor_id),
        title_as_reported=p.title_as_reported,
    )
