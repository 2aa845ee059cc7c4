"""Whether each projection can serve (``/ready``, and the projection gauges of ``/metrics``):
how far it lags, whether the application role can read its tables, whether it is paused
before a quarantined event, and how this process's runner of it is doing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.privileges import unreadable_tables
from projections.quarantine import held_events
from projections.runner import projection_lag
from service.projectors import PROJECTIONS
from service.schemas import ProjectionStatus

if TYPE_CHECKING:
    from projections.quarantine import QuarantinedEvent
    from projections.runner import Projection
    from service.runtime import Runtime

__all__ = ("projection_statuses",)


async def projection_statuses(runtime: Runtime) -> list[ProjectionStatus]:
    """The state of every projection's live version (``problem`` says why one is not ok)."""
    statuses: list[ProjectionStatus] = []
    for name in PROJECTIONS:
        projection = await runtime.live.projection(name)
        lag = await projection_lag(runtime.pool, projection)
        held = await held_events(runtime.pool, projection.name, projection.version)
        runner, runner_problem = _runner(runtime, name)
        problem = (
            await _unreadable(runtime, projection)
            or _paused(projection.name, held)
            or runner_problem
            or _behind(runtime, name, lag.seconds)
        )
        statuses.append(
            ProjectionStatus(
                name=name,
                version=projection.version,
                lag_events=lag.events,
                lag_seconds=lag.seconds,
                ok=problem is None,
                problem=problem,
                quarantined=len(held),
                runner=runner,
            )
        )
    return statuses


async def _unreadable(runtime: Runtime, projection: Projection) -> str | None:
    tables = await unreadable_tables(runtime.pool, projection)
    if not tables:
        return None
    return (
        f"projection {projection.name}: the application role cannot read {', '.join(tables)} "
        "(as their owner: SELECT grant_projection_tables())"
    )


def _paused(name: str, held: list[QuarantinedEvent]) -> str | None:
    if not held:
        return None
    event = held[0]
    return (
        f"projection {name} is paused before event {event.event_id} ({event.type}, position "
        f"{event.position}), which failed {event.attempts} times: {event.error}; once fixed, "
        f"`diplofeed quarantine release {name}` (or --skip to go past it)"
    )


def _runner(runtime: Runtime, name: str) -> tuple[str | None, str | None]:
    """This process's runner of ``name``: its state, and what is wrong with it if anything."""
    supervisor = runtime.supervisors.get(name)
    if supervisor is None:
        return None, None  # another process runs the projections
    task = runtime.projection_tasks[name]
    if task.done():
        why = "cancelled" if task.cancelled() else repr(task.exception())
        return "stopped", f"projection {name}: its runner has stopped ({why})"
    if supervisor.state == "restarting":
        return "restarting", (
            f"projection {name}: its runner failed ({supervisor.last_error}); restarting"
        )
    runner = runtime.runners[name].runner
    if runner is None:
        return "starting", None
    if runner.state == "retrying" and runner.failures >= runner.poison_after:
        return runner.state, (
            f"projection {name} keeps failing ({runner.failures} times in a row): "
            f"{runner.last_error}"
        )
    return runner.state, None


def _behind(runtime: Runtime, name: str, seconds: float) -> str | None:
    if seconds <= runtime.settings.ready_max_lag_s:
        return None
    return f"projection {name} is {seconds:.1f}s behind"
