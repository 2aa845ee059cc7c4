"""What a batch changes in the contact graph: rows out for the old forms of the interactions it
touches, rows in for their new forms, and the spans those forms (and the roles of the actors it
touches) widen or may shrink.

An interaction's live form (``Live``) is its kind, the years of its day bounds and its distinct
participants; a retracted or negated one, or one without a view, has none. A live form stands
in the graph as one row per pair of its participants and as the years it adds to each
participant's span (``Span``: the first and last year of the actor's facts). An actor's roles
(``RoleYears``: the windows of the roles its current view holds) add theirs to the span of the
actor and of the organisation it held them in. Nothing else stands in the graph: so the graph
after a batch is the graph before it with, for each interaction and actor the batch touches,
its old contribution replaced by its new one, whatever the batches.
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Final, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from projections.interaction_rows import InteractionRow, LinkRow

__all__ = (
    "Deltas",
    "Live",
    "PairRow",
    "RoleYears",
    "Span",
    "live_form",
    "participants",
    "role_years",
    "widen",
)

PairRow = tuple[str, str, str, int | None, int | None, str]
"""A row of the pairs table (``schema.PAIR_COLUMNS``)."""
Span = list[int]
"""[first, last]: the first year any of an actor's facts covers and the last (a fact covers
from its lower bound's year, else its upper's, to its upper bound's year, else its lower's)."""
RoleYears = tuple[tuple[str, int, int], ...]
"""An actor's roles as spans see them: for each role with a known bound, its organisation and
the first and last year its window covers, sorted."""


def role_years(roles: Iterable[tuple[str, int | None, int | None]]) -> RoleYears:
    """``RoleYears`` from roles given as (organisation, lower year, upper year)."""
    known: set[tuple[str, int, int]] = set()
    for organisation, low, high in roles:
        first = low if low is not None else high
        last = high if high is not None else low
        if first is not None and last is not None:
            known.add((organisation, first, last))
    return tuple(sorted(known))


class Live(NamedTuple):
    """The part of a live interaction the graph counts."""

    kind: str
    lower_year: int | None
    upper_year: int | None
    actors: tuple[str, ...]
    """Distinct participants, sorted."""

    @property
    def first(self) -> int | None:
        """The year it starts its actors' spans at: its lower bound's, else its upper's."""
        return self.lower_year if self.lower_year is not None else self.upper_year

    @property
    def last(self) -> int | None:
        """The year it ends its actors' spans at: its upper bound's, else its lower's."""
        return self.upper_year if self.upper_year is not None else self.lower_year


_RETRACTED: Final = 6
_NEGATED: Final = 7


def participants(links: Iterable[LinkRow]) -> dict[str, list[str]]:
    """Each interaction's distinct participants, from its participant rows."""
    named: dict[str, list[str]] = {}
    for link in links:
        item, actor = link[0], link[1]
        got = named.get(item)
        if got is None:
            named[item] = [actor]
        elif actor not in got:
            got.append(actor)
    return named


def live_form(row: InteractionRow, named: dict[str, list[str]]) -> Live | None:
    """An interaction's live form from its row and its participants (``participants``)."""
    item, kind, view, lower, upper = row[0], row[1], row[2], row[3], row[4]
    if view is None or kind is None or row[_RETRACTED] or row[_NEGATED]:
        return None
    return Live(
        kind,
        lower.year if lower is not None else None,
        upper.year if upper is not None else None,
        tuple(sorted(named.get(item, ()))),
    )


class Deltas:
    """The changes of one batch."""

    def __init__(self) -> None:
        self.inserted: list[PairRow] = []
        self.deleted: list[PairRow] = []
        self.extended: dict[str, Span] = {}
        """actor -> the span the new forms give it."""
        self.shrunk: dict[str, Span] = {}
        """actor -> the span the old forms gave it."""
        self.replaced: list[str] = []
        """Interactions from earlier batches whose form changed."""
        self.replaced_roles: list[str] = []
        """Actors from earlier batches whose roles changed."""

    def add_roles(self, actor: str, roles: RoleYears) -> None:
        """Widen spans by the roles of an actor new in the batch."""
        self._add_roles(actor, roles, self.extended)

    def change_roles(self, actor: str, before: RoleYears, after: RoleYears) -> None:
        """Replace an actor's old roles by its new ones (nothing when they are equal)."""
        if before == after:
            return
        self.replaced_roles.append(actor)
        self._add_roles(actor, before, self.shrunk)
        self._add_roles(actor, after, self.extended)

    @staticmethod
    def _add_roles(actor: str, roles: RoleYears, spans: dict[str, Span]) -> None:
        for organisation, first, last in roles:
            for who in (actor, organisation):
                widen(spans, who, first, last)

    def add_row(self, row: InteractionRow, named: dict[str, list[str]]) -> None:
        """Put a new interaction in the graph, from its row (the common case, kept short)."""
        kind = row[1]
        if row[2] is None or kind is None or row[_RETRACTED] or row[_NEGATED]:
            return
        lower, upper = row[3], row[4]
        self._add(
            row[0],
            kind,
            lower.year if lower is not None else None,
            upper.year if upper is not None else None,
            named.get(row[0], ()),
            sign=1,
        )

    def change(self, item: str, before: Live | None, after: Live | None) -> None:
        """Replace an interaction's old form by its new one (nothing when they are equal)."""
        if before == after:
            return
        self.replaced.append(item)
        if before is not None:
            self._add(item, *before, sign=-1)
        if after is not None:
            self._add(item, *after, sign=1)

    def _add(
        self,
        item: str,
        kind: str,
        low: int | None,
        high: int | None,
        actors: Sequence[str],
        *,
        sign: int,
    ) -> None:
        first = low if low is not None else high
        if first is not None:
            last = high if high is not None else first
            spans = self.extended if sign > 0 else self.shrunk
            for actor in actors:
                widen(spans, actor, first, last)
        rows = self.inserted if sign > 0 else self.deleted
        if len(actors) == 2:
            a, b = actors
            rows.append((a, b, kind, low, high, item) if a < b else (b, a, kind, low, high, item))
        elif len(actors) > 2:
            rows.extend((a, b, kind, low, high, item) for a, b in combinations(sorted(actors), 2))


def widen(spans: dict[str, Span], actor: str, first: int, last: int) -> None:
    """Widen ``actor``'s span in ``spans`` to cover ``first`` to ``last``."""
    span = spans.get(actor)
    if span is None:
        spans[actor] = [first, last]
    else:
        span[0] = min(span[0], first)
        span[1] = max(span[1], last)
