"""The actor events as soon as they commit, for readers that must know every committed actor at
once: plain MVCC visibility, not the feed's horizon.

The feed shows only events below the horizon (``events.store``), and one long transaction
anywhere in the cluster holds the horizon back, in any database. A command that names an actor
registered by another process (the CLI, another replica) must not wait for that: the command
handler's actor directory reads here. This is not a feed and has no cursor to resume from, only
"what committed since I last looked": each read returns the events visible in its snapshot that
the previous read's snapshot did not show, which are those of transactions at or past that
snapshot's ``xmax`` and of those it saw in progress (``pg_snapshot``: xmin, xmax, and the
transactions in progress between them). Both are found along an index of the actor events in
feed order (migration 0008), so a read costs what committed since the last one, however far
the horizon lags.

Within one read, events come in feed order, so an event comes after every event it depends on:
an event decided on another (an alias on its actor's registration, a merge on both actors) was
appended after that one committed, hence by a younger transaction, which sorts later. Across
reads, an event may come after one that sorts after it in the feed: its transaction is older
but committed later. Such events are concurrent, neither decided knowing the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from events.records import START, Cursor, RecordedEvent
from events.store import EVENT_COLUMNS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg

__all__ = ("CommittedActorEvents", "Snapshot")

# A page, in feed order after the cursor $3/$4, of what an earlier snapshot did not show: the
# transactions from the bound $1/$2 on (its xmax, or the cursor once past that) and those it saw
# in progress ($5). Each branch walks events_actor_streams (whose predicate the branches repeat
# word for word) from its bound and stops at the page's size. One statement, so the rows and
# the snapshot returned agree.
READ_ACTOR_EVENTS_SQL: Final = f"""
SELECT pg_current_snapshot()::text AS snapshot, page.*
FROM (SELECT) AS one
LEFT JOIN LATERAL (
    SELECT * FROM (
        (SELECT {EVENT_COLUMNS} FROM events
         WHERE (transaction_id, position) > ($1::xid8, $2::bigint)
           AND split_part(stream_id, '-', 1) = 'actor'
         ORDER BY transaction_id, position
         LIMIT $6)
        UNION ALL
        (SELECT {EVENT_COLUMNS} FROM events
         WHERE transaction_id = any($5::xid8[])
           AND (transaction_id, position) > ($3::xid8, $4::bigint)
           AND split_part(stream_id, '-', 1) = 'actor'
         ORDER BY transaction_id, position
         LIMIT $6)
    ) AS new
    ORDER BY transaction_id, position
    LIMIT $6
) AS page ON true
"""


class Snapshot(msgspec.Struct, frozen=True):
    """What a read saw: every transaction below ``xmax`` but those in ``in_progress``."""

    xmax: int
    in_progress: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        """From ``pg_snapshot``'s text form, ``xmin:xmax:xip,...``."""
        _xmin, xmax, xip = text.split(":")
        return cls(int(xmax), tuple(int(x) for x in xip.split(",") if x))


NOTHING_SEEN: Final = Snapshot(0, ())
"""Before the first read: every transaction is yet to be seen."""


def _event(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(*tuple(row)[1:])


class CommittedActorEvents:
    """Reads the events of actor streams committed since its last read."""

    def __init__(self, pool: asyncpg.Pool, *, page_size: int = 1_000) -> None:
        self._pool = pool
        self._page_size = page_size
        self.seen = NOTHING_SEEN
        """The snapshot of the last complete read."""

    async def read_new(self) -> AsyncIterator[list[RecordedEvent]]:
        """The events committed since the last complete read, a page at a time.

        A read that stops early (its caller's error, the database's) is repeated in full by
        the next one, so its events may come again: readers skip what they have seen.
        """
        seen, after, taken = self.seen, START, None
        while True:
            bound = max(after, Cursor(seen.xmax, 0))
            rows = await self._pool.fetch(
                READ_ACTOR_EVENTS_SQL,
                bound.transaction_id,
                bound.position,
                after.transaction_id,
                after.position,
                list(seen.in_progress),
                self._page_size,
            )
            # The first page's snapshot is the read's: later pages may show more, never less.
            taken = taken or Snapshot.parse(rows[0]["snapshot"])
            events = [] if rows[0]["position"] is None else [_event(r) for r in rows]
            if events:
                yield events
            if len(events) < self._page_size:
                self.seen = taken
                return
            after = events[-1].cursor
