"""Keeping the feed's actor index (migration 0006, ``event_actor_refs``) near the log's head in
the background, so that no reader of ``/feed?actor=`` pays for indexing a burst of appends.

Readers still bring the index up to the horizon themselves (``EventStore.index_actor_refs``),
so the answer never depends on this task: it only moves the work off the request path, and
keeps the checkpoint current for hot standbys, which replicate it and cannot index.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from events.store import EventStore

__all__ = ("keep_actor_refs_indexed",)

log = logging.getLogger(__name__)

IDLE_S: Final = 0.5
"""How long the indexer rests when it found nothing (or only a partial chunk) to index."""
_MAX_BACKOFF_S: Final = 30.0


async def keep_actor_refs_indexed(store: EventStore, *, idle: float = IDLE_S) -> None:
    """Index new events every ``idle`` seconds (at once again while a burst is being
    worked through), until cancelled. A failure (the database restarting, a standby) is
    logged and retried with a growing pause, never raised: the index is an optimisation."""
    backoff = idle
    while True:
        try:
            indexed = await store.index_actor_refs()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 (retried; readers index for themselves)
            log.warning("actor index: %s; retrying in %.1f s", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_S)
            continue
        backoff = idle
        if indexed < store.actor_refs_batch:
            await asyncio.sleep(idle)
