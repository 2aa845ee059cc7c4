"""What an export leaves out and why: the reasons, and a tally that counts each and names the
first few interactions, so the summary says which were left out in constant memory."""

from __future__ import annotations

from typing import Final, Literal

import msgspec

__all__ = ("REASONS", "LeftOut", "Reason", "Tally")

Reason = Literal["negated", "no_acting_party", "no_first_day", "no_plover_type"]

REASONS: Final[dict[Reason, str]] = {
    "negated": "negated (reported as not happening)",
    "no_acting_party": "with nobody acting (every participant is acted upon)",
    "no_first_day": "with no first day (an open start: PLOVER requires a date)",
    "no_plover_type": "with no PLOVER event type (a plain address or statement)",
}
"""How the summary words each reason."""

NAMED: Final = 10
"""How many interactions the summary names for each reason."""


class LeftOut(msgspec.Struct, frozen=True):
    """Why an interaction has no record in an export (worded in ``REASONS``)."""

    reason: Reason


class Tally:
    """The interactions an export left out, by reason, and the negations it wrote marked."""

    def __init__(self) -> None:
        self.counts: dict[Reason, int] = {}
        self.named: dict[Reason, list[str]] = {}
        self.negations_marked = 0

    def leave_out(self, interaction_id: str, left_out: LeftOut) -> None:
        """Count ``interaction_id`` as left out for ``left_out.reason``."""
        reason = left_out.reason
        self.counts[reason] = self.counts.get(reason, 0) + 1
        named = self.named.setdefault(reason, [])
        if len(named) < NAMED:
            named.append(interaction_id)

    @property
    def total(self) -> int:
        """How many interactions were left out."""
        return sum(self.counts.values())

    def lines(self) -> list[str]:
        """One line per reason: how many, why, and which (the first ``NAMED``)."""
        lines: list[str] = []
        for reason in sorted(self.counts):
            count, named = self.counts[reason], self.named[reason]
            more = f" and {count - len(named):,} more" if count > len(named) else ""
            lines.append(f"left out {count:,} {REASONS[reason]}: {', '.join(named)}{more}")
        if self.negations_marked:
            lines.append(f"marked {self.negations_marked:,} negated with PLOVER mode 'negation'")
        return lines
