"""Keeping long-running tasks alive: restart after a failure, waiting longer after each.

A task that follows the feed for the life of the process (a projection's runner, the actor
index) used to end for good on the first exception nobody expected, and only a growing lag
ever showed it. ``Supervised`` runs such a task again after a failure, with capped exponential
backoff, and says what it is doing, for readiness and metrics.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Literal

import msgspec

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ("Backoff", "Supervised", "describe")

log = logging.getLogger(__name__)


class Backoff(msgspec.Struct, frozen=True, kw_only=True):
    """How long to wait after the n-th failure in a row: ``initial`` doubled each time, at most
    ``cap`` seconds."""

    initial: float = 0.5
    cap: float = 30.0

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` failures in a row (at least one)."""
        return float(min(self.cap, self.initial * 2 ** max(failures - 1, 0)))


def describe(exc: BaseException) -> str:
    """An exception as one line: its class and message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class Supervised:
    """Runs ``work`` until cancelled, starting it again whenever it raises.

    A run that lasted longer than the backoff's cap counts as a recovery: the next failure
    waits ``initial`` again.
    """

    def __init__(
        self, name: str, work: Callable[[], Awaitable[None]], *, backoff: Backoff | None = None
    ) -> None:
        self.name = name
        self._work = work
        self._backoff = backoff or Backoff()
        self.state: Literal["running", "restarting", "stopped"] = "running"
        self.failures = 0
        """Failures in a row (0 while it runs well)."""
        self.restarts = 0
        self.last_error: str | None = None

    async def run(self) -> None:
        """Run ``work`` again and again; returns when it returns, raises when cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            self.state = "running"
            try:
                await self._work()
            except Exception as exc:
                if loop.time() - started > self._backoff.cap:
                    self.failures = 0
                self.failures += 1
                self.restarts += 1
                self.last_error = describe(exc)
                self.state = "restarting"
                delay = self._backoff.delay(self.failures)
                log.error("%s failed; restarting in %.1fs", self.name, delay, exc_info=exc)
                await asyncio.sleep(delay)
            else:
                self.state = "stopped"
                return
