"""The bounds of everything a command may carry: how long each string may be and which
characters it may hold, how many items each list may have, how large each number may be.

Commands are stored for ever in an append-only log, so what they carry is bounded at the door
rather than trimmed later. Every bound is a ``msgspec.Meta`` on the type, so msgspec checks it
while decoding (naming the field, ``$.sources[0].publisher``) and the OpenAPI document shows it
(``maxLength``, ``maxItems``, ``maximum``, ``pattern``).

Characters: no string may hold what PostgreSQL's ``jsonb`` cannot store (NUL) nor other control
characters; one-line values (names, titles, codes) refuse line breaks and tabs too, prose
(quotes, reasons, claims) keeps them. (Lone surrogates, which PostgreSQL cannot store either,
never reach a command: JSON decoding refuses them, and the path parameters of a request are
decoded with replacement characters. The patterns leave them out because JSON Schema readers'
regular expressions cannot name them.)

The stored forms of the shared vocabulary (``Source``, ``Alias``, ``Place``) stay as lenient as
they always were, so that every event already in the log still decodes. Commands name those
forms, and are decoded through their bounded forms below (``INBOUND``, applied by
``strict.strict_type``): the same fields with tighter types, refusing unknown fields.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Final, Union

import msgspec

from events.domain.vocabulary import Alias, Place, Source

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = (
    "INBOUND",
    "LINE_PATTERN",
    "MAX_ALIASES",
    "MAX_CONTEXTS",
    "MAX_PARTICIPANTS",
    "MAX_SOURCES",
    "MAX_TOPICS",
    "PATTERN_REASONS",
    "PROSE_PATTERN",
    "AliasInput",
    "Changes",
    "Code",
    "Count",
    "Line",
    "Name",
    "PlaceInput",
    "Prose",
    "SourceInput",
    "Sources",
    "Url",
    "anchored",
    "line",
)


def anchored(body: str) -> str:
    """A pattern that ``body`` must match in full. Python's ``$`` also matches before a final
    newline (and msgspec searches with Python's ``re``), so ``(?!\\n)`` refuses that newline;
    ECMAScript readers of the OpenAPI document read the pattern the same way."""
    return f"^{body}$(?!\\n)"


LINE_PATTERN: Final = anchored("[^\\u0000-\\u001f\\u007f-\\u009f]*")
"""One line: no control character (C0, DEL, C1)."""
PROSE_PATTERN: Final = anchored("[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*")
"""Prose: like a line, but tabs and line breaks are welcome."""

PATTERN_REASONS: Final = {
    LINE_PATTERN: "must be one line of text: no control characters, line breaks or tabs",
    PROSE_PATTERN: "must be text: no control characters other than tab and line breaks",
}
"""What each character pattern means, for error messages (msgspec's quote the pattern)."""

MAX_SOURCES: Final = 50
MAX_ALIASES: Final = 50
MAX_PARTICIPANTS: Final = 200
MAX_TOPICS: Final = 50
MAX_CONTEXTS: Final = 20


def line(max_length: int, min_length: int = 0) -> msgspec.Meta:
    """The bounds of a one-line string of ``min_length`` to ``max_length`` characters."""
    return msgspec.Meta(min_length=min_length, max_length=max_length, pattern=LINE_PATTERN)


Line = Annotated[str, line(500)]
"""A short value, possibly empty: a publisher, a transliteration scheme, a venue."""
Name = Annotated[str, line(500, 1)]
"""A name, a title, a topic or a phrase a source used: one line, 1-500 characters."""
Code = Annotated[str, line(64, 1)]
"""A code or tag (a role code, a language, a PLOVER word): one line, 1-64 characters."""
Prose = Annotated[str, msgspec.Meta(min_length=1, max_length=5000, pattern=PROSE_PATTERN)]
"""A quote, a reason or a claim: 1-5,000 characters, line breaks allowed."""
Url = Annotated[str, msgspec.Meta(max_length=2000, pattern=anchored("https?://\\S+"))]
"""An http(s) URL of at most 2,000 characters (the stored form's own bound)."""
Count = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
"""A count a source gives ("more than 20 contacts"): 1 to a billion."""


class SourceInput(
    Source, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    """One report a fact rests on, down to the sentence."""

    url: Url | None = None
    publisher: Line | None = None
    language: (
        Annotated[str, msgspec.Meta(max_length=35, pattern=anchored("[a-z]{2,3}(-[A-Za-z0-9]+)*"))]
        | None
    ) = None
    quote: Annotated[str, msgspec.Meta(max_length=5000, pattern=PROSE_PATTERN)] | None = None
    """The exact sentence the fact comes from."""
    attributed_to: Line | None = None
    """Whom the source attributes the claim to (e.g. the Russian Foreign Ministry)."""
    title: Line | None = None


class AliasInput(Alias, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """Another spelling or name of an actor, and where it was seen."""

    text: Name
    lang: Annotated[str, line(35)] | None = None
    script: Annotated[str, line(35)] | None = None
    scheme: Annotated[str, line(64)] | None = None
    """The transliteration scheme or usage, e.g. "BGN" or "press"."""


class PlaceInput(Place, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """Where something happened, as precisely as known."""

    name: Name
    country: Annotated[str, msgspec.Meta(max_length=3, pattern=anchored("[A-Z]{3}"))] | None = None
    """ISO 3166-1 alpha-3."""
    geonames_id: Annotated[int, msgspec.Meta(ge=1, le=999_999_999)] | None = None
    venue: Line | None = None


INBOUND: Final[Mapping[type, type]] = MappingProxyType(
    {Source: SourceInput, Alias: AliasInput, Place: PlaceInput}
)
"""The bounded form of each shared Struct, for decoding commands (``strict.strict_type``)."""

Sources = Annotated[tuple[Source, ...], msgspec.Meta(max_length=MAX_SOURCES)]

# A correction's new field values: JSON of bounded strings, numbers and collections, nested at
# most four levels (an event's deepest field, a participant list, is two).
_FieldName = Annotated[str, msgspec.Meta(max_length=64, pattern=anchored("[a-z_][a-z0-9_]{0,63}"))]
_Scalar = Union[  # noqa: UP007 (a union of Annotated types reads better spelled out)
    Annotated[str, msgspec.Meta(max_length=5000, pattern=PROSE_PATTERN)],
    Annotated[int, msgspec.Meta(ge=-(2**53), le=2**53)],
    float,
    bool,
    None,
]
_Value1 = Union[  # noqa: UP007
    _Scalar,
    Annotated[list[_Scalar], msgspec.Meta(max_length=MAX_PARTICIPANTS)],
    Annotated[dict[_FieldName, _Scalar], msgspec.Meta(max_length=50)],
]
_Value2 = Union[  # noqa: UP007
    _Scalar,
    Annotated[list[_Value1], msgspec.Meta(max_length=MAX_PARTICIPANTS)],
    Annotated[dict[_FieldName, _Value1], msgspec.Meta(max_length=50)],
]
_Value3 = Union[  # noqa: UP007
    _Scalar,
    Annotated[list[_Value2], msgspec.Meta(max_length=MAX_PARTICIPANTS)],
    Annotated[dict[_FieldName, _Value2], msgspec.Meta(max_length=50)],
]
Changes = Annotated[dict[_FieldName, _Value3], msgspec.Meta(min_length=1, max_length=30)]
"""A correction: field name to new value, at most 30 fields."""
