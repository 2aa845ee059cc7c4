"""What a batch changes in the contact graph: counts after minus counts before, as sums.

An interaction's live form (``Live``) is its kind, the years of its day bounds and its distinct
participants; a retracted or negated one, or one without a view, has none. Each live form adds
to the graph's aggregates (``projections.graph.schema``) and nothing else does, so the graph
after a batch is the graph before it plus, for each interaction the batch touches, its
contribution after minus its contribution before. Because every aggregate is a sum (the spans
are the extremes of the years the live forms name), applying the same interactions in batches
of any size gives the same tables.
"""

from __future__ import annotations

from itertools import combinations, groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Final, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterable

    from projections.interaction_rows import InteractionRow, LinkRow

__all__ = ("Deltas", "Live", "live_forms")


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


def live_forms(
    interactions: Iterable[InteractionRow], links: Iterable[LinkRow]
) -> dict[str, Live | None]:
    """Each interaction's live form from the rows the contacts projection writes for it."""
    actors: dict[str, tuple[str, ...]] = {}
    # An interaction's participant rows come one after another: a group each.
    for item, group in groupby(links, key=itemgetter(0)):
        named = {link[1] for link in group}
        if item in actors:
            named.update(actors[item])
        actors[item] = tuple(sorted(named))
    forms: dict[str, Live | None] = {}
    for row in interactions:
        item, kind, view, lower, upper = row[0], row[1], row[2], row[3], row[4]
        if view is None or kind is None or row[_RETRACTED] or row[_NEGATED]:
            forms[item] = None
            continue
        forms[item] = Live(
            kind,
            lower.year if lower is not None else None,
            upper.year if upper is not None else None,
            actors.get(item, ()),
        )
    return forms


class Deltas:
    """The changes of one batch to each aggregate, keyed as the tables are."""

    def __init__(self) -> None:
        self.edges: dict[tuple[str, str, str, int], list[int]] = {}
        """(a, b, kind, year) -> [certain, possible]."""
        self.open: dict[tuple[str, str, str, int | None, int | None], int] = {}
        """(a, b, kind, lower year, upper year) -> interactions."""
        self.weights: dict[tuple[str, str], list[int]] = {}
        """(a, b) -> [certain, possible] summed over the closed counts of every kind."""
        self.extended: dict[str, list[int]] = {}
        """actor -> [first, last]: the extremes of the years added to its span."""
        self.shrunk: dict[str, list[int]] = {}
        """actor -> [first, last]: the extremes of the years taken from its span."""

    def add(self, live: Live, sign: int) -> None:
        """Count ``live`` once more (``sign`` 1) or once less (-1)."""
        kind, low, high, actors = live
        first = low if low is not None else high
        if first is not None:
            self._widen(self.extended if sign > 0 else self.shrunk, live, first)
        if len(actors) < 2:
            return
        pairs = [actors] if len(actors) == 2 else list(combinations(actors, 2))
        if low is None or high is None:
            for a, b in pairs:
                shape = (a, b, kind, low, high)
                self.open[shape] = self.open.get(shape, 0) + sign
            return
        certain = sign if low == high else 0
        weight = sign * max(0, high - low + 1)
        edges, weights = self.edges, self.weights
        for a, b in pairs:
            for year in range(low, high + 1):
                counts = edges.get((a, b, kind, year))
                if counts is None:
                    edges[(a, b, kind, year)] = [certain, sign]
                else:
                    counts[0] += certain
                    counts[1] += sign
            if weight:
                totals = weights.get((a, b))
                if totals is None:
                    weights[(a, b)] = [certain, weight]
                else:
                    totals[0] += certain
                    totals[1] += weight

    @staticmethod
    def _widen(spans: dict[str, list[int]], live: Live, first: int) -> None:
        last = live.upper_year if live.upper_year is not None else first
        for actor in live.actors:
            span = spans.get(actor)
            if span is None:
                spans[actor] = [first, last]
            else:
                span[0] = min(span[0], first)
                span[1] = max(span[1], last)

    def change(self, before: Live | None, after: Live | None) -> None:
        """Replace ``before``'s contribution by ``after``'s (nothing when they are equal)."""
        if before == after:
            return
        if before is not None:
            self.add(before, -1)
        if after is not None:
            self.add(after, 1)
