"""Prometheus metrics beyond Litestar's per-request ones: command latency and outcomes, and
gauges of how far the feed and the projections lag, read from the database at scrape time.

The metric objects are module-level: prometheus_client registers each name once per process,
and every app built in the process (tests build many) shares them.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

from prometheus_client import Counter, Gauge, Histogram

from events.horizon import horizon_lag
from service.readiness import projection_statuses

if TYPE_CHECKING:
    from collections.abc import Iterator

    from service.runtime import Runtime

__all__ = ("observe_command", "refresh_gauges")

COMMAND_SECONDS = Histogram(
    "diplofeed_command_seconds",
    "Time to decide and append one command (the append latency seen by writers)",
    ["command"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
COMMANDS = Counter(
    "diplofeed_commands_total", "Commands handled, by command and outcome", ["command", "outcome"]
)
HORIZON_LAG_SECONDS = Gauge(
    "diplofeed_feed_horizon_lag_seconds",
    "How long the oldest committed event invisible to followers has waited",
)
HORIZON_HELD_BACK = Gauge(
    "diplofeed_feed_horizon_held_back_events",
    "Committed events followers cannot see yet (an open transaction holds the horizon)",
)
PROJECTION_LAG_EVENTS = Gauge(
    "diplofeed_projection_lag_events", "Visible events a projection has not applied", ["name"]
)
PROJECTION_LAG_SECONDS = Gauge(
    "diplofeed_projection_lag_seconds",
    "Age of the oldest event a projection has not applied",
    ["name"],
)
PROJECTION_QUARANTINED = Gauge(
    "diplofeed_projection_quarantined_events",
    "Events a projection is paused before: they failed however often they were tried",
    ["name"],
)
RUNNER_STATES: Final = (
    "starting",
    "standby",
    "active",
    "retrying",
    "paused",
    "restarting",
    "stopped",
)
PROJECTION_RUNNER = Gauge(
    "diplofeed_projection_runner",
    "1 for the state this process's runner of a projection is in, 0 for the others (no series "
    "where another process runs the projections)",
    ["name", "state"],
)
PROJECTION_RUNNER_RESTARTS = Gauge(
    "diplofeed_projection_runner_restarts",
    "Times this process's runner of a projection started again after a failure",
    ["name"],
)
SSE_SUBSCRIBERS = Gauge("diplofeed_sse_subscribers", "Open live-stream (SSE) connections")


@contextmanager
def observe_command(command: str) -> Iterator[None]:
    """Time a command and count its outcome (``ok`` or the error's class)."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except Exception as exc:
        outcome = type(exc).__name__
        raise
    finally:
        COMMAND_SECONDS.labels(command).observe(time.perf_counter() - started)
        COMMANDS.labels(command, outcome).inc()


async def refresh_gauges(runtime: Runtime) -> None:
    """Read the lags now (called by ``/metrics`` before it renders)."""
    SSE_SUBSCRIBERS.set(runtime.hub.subscribers)
    lag = await horizon_lag(runtime.pool)
    HORIZON_LAG_SECONDS.set(lag.seconds_behind)
    HORIZON_HELD_BACK.set(lag.events_held_back)
    for status in await projection_statuses(runtime):
        name = status.name
        PROJECTION_LAG_EVENTS.labels(name).set(status.lag_events)
        PROJECTION_LAG_SECONDS.labels(name).set(status.lag_seconds)
        PROJECTION_QUARANTINED.labels(name).set(status.quarantined)
        if status.runner is not None:
            for state in RUNNER_STATES:
                PROJECTION_RUNNER.labels(name, state).set(state == status.runner)
        supervisor, live = runtime.supervisors.get(name), runtime.runners.get(name)
        if supervisor is not None and live is not None:
            restarts = supervisor.restarts + (live.runner.restarts if live.runner else 0)
            PROJECTION_RUNNER_RESTARTS.labels(name).set(restarts)
