"""Which meeting an event belongs to.

A meeting stream's events belong to that meeting; a declaration or interaction stream is linked
to a meeting by its first fact that names one (``DeclarationDrafted.meeting_id``,
``MeetingHeld.meeting_id``), and every later event of the stream (signatures, refusals,
corrections, retractions) follows that link. A source added to a fact belongs to a meeting only
in the meeting's own stream: no roster shows the sources of declarations or interactions. The
projection keeps the links in ``<prefix>_links_v<n>`` so a batch needs no scan of earlier
events.

Known limitation: a correction that changes the ``meeting_id`` link of a declaration or an
interaction drops it from its old meeting's roster, but does not move it to the new one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from events.domain.catalogue import CATALOGUE, DeclarationDrafted, MeetingHeld, SourceAdded
from events.errors import UnknownEventTypeError
from events.records import Cursor, RecordedEvent, category_of
from projections.roster.fold import Fact

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    import asyncpg

__all__ = ("Routes", "decode", "may_belong", "route_all", "route_rows")

log = logging.getLogger("projections.roster")


class Routes:
    """Links declaration and interaction streams to meetings; see ``projections.roster.routes``.

    ``links`` maps a stream id to its meeting; the projection preloads the links of a batch's
    streams and saves ``new_links``.
    """

    def __init__(self, links: dict[str, str] | None = None) -> None:
        self.links: dict[str, str] = dict(links or {})
        self.new_links: dict[str, str] = {}

    def route(self, fact: Fact) -> str | None:
        """The meeting ``fact`` belongs to (``None``: none, or it adds nothing to a roster)."""
        event = fact.event
        stream_id = fact.stream_id
        if category_of(stream_id) == "meeting":
            return stream_id.split("-", 1)[1]
        if isinstance(event, SourceAdded):
            # Only a meeting's own facts show their sources (its factions' attendance).
            return None
        linked = self.links.get(stream_id)
        if linked is not None:
            return linked
        meeting_id = getattr(event, "meeting_id", None)
        if isinstance(event, (DeclarationDrafted, MeetingHeld)) and meeting_id:
            self.links[stream_id] = self.new_links[stream_id] = meeting_id
            return str(meeting_id)
        return None


def _might_route(stream_id: str, data: str, routes: Routes) -> bool:
    """Cheap pre-check before decoding: most interactions belong to no meeting."""
    if category_of(stream_id) == "meeting" or stream_id in routes.links:
        return True
    return '"meeting_id"' in data


def may_belong(recorded: RecordedEvent) -> bool:
    """``_might_route`` before the links are known: a stream can only be linked already when
    this is not its first event."""
    if recorded.stream_version > 1 or category_of(recorded.stream_id) == "meeting":
        return True
    return '"meeting_id"' in recorded.data


def decode(recorded: RecordedEvent) -> Fact | None:
    try:
        return Fact.of(recorded)
    except UnknownEventTypeError:
        # Not a domain event (a test or tooling event in a domain category): no roster's business.
        log.warning("roster skips event %s of unknown type %r", recorded.event_id, recorded.type)
        return None


def route_all(
    events: Iterable[RecordedEvent],
    routes: Routes,
    decoded: Mapping[int, Fact | None] | None = None,
) -> dict[str, list[Fact]]:
    """The events that belong to a meeting, decoded and grouped by meeting, in feed order.

    ``decoded`` holds facts decoded beforehand, by the event's position in ``events``."""
    grouped: dict[str, list[Fact]] = {}
    for index, recorded in enumerate(events):
        if not _might_route(recorded.stream_id, recorded.data, routes):
            continue
        fact = decoded[index] if decoded is not None and index in decoded else decode(recorded)
        if fact is None:
            continue
        meeting_id = routes.route(fact)
        if meeting_id is not None:
            grouped.setdefault(meeting_id, []).append(fact)
    return grouped


def route_rows(rows: Iterable[asyncpg.Record], wanted: set[str]) -> dict[str, list[Fact]]:
    """``route_all`` for rows of ``EARLIER_FACTS_SQL``, keeping the meetings in ``wanted``.

    Routing starts afresh: a stream's link is made by the stream's own first fact that names
    a meeting, and the rows hold every earlier event of each stream they come from."""
    routes = Routes()
    grouped: dict[str, list[Fact]] = {}
    for row in rows:
        stream_id = row["stream_id"]
        if not _might_route(stream_id, row["data"], routes):
            continue
        event_id = str(row["event_id"])
        try:
            event = CATALOGUE.decode_data(
                row["type"], row["schema_version"], row["data"], event_id=event_id
            )
        except UnknownEventTypeError:
            continue  # skipped, with a warning, when it was first applied
        fact = Fact(
            event_id=event_id,
            stream_id=stream_id,
            recorded_at=row["recorded_at"],
            cursor=Cursor(row["transaction_id"], row["position"]),
            event=event,
        )
        meeting_id = routes.route(fact)
        if meeting_id in wanted:
            grouped.setdefault(meeting_id, []).append(fact)
    return grouped
