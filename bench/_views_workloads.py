"""What ``bench.views`` requests: each view route with the target that makes it work hardest,
the three moments it is read at (live, as of the log's head, as of halfway), and one measured
page (a row of the report)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench._views_log import Targets
    from bench._views_measure import Load
    from events import Cursor

__all__ = ("WORKLOADS", "Mode", "Row", "Workload", "modes")


@dataclass(frozen=True)
class Workload:
    """One view request: its OpenAPI path, and its path and filters for a log's targets."""

    name: str
    template: str
    path: Callable[[Targets], str]
    query: Callable[[Targets], list[tuple[str, str]]] = lambda _: []


WORKLOADS: Final = (
    Workload(
        "/actors/{busiest organisation}/contacts",
        "/actors/{actor}/contacts",
        lambda t: f"/actors/{t.organisation}/contacts",
    ),
    Workload(
        "/actors/{busiest person}/contacts",
        "/actors/{actor}/contacts",
        lambda t: f"/actors/{t.person}/contacts",
    ),
    Workload("/meetings", "/meetings", lambda _: "/meetings"),
    Workload(
        "/meetings/{largest meeting}", "/meetings/{meeting_id}", lambda t: f"/meetings/{t.meeting}"
    ),
    Workload("/graph", "/graph", lambda _: "/graph"),
    Workload(
        "/graph?actor={busiest person}",
        "/graph",
        lambda _: "/graph",
        lambda t: [("actor", t.person)],
    ),
    Workload(
        "/feed?actor={rare actor}", "/feed", lambda _: "/feed", lambda t: [("actor", t.rare_actor)]
    ),
    Workload(
        "/feed?actor={unknown id}",
        "/feed",
        lambda _: "/feed",
        lambda t: [("actor", t.unknown_actor)],
    ),
    Workload("/audit/{event id}", "/audit/{item}", lambda t: f"/audit/{t.event_id}"),
    Workload(
        "/actors?name={common surname}",
        "/actors",
        lambda _: "/actors",
        lambda t: [("name", t.surname)],
    ),
)


@dataclass(frozen=True)
class Mode:
    """When a page is read: live, or as of a cursor of the log."""

    name: str
    cursor: Callable[[Targets], Cursor] | None


def modes() -> tuple[Mode, ...]:
    """Live first (the fresh server's memory is then the live view's own), then halfway and
    head."""
    return (
        Mode("live", None),
        Mode("as-of half", lambda t: t.halfway),
        Mode("as-of head", lambda t: t.head),
    )


@dataclass(frozen=True)
class Row:
    """One page measured (or why it was not)."""

    size: int
    workload: str
    mode: str
    page: str
    url: str = ""
    status: int | None = None
    """The HTTP status of its sequential requests; ``None``: not requested."""
    median_ms: float | None = None
    p99_ms: float | None = None
    bytes: int | None = None
    load: Load | None = None
    note: str = ""
