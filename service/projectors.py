"""The projections Diplofeed runs, by name, and which version of each serves reads."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

from projections.audit import AuditProjection
from projections.contacts import ContactsProjection
from projections.rebuild import live_version
from projections.roster import RosterProjection

if TYPE_CHECKING:
    from collections.abc import Callable

    import asyncpg

    from projections.runner import Projection

__all__ = ("PROJECTIONS", "LiveVersions")

PROJECTIONS: Final[dict[str, Callable[[int], Projection]]] = {
    "roster": lambda version: RosterProjection(version=version),
    "contacts": lambda version: ContactsProjection(version=version),
    "audit": lambda version: AuditProjection(version=version),
}
"""Every projection's name and how to make a given version of it."""


class LiveVersions:
    """The live version of each projection, looked up at most once per ``ttl`` seconds (a
    rebuild's switch reaches every API process within ``ttl``)."""

    def __init__(self, pool: asyncpg.Pool, *, ttl: float = 1.0) -> None:
        self._pool = pool
        self._ttl = ttl
        self._known: dict[str, tuple[float, Projection]] = {}

    async def projection(self, name: str) -> Projection:
        """The version of projection ``name`` that serves reads now."""
        now = time.monotonic()
        known = self._known.get(name)
        if known is not None and known[0] > now:
            return known[1]
        version = await live_version(self._pool, name) or 1
        projection = PROJECTIONS[name](version)
        self._known[name] = (now + self._ttl, projection)
        return projection
