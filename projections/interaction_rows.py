"""The rows of the contacts projection's interaction tables, in the column order COPY takes
them: one layout for the full path (``projections.contacts``) and the single-event shortcut
(``projections.single_fact``).

Every row is one version of its interaction, current over the feed-cursor range
``[sys_from, sys_to)`` (``projections.system_time``). A version's link rows share its range and
carry what a contact history orders and filters on (kind, day bounds, negation), so that a
history pages through the links' index alone and reads views only for the page's entries.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = (
    "INTERACTION_COLUMNS",
    "LINK_COLUMNS",
    "OPEN_BOUND",
    "InteractionRow",
    "LinkRow",
    "interaction_row",
    "link_rows",
    "retracted_row",
)

INTERACTION_COLUMNS: Final = (
    "interaction_id",
    "kind",
    "view",
    "lower",
    "upper",
    "precision",
    "retracted",
    "negated",
    "aggregate",
    "sys_from",
    "sys_to",
)
LINK_COLUMNS: Final = (
    "interaction_id",
    "actor_id",
    "role",
    "name_as_reported",
    "kind",
    "lower_key",
    "upper_key",
    "negated",
    "sys_from",
    "sys_to",
)
OPEN_BOUND: Final = datetime.date.min
"""What an open day bound is stored as in the links' sort columns: PostgreSQL's ``-infinity``
(asyncpg's ``date.min``), so that open bounds sort last in a newest-first order and a keyset
comparison never meets a NULL."""

InteractionRow = tuple[
    str,
    str | None,
    str | None,
    "datetime.date | None",
    "datetime.date | None",
    str | None,
    bool,
    bool,
    bool,
    bytes,
    bytes | None,
]
"""One row of ``INTERACTION_COLUMNS``."""
LinkRow = tuple[
    str, str, str, str | None, str, "datetime.date", "datetime.date", bool, bytes, bytes | None
]
"""One row of ``LINK_COLUMNS``."""


class _Days(Protocol):
    @property
    def lower(self) -> datetime.date | None: ...
    @property
    def upper(self) -> datetime.date | None: ...
    @property
    def precision(self) -> str: ...


class _Participant(Protocol):
    @property
    def actor_id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def name_as_reported(self) -> str | None: ...


def interaction_row(
    item: str,
    kind: str,
    view: str,
    days: _Days,
    *,
    negated: bool,
    sys_from: bytes,
    sys_to: bytes | None,
) -> InteractionRow:
    """The row of a live interaction version whose view (JSON text) is ``view``."""
    return (
        item,
        kind,
        view,
        days.lower,
        days.upper,
        days.precision,
        False,
        negated,
        kind == "contacts",
        sys_from,
        sys_to,
    )


def retracted_row(
    item: str, kind: str | None, *, sys_from: bytes, sys_to: bytes | None
) -> InteractionRow:
    """The row of a retracted interaction version: no view, but its kind, for the kind filter."""
    return (item, kind, None, None, None, None, True, False, kind == "contacts", sys_from, sys_to)


def link_rows(
    item: str,
    participants: Iterable[_Participant],
    *,
    kind: str,
    days: _Days,
    negated: bool,
    sys_from: bytes,
    sys_to: bytes | None,
) -> list[LinkRow]:
    """One row per actor and role of ``participants`` (a source may name one twice), for the
    interaction version ``[sys_from, sys_to)``."""
    lower = OPEN_BOUND if days.lower is None else days.lower
    upper = OPEN_BOUND if days.upper is None else days.upper
    rows: list[LinkRow] = []
    seen: set[tuple[str, str]] = set()
    for p in participants:
        key = (p.actor_id, p.role)
        if key not in seen:
            seen.add(key)
            rows.append(
                (
                    item,
                    p.actor_id,
                    p.role,
                    p.name_as_reported,
                    kind,
                    lower,
                    upper,
                    negated,
                    sys_from,
                    sys_to,
                )
            )
    return rows
