"""Contact history entries as the API serves them, from the stored interaction views.

A history page is up to a thousand entries of about a kilobyte each, most of it the view's
sources, valid time and place, which an entry repeats as stored. ``raw_entry`` therefore
decodes only what depends on whose history it is (the participants, split into the actor's
roles and its counterparts) and the codes an entry flattens, and copies every other field as
the stored JSON text (``msgspec.Raw``): what it returns decodes to the ``HistoryEntry`` that
``history_entry``, the plain path that decodes the whole view, builds from the same view (a
test compares them). Only the order of keys inside copied objects may differ (stored JSON is
canonical, with sorted keys). The values were checked when their events were appended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec

from projections.contacts.views import Counterpart, HistoryEntry, InteractionView

__all__ = ("Through", "history_entry", "raw_entry")

_CODES: Final = ("cameo", "plover_type", "plover_mode")
"""The fields of an entry taken from the view's coding."""
_OWN: Final = ("interaction_id", "kind", "counterparts", "roles", "via", *_CODES)
"""The fields of an entry not copied from the view as they are stored."""


def _raw_default(field: msgspec.structs.FieldInfo) -> msgspec.Raw:
    value = field.default_factory() if field.default_factory is not msgspec.NODEFAULT else None
    if field.default is not msgspec.NODEFAULT:
        value = field.default
    return msgspec.Raw(msgspec.json.encode(value))


def _copied_fields() -> list[Any]:
    """The view's fields an entry copies, as raw JSON, with the view's defaults (a view leaves
    a default value out of its JSON; the entry writes it)."""
    view = {f.name: f for f in msgspec.structs.fields(InteractionView)}
    spec: list[Any] = []
    for f in msgspec.structs.fields(HistoryEntry):
        if f.name in _OWN:
            continue
        stored = view[f.name]  # a KeyError here: an entry field the view lacks
        if stored.required:
            spec.append((f.name, msgspec.Raw))
        else:
            spec.append((f.name, msgspec.Raw, _raw_default(stored)))
    return spec


class _Codes(msgspec.Struct, kw_only=True):
    cameo: str
    plover_type: str | None = None
    plover_mode: str | None = None


_Stored: Final = msgspec.defstruct(
    "_Stored",
    [
        ("interaction_id", str),
        ("kind", str),
        ("participants", tuple[Counterpart, ...]),
        ("coding", _Codes),
        *_copied_fields(),
    ],
    kw_only=True,
)
"""What an entry reads of a stored view (other fields of the view are skipped)."""
_Entry: Final = msgspec.defstruct(
    "_Entry",
    [
        (f.name, f.type if f.name in _OWN else msgspec.Raw)
        for f in msgspec.structs.fields(HistoryEntry)
    ],
    kw_only=True,
)
"""``HistoryEntry`` with the copied fields as raw JSON: it encodes as a ``HistoryEntry`` does."""
_COPIED: Final = tuple(f.name for f in msgspec.structs.fields(HistoryEntry) if f.name not in _OWN)
_DECODER: Final[msgspec.json.Decoder[Any]] = msgspec.json.Decoder(_Stored)
_ENCODER: Final = msgspec.json.Encoder()


Through = Callable[[list[str]], list[str]]
"""Given an interaction's participants, the members through whom it counts in a history."""


def raw_entry(actor_id: str, view: str | bytes, through: Through | None) -> msgspec.Raw:
    """The JSON of ``actor_id``'s history entry for the stored ``view`` (JSON text): an entry
    the actor took part in itself when ``through`` is ``None``, else one that counts through
    the members ``through`` picks from its participants."""
    stored = _DECODER.decode(view)
    members = [] if through is None else through([p.actor_id for p in stored.participants])
    selves = {actor_id, *members}
    codes = stored.coding
    entry = _Entry(
        interaction_id=stored.interaction_id,
        kind=stored.kind,
        counterparts=tuple(p for p in stored.participants if p.actor_id not in selves),
        roles=tuple(p.role for p in stored.participants if p.actor_id in selves),
        via=members[0] if members else None,
        cameo=codes.cameo,
        plover_type=codes.plover_type,
        plover_mode=codes.plover_mode,
        **{name: getattr(stored, name) for name in _COPIED},
    )
    return msgspec.Raw(_ENCODER.encode(entry))


def history_entry(actor_id: str, view: str | bytes, through: Through | None) -> HistoryEntry:
    """``raw_entry`` decoded, by decoding the whole view (the plain path it is checked
    against)."""
    interaction = msgspec.json.decode(view, type=InteractionView)
    members = [] if through is None else through([p.actor_id for p in interaction.participants])
    selves = {actor_id, *members}
    coding = interaction.coding
    return HistoryEntry(
        interaction_id=interaction.interaction_id,
        kind=interaction.kind,
        counterparts=tuple(
            Counterpart(
                actor_id=p.actor_id,
                role=p.role,
                name_as_reported=p.name_as_reported,
                title_as_reported=p.title_as_reported,
            )
            for p in interaction.participants
            if p.actor_id not in selves
        ),
        roles=tuple(p.role for p in interaction.participants if p.actor_id in selves),
        via=members[0] if members else None,
        cameo=coding.cameo,
        plover_type=coding.plover_type,
        plover_mode=coding.plover_mode,
        valid_time=interaction.valid_time,
        place=interaction.place,
        modality=interaction.modality,
        attributed_to=interaction.attributed_to,
        sources=interaction.sources,
        topics=interaction.topics,
        cardinality_text=interaction.cardinality_text,
        min_count=interaction.min_count,
        negated=interaction.negated,
        claim=interaction.claim,
    )
