"""The rows of the contacts projection's interaction tables, in the column order COPY and the
upsert take them: one layout for the full path (``projections.contacts``) and the single-event
shortcut (``projections.single_fact``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import date

__all__ = (
    "INTERACTION_COLUMNS",
    "LINK_COLUMNS",
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
)
LINK_COLUMNS: Final = ("interaction_id", "actor_id", "role", "name_as_reported")

InteractionRow = tuple[
    str, str | None, str | None, "date | None", "date | None", str | None, bool, bool, bool
]
"""One row of ``INTERACTION_COLUMNS``."""
LinkRow = tuple[str, str, str, str | None]
"""One row of ``LINK_COLUMNS``."""


class _Days(Protocol):
    @property
    def lower(self) -> date | None: ...
    @property
    def upper(self) -> date | None: ...
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
    item: str, kind: str, view: str, days: _Days, *, negated: bool
) -> InteractionRow:
    """The row of a live interaction whose view (JSON text) is ``view``."""
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
    )


def retracted_row(item: str, kind: str | None) -> InteractionRow:
    """The row of a retracted interaction: no view, but its kind, for the kind filter."""
    return (item, kind, None, None, None, None, True, False, kind == "contacts")


def link_rows(item: str, participants: Iterable[_Participant]) -> list[LinkRow]:
    """One row per actor and role of ``participants`` (a source may name one twice)."""
    rows: list[LinkRow] = []
    seen: set[tuple[str, str]] = set()
    for p in participants:
        key = (p.actor_id, p.role)
        if key not in seen:
            seen.add(key)
            rows.append((item, p.actor_id, p.role, p.name_as_reported))
    return rows
