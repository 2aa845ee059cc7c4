"""The versioned table from interaction kind to event-data codes (CAMEO, Goldstein, PLOVER).

Commands name an interaction by kind ("phone_call", "apology"...); the event records the codes
this table gives, stamped with ``MAPPING_VERSION``, so a later change to the table never rewrites
what was recorded and a projection can tell which mapping a record followed. An analyst can
override any code for one interaction; the record then says ``overridden=True``.

Each interaction kind's row is registered with the kind (``events.domain.kinds``); the rows
here code the other events and three kinds no command records yet (values from the domain
notes, section 1.1; CAMEO codes are strings, leading zeros kept):

========================  =====  =========  ====  ==============================================
kind                      CAMEO  Goldstein  Quad  PLOVER type / mode
========================  =====  =========  ====  ==============================================
``host_visit``            043    2.8        1     CONSULT / visit (actor: the host)
``negotiation``           046    7.0        1     CONSULT, context diplomatic
``meeting_scheduled``     036    4.0        1     AGREE (PLOVER codes future meetings as AGREE)
``faction_invited``       036    4.0        1     AGREE (PETRARCH would say 040; PLOVER AGREE)
``attendance_confirmed``  036    4.0        1     AGREE
``attendance_declined``   125    -5.0       3     REJECT / meet
``declaration_signed``    057    8.0        1     SUPPORT ("ratify, sign, or finalize")
``signature_refused``     127    -5.0       3     REJECT / meet
``rejection``             120    -4.0       3     REJECT
========================  =====  =========  ====  ==============================================

``alternatives`` maps the name of another mapping source to the PLOVER type it gives, where the
sources disagree; the primary ``plover_type`` is the one we chose.
"""

from __future__ import annotations

import math
import re
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Final

import msgspec
from msgspec import UNSET, UnsetType

from events.domain.codes import (
    MAPPING_VERSION,
    Coding,
    check_cameo,
    quad_class_of,
    table_coding,
)
from events.domain.errors import InvalidCommandError
from events.domain.kinds import INTERACTION_KINDS

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = (
    "CODINGS",
    "KINDS",
    "MAPPING_VERSION",
    "Coding",
    "CodingOverride",
    "code_for",
    "quad_class_of",
)

# PLOVER spells event types in capitals and modes and contexts in lower case (third-party,
# human_security); we check the spelling only, the vocabularies are still moving.
_PLOVER_TYPE: Final = re.compile(r"[A-Z][A-Z_]*")
_PLOVER_WORD: Final = re.compile(r"[a-z][a-z0-9_-]*")
_GOLDSTEIN_LIMIT: Final = 10.0
# Bounds for the OpenAPI document and the decoder; the spelling is checked by the rules.
_Word = Annotated[str, msgspec.Meta(max_length=64)]


class CodingOverride(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    """An analyst's replacement for some of the table's codes; unset fields keep the table's.

    ``plover_type`` and ``plover_mode`` may be set to None to drop the table's value. When
    ``cameo`` changes and ``quad_class`` is not given, the quad class follows the new code's
    root; when ``goldstein`` is not given it is taken from the table if some kind uses that
    code, and must be given otherwise.
    """

    cameo: Annotated[str, msgspec.Meta(max_length=4)] | UnsetType = UNSET
    goldstein: Annotated[float, msgspec.Meta(ge=-10, le=10)] | UnsetType = UNSET
    quad_class: Annotated[int, msgspec.Meta(ge=1, le=4)] | UnsetType = UNSET
    plover_type: _Word | UnsetType | None = UNSET
    plover_mode: _Word | UnsetType | None = UNSET
    plover_contexts: Annotated[tuple[_Word, ...], msgspec.Meta(max_length=20)] | UnsetType = UNSET


_OTHER_ROWS: Final = {
    "host_visit": table_coding("043", 2.8, "CONSULT", "visit"),
    "negotiation": table_coding("046", 7.0, "CONSULT", contexts=("diplomatic",)),
    "meeting_scheduled": table_coding("036", 4.0, "AGREE"),
    "faction_invited": table_coding("036", 4.0, "AGREE"),
    "attendance_confirmed": table_coding("036", 4.0, "AGREE"),
    "attendance_declined": table_coding("125", -5.0, "REJECT", "meet"),
    "declaration_signed": table_coding("057", 8.0, "SUPPORT"),
    "signature_refused": table_coding("127", -5.0, "REJECT", "meet"),
    "rejection": table_coding("120", -4.0, "REJECT"),
}
if _CLASH := sorted(set(_OTHER_ROWS).intersection(INTERACTION_KINDS.names())):
    raise TypeError(f"interaction kinds {_CLASH} already name a row of the coding table")

# Read-only so that no caller can change the table behind MAPPING_VERSION's back; code_for
# hands out copies because Coding.alternatives is a (mutable) dict.
CODINGS: Final[Mapping[str, Coding]] = MappingProxyType(
    {**{kind.name: kind.coding for kind in INTERACTION_KINDS}, **_OTHER_ROWS}
)
"""The mapping table, version ``MAPPING_VERSION``, keyed by kind: every interaction kind's
row, then the rows above."""

KINDS: Final = frozenset(CODINGS)
"""The interaction kinds ``code_for`` knows."""

# The Goldstein score of each CAMEO code the table uses, for overrides that change the code.
_GOLDSTEIN_BY_CAMEO: Final = MappingProxyType({c.cameo: c.goldstein for c in CODINGS.values()})


def code_for(
    kind: str, *, override: CodingOverride | None = None, contexts: tuple[str, ...] = ()
) -> Coding:
    """The codes of an interaction of ``kind``.

    Args:
        kind: One of ``KINDS``.
        override: An analyst's replacement codes; any field it sets marks the coding as
            overridden. Its ``plover_contexts`` replace the table's.
        contexts: PLOVER contexts of this interaction (e.g. ``("human_security",)``), added to
            the table's (or the override's) without duplicates; they do not count as an override.

    Returns:
        A fresh ``Coding`` stamped with ``MAPPING_VERSION``.

    Raises:
        InvalidCommandError: ``kind`` is unknown (field ``coding.kind``), or an override or
            context is malformed (field ``coding.<name>``).
    """
    base = CODINGS.get(kind)
    if base is None:
        known = ", ".join(sorted(KINDS))
        raise InvalidCommandError(
            f"unknown interaction kind {kind!r}; known kinds: {known}", field="coding.kind"
        )
    coding = msgspec.structs.replace(base, alternatives=dict(base.alternatives))
    if override is not None:
        coding = _apply(coding, override)
    _check_words(contexts, "coding.contexts")
    merged = tuple(dict.fromkeys((*coding.plover_contexts, *contexts)))
    if merged != coding.plover_contexts:
        coding = msgspec.structs.replace(coding, plover_contexts=merged)
    return coding


def _apply(coding: Coding, override: CodingOverride) -> Coding:
    changes: dict[str, object] = {}
    cameo = override.cameo
    if not isinstance(cameo, UnsetType):
        check_cameo(cameo)
        changes["cameo"] = cameo
    goldstein = override.goldstein
    if not isinstance(goldstein, UnsetType):
        changes["goldstein"] = _checked_goldstein(goldstein)
    elif not isinstance(cameo, UnsetType) and cameo != coding.cameo:
        # Keeping the old score with a new code would record a score that belongs to neither.
        known = _GOLDSTEIN_BY_CAMEO.get(cameo)
        if known is None:
            raise InvalidCommandError(
                f"give the Goldstein score of CAMEO {cameo}; the mapping table does not use it",
                field="coding.goldstein",
            )
        changes["goldstein"] = known
    quad_class = override.quad_class
    if not isinstance(quad_class, UnsetType):
        changes["quad_class"] = _checked_quad_class(quad_class)
    elif not isinstance(cameo, UnsetType):
        changes["quad_class"] = quad_class_of(cameo)
    if not isinstance(override.plover_type, UnsetType):
        if override.plover_type is not None:
            _check_plover_type(override.plover_type)
        changes["plover_type"] = override.plover_type
    if not isinstance(override.plover_mode, UnsetType):
        if override.plover_mode is not None:
            _check_words((override.plover_mode,), "coding.plover_mode")
        changes["plover_mode"] = override.plover_mode
    if not isinstance(override.plover_contexts, UnsetType):
        _check_words(override.plover_contexts, "coding.plover_contexts")
        changes["plover_contexts"] = tuple(dict.fromkeys(override.plover_contexts))
    if not changes:
        return coding
    return msgspec.structs.replace(coding, overridden=True, **changes)


def _checked_goldstein(goldstein: object) -> float:
    if (
        isinstance(goldstein, bool)
        or not isinstance(goldstein, int | float)
        or not math.isfinite(goldstein)
        or not -_GOLDSTEIN_LIMIT <= goldstein <= _GOLDSTEIN_LIMIT
    ):
        raise InvalidCommandError(
            f"Goldstein score {goldstein!r} is not a number from -10 to 10",
            field="coding.goldstein",
        )
    return float(goldstein)


def _checked_quad_class(quad_class: object) -> int:
    if isinstance(quad_class, bool) or not isinstance(quad_class, int) or not 1 <= quad_class <= 4:
        raise InvalidCommandError(
            f"quad class {quad_class!r} is not 1, 2, 3 or 4", field="coding.quad_class"
        )
    return quad_class


def _check_plover_type(plover_type: object) -> None:
    if not isinstance(plover_type, str) or _PLOVER_TYPE.fullmatch(plover_type) is None:
        raise InvalidCommandError(
            f"{plover_type!r} is not a PLOVER event type; write it in capitals (e.g. 'CONSULT')",
            field="coding.plover_type",
        )


def _check_words(words: Iterable[object], field: str) -> None:
    for word in words:
        if not isinstance(word, str) or _PLOVER_WORD.fullmatch(word) is None:
            raise InvalidCommandError(
                f"{word!r} is not a PLOVER mode or context; write it in lower case "
                "(e.g. 'third-party', 'human_security')",
                field=field,
            )
