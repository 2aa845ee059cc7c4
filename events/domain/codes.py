"""The event-data codes a coded event carries (CAMEO, Goldstein, PLOVER) and how they are
built from a row of the mapping table, stamped with the table's version.

The table itself is spread over the things it codes: each interaction kind's row is beside its
event type (``events.domain.kinds``), the other rows are in ``events.domain.coding``, which
also applies an analyst's overrides.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

import msgspec

from events.domain.errors import InvalidCommandError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ("MAPPING_VERSION", "Coding", "check_cameo", "quad_class_of", "table_coding")

MAPPING_VERSION: Final = "diplofeed-2026.1"
"""Bump whenever a code of the mapping table changes (``events.domain.coding.CODINGS``);
recorded codings keep the version they used."""

# A CAMEO code: a root 01..20 followed by up to two more digits (041, 0211, 1125).
_CAMEO: Final = re.compile(r"(?:0[1-9]|1[0-9]|20)[0-9]{0,2}")


class Coding(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The event-data codes of one interaction.

    Attributes:
        cameo: The CAMEO event code, a string of 2-4 digits with its leading zero ("041").
        goldstein: The Goldstein score of the CAMEO code, -10 (conflict) to 10 (cooperation).
        quad_class: 1 verbal cooperation, 2 material cooperation, 3 verbal conflict,
            4 material conflict.
        plover_type: The PLOVER event type ("CONSULT"), or None where PLOVER has none.
        plover_mode: The PLOVER mode ("phone", "visit"...), if any.
        plover_contexts: PLOVER contexts ("diplomatic", "human_security"...).
        mapping_version: The ``MAPPING_VERSION`` of the table the codes came from.
        overridden: An analyst replaced some of the table's codes for this interaction.
        alternatives: Other mapping sources' PLOVER types where they disagree with ours,
            keyed by source (``{"cameo2plover_2021": "SUPPORT"}``).
    """

    cameo: str
    goldstein: float
    quad_class: int
    plover_type: str | None
    plover_mode: str | None = None
    plover_contexts: tuple[str, ...] = ()
    mapping_version: str
    overridden: bool = False
    alternatives: dict[str, str] = msgspec.field(default_factory=dict)


def quad_class_of(cameo: str) -> int:
    """The CAMEO quad class of a code, from its two-digit root.

    Roots 01-05 are verbal cooperation (1), 06-08 material cooperation (2), 09-14 verbal
    conflict (3) and 15-20 material conflict (4).

    Raises:
        InvalidCommandError: ``cameo`` is not a CAMEO code (field ``coding.cameo``).
    """
    check_cameo(cameo)
    root = int(cameo[:2])
    if root <= 5:
        return 1
    if root <= 8:
        return 2
    if root <= 14:
        return 3
    return 4


def check_cameo(cameo: object) -> None:
    """Refuse anything but a CAMEO code (``InvalidCommandError``, field ``coding.cameo``)."""
    if not isinstance(cameo, str) or _CAMEO.fullmatch(cameo) is None:
        raise InvalidCommandError(
            f"{cameo!r} is not a CAMEO code: write 2-4 digits as a string, with the leading "
            "zero, starting with a root 01-20 (e.g. '041')",
            field="coding.cameo",
        )


def table_coding(
    cameo: str,
    goldstein: float,
    plover_type: str | None,
    plover_mode: str | None = None,
    *,
    contexts: tuple[str, ...] = (),
    alternatives: Mapping[str, str] | None = None,
) -> Coding:
    """One row of the mapping table: the quad class follows the CAMEO root, the version is
    ``MAPPING_VERSION``."""
    return Coding(
        cameo=cameo,
        goldstein=goldstein,
        quad_class=quad_class_of(cameo),
        plover_type=plover_type,
        plover_mode=plover_mode,
        plover_contexts=contexts,
        mapping_version=MAPPING_VERSION,
        alternatives=dict(alternatives or {}),
    )
