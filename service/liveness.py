"""This process's proof of life to the others: an advisory lock it holds while it runs.

A write in flight holds its ``Idempotency-Key`` (``service.idempotency``); when its process dies
(``kill -9``, a crashed container) nothing gives the key back, and its lease kept every retry out
for half a minute. Each process therefore holds a session-level advisory lock, keyed by a random
token, on a connection of its own, and stamps its claims with the token. The server frees the
lock the moment the process's connection closes, which the kernel does for a killed process,
so another process finding a claim whose owner's lock is free knows the owner is gone and takes
the claim over at once (safe: the command itself is idempotent by its key).

The lock lives on a connection of the process's own (``events.session``), never a pooled one.
While that connection is down (the database restarting) the process does not stamp its claims,
which then fall back to the lease; once it is back the process takes its lock again (under a
new token should another process have drawn the old one meanwhile).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Final

from events.notify import CONNECTION_ERRORS
from events.session import HeldSession

if TYPE_CHECKING:
    import asyncpg

__all__ = ("OWNER_LOCK_SPACE", "Liveness")

OWNER_LOCK_SPACE: Final = 0x64666C76
"""The first half of the two-key advisory locks this module takes ("dflv"): claim owners'
locks never meet any other lock (single-key locks live in a space of their own)."""

LOCK_SQL: Final = "SELECT pg_try_advisory_lock($1::integer, $2::integer)"


class Liveness(HeldSession):
    """Holds this process's owner lock in the background (see the module docstring)."""

    what = "liveness lock (claims fall back to their lease until it is back)"
    retry_on = CONNECTION_ERRORS
    _token: int | None = None
    _held = False

    @property
    def owner(self) -> int | None:
        """The token to stamp claims with while the lock is held; ``None`` otherwise."""
        return self._token if self._held else None

    async def _up(self, conn: asyncpg.Connection) -> None:
        # The same token again after a reconnection, so the claims stamped with it are covered
        # again, unless another process has drawn it meanwhile.
        token = self._token if self._token is not None else secrets.randbits(31)
        while not await conn.fetchval(LOCK_SQL, OWNER_LOCK_SPACE, token):
            token = secrets.randbits(31)
        self._token, self._held = token, True

    def _down(self) -> None:
        self._held = False
