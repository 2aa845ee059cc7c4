"""The row of an interaction recorded in one event, straight from the event's stored JSON.

Most interactions are one event that nothing amends, and their view is that event's fields
plus its kind. Decoding such an event in full, building the view and encoding it again was
over half of what a contacts rebuild cost this process, to get back the stored JSON with one
key added. Here the stored text is kept and only what the tables index (participants, day
bounds, the negation flag) is decoded, into Structs generated from the event type so that they
stay in step with it. No library does this splice; it is written here.

The shortcut is taken only where reading the row back as an ``InteractionView`` (the only way
any query reads it) gives what the full path gives:

- the stored event is at its type's current schema version (no upcaster has to run);
- every field of the event type is a field of the view under the same name and, when it may
  be left out, with the same default, and every field the view requires is one the event
  requires (checked per type when this module is set up, so a change to either side turns
  the shortcut off for that type rather than making it wrong);
- the stored object holds no field the type does not know (``forbid_unknown_fields``).

Everything else goes the full way, which also reports malformed data as it always did. What
the shortcut leaves unchecked are the constraints on values it does not decode (a source URL's
pattern): they were checked when the event was appended, and again when the view is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec

from events.domain.valid_time import ValidTime
from events.domain.vocabulary import Participant
from projections.interaction_rows import interaction_row, link_rows

if TYPE_CHECKING:
    from collections.abc import Mapping

    from events.records import RecordedEvent
    from events.registry import EventRegistry
    from projections.interaction_rows import InteractionRow, LinkRow

__all__ = ("SingleFactRows",)


def _field(f: msgspec.structs.FieldInfo, typ: Any) -> tuple[Any, ...]:
    """``f`` as a ``defstruct`` field of type ``typ``, required or defaulted as ``f`` is."""
    if f.required:
        return (f.name, typ)
    if f.default_factory is not msgspec.NODEFAULT:
        return (f.name, typ, msgspec.field(default_factory=f.default_factory))
    return (f.name, typ, f.default)


def _subset(name: str, source: type[msgspec.Struct], keep: frozenset[str]) -> type[Any]:
    """A Struct with only ``keep`` of ``source``'s fields (same types, defaults, names), that
    ignores the others."""
    spec = [_field(f, f.type) for f in msgspec.structs.fields(source) if f.name in keep]
    return msgspec.defstruct(name, spec, frozen=True, kw_only=True)


_Link: Final = _subset("_Link", Participant, frozenset({"actor_id", "role", "name_as_reported"}))
_Days: Final = _subset("_Days", ValidTime, frozenset({"precision", "lower", "upper"}))
_DECODED: Final[dict[str, Any]] = {
    "participants": tuple[_Link, ...],  # type: ignore[valid-type]
    "valid_time": _Days,
}


def _default(f: msgspec.structs.FieldInfo) -> tuple[object, object]:
    return (f.default, f.default_factory)


def _facts_type(event_type: type[msgspec.Struct], view_type: type[msgspec.Struct]) -> Any:
    """The Struct that decodes what the tables need from a stored ``event_type`` and refuses
    any field the type does not have; ``None`` when the event's JSON is not its view's."""
    view = {f.name: f for f in msgspec.structs.fields(view_type)}
    fields = {f.name: f for f in msgspec.structs.fields(event_type)}
    for name, f in view.items():
        if f.required and name != "kind" and (name not in fields or not fields[name].required):
            return None
    spec: list[Any] = []
    for name, f in fields.items():
        seen = view.get(name)
        if seen is None or f.encode_name != seen.encode_name:
            return None
        if not f.required and _default(f) != _default(seen):
            return None
        typ = _DECODED.get(name, f.type if name == "negated" else msgspec.Raw)
        if typ is msgspec.Raw and not f.required:
            # Never read: declared so that an unknown field is refused, and left as raw JSON.
            spec.append((name, typ, msgspec.field(default=msgspec.Raw(b"null"))))
        else:
            spec.append(_field(f, typ))
    return msgspec.defstruct(
        f"_{event_type.__name__}Facts", spec, kw_only=True, forbid_unknown_fields=True
    )


class SingleFactRows:
    """Rows for interactions whose whole stream is one event, where the shortcut applies.

    Args:
        registry: Where stored types are looked up (their current Struct and version).
        kinds: Each interaction event Struct and the kind its view carries.
        view_type: The view the rows are read back as.
    """

    def __init__(
        self,
        registry: EventRegistry,
        kinds: Mapping[type[msgspec.Struct], str],
        view_type: type[msgspec.Struct],
    ) -> None:
        by_class = {cls: name for name, cls in registry.types.items()}
        # Stored type -> (schema version, kind, the view's opening, decoder).
        self._decoders: dict[str, tuple[int, str, str, msgspec.json.Decoder[Any]]] = {}
        for cls, kind in kinds.items():
            name = by_class.get(cls)
            current = registry.current(name) if name is not None else None
            facts = _facts_type(cls, view_type)
            if name is None or current is None or facts is None:
                continue
            # The view's JSON starts with the kind, followed by the stored object's own keys.
            prefix = msgspec.json.encode({"kind": kind}).decode()[:-1] + ","
            self._decoders[name] = (current[1], kind, prefix, msgspec.json.Decoder(facts))

    @property
    def types(self) -> frozenset[str]:
        """The stored types the shortcut covers."""
        return frozenset(self._decoders)

    def rows(self, event: RecordedEvent) -> tuple[InteractionRow, list[LinkRow]] | None:
        """The interaction row and participant rows of a lone ``event``, or ``None`` when the
        full path must compute them."""
        entry = self._decoders.get(event.type)
        if entry is None or entry[0] != event.schema_version:
            return None
        _, kind, prefix, decoder = entry
        data = event.data
        if not data.startswith("{"):  # the splice below needs the object's brace first
            return None
        try:
            facts = decoder.decode(data)
        except msgspec.DecodeError:  # also a ValidationError: the full path says what is wrong
            return None
        item = event.stream_id.partition("-")[2]
        negated = bool(getattr(facts, "negated", False))
        # The stream's only event so far: its one version opens here and is still current.
        key = event.cursor.key()
        days = facts.valid_time
        row = interaction_row(
            item, kind, prefix + data[1:], days, negated=negated, sys_from=key, sys_to=None
        )
        links = link_rows(
            item,
            facts.participants,
            kind=kind,
            days=days,
            negated=negated,
            sys_from=key,
            sys_to=None,
        )
        return row, links
