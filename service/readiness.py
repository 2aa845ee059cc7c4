"""Whether each projection can serve: how far it lags, and whether the application role can
read its tables (``/ready``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.privileges import unreadable_tables
from projections.runner import projection_lag
from service.projectors import PROJECTIONS
from service.schemas import ProjectionStatus

if TYPE_CHECKING:
    from service.runtime import Runtime

__all__ = ("projection_statuses",)


async def projection_statuses(runtime: Runtime) -> list[ProjectionStatus]:
    """The state of every projection's live version (``problem`` says why one is not ok)."""
    limit = runtime.settings.ready_max_lag_s
    statuses: list[ProjectionStatus] = []
    for name in PROJECTIONS:
        projection = await runtime.live.projection(name)
        lag = await projection_lag(runtime.pool, projection)
        problem: str | None = None
        unreadable = await unreadable_tables(runtime.pool, projection)
        if unreadable:
            problem = (
                f"projection {name}: the application role cannot read {', '.join(unreadable)} "
                "(as their owner: SELECT grant_projection_tables())"
            )
        elif lag.seconds > limit:
            problem = f"projection {name} is {lag.seconds:.1f}s behind"
        statuses.append(
            ProjectionStatus(
                name=name,
                version=projection.version,
                lag_events=lag.events,
                lag_seconds=lag.seconds,
                ok=problem is None,
                problem=problem,
            )
        )
    return statuses
