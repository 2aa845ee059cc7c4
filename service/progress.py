"""A progress bar for long commands: click's bar on standard error, with count and rate.

Standard error, so that an export to standard output stays clean; click draws nothing
animated when standard error is not a terminal, and the summary line is printed either way.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ("Progress",)


class Progress:
    """``with Progress("exporting", total) as bar: bar.advance(n)``; ``total`` may be 0 when
    unknown. On exit it prints one line: how many, how long, how fast."""

    def __init__(self, label: str, total: int, *, unit: str = "events") -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self._started = time.monotonic()
        self._bar: Any = None

    def rate(self) -> float:
        """Items per second so far."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        return self.done / elapsed

    def _info(self, _item: object) -> str:
        return f"{self.rate():,.0f} {self.unit}/s"

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        self._bar = click.progressbar(
            length=max(self.total, 1),
            label=self.label,
            file=sys.stderr,
            show_pos=True,
            show_eta=True,
            item_show_func=self._info,
        ).__enter__()
        return self

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, value, traceback)
        seconds = time.monotonic() - self._started
        click.echo(
            f"{self.label}: {self.done:,} {self.unit} in {seconds:.1f} s "
            f"({self.rate():,.0f} {self.unit}/s)",
            err=True,
        )
