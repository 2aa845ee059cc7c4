"""A runner that meets an exception it did not expect: it starts again after a transient one,
and an event that fails however often it is tried is quarantined, the projection paused before
it until an operator releases it (to be tried again, or gone past)."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Final

import pytest

from events import ConnectionOptions, EventStore, NewEvent
from events.connect import connect
from projections.quarantine import QuarantinedEvent, held_events, list_quarantine, release
from projections.rebuild import rebuild
from projections.runner import ProjectionRunner, checkpoint_of
from projections.supervision import Backoff, Supervised
from tests.test_runner import Counter, _running

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg

    from events import RecordedEvent

FAST: Final = Backoff(initial=0.01, cap=0.05)


class Fussy(Counter):
    """A counter that cannot fold events of the streams in ``poison``, and whose ``setup`` and
    ``apply`` can be told to fail the next ``flaky_*`` times (a fault that goes away)."""

    def __init__(self, category: str, *, version: int = 1, name: str | None = None) -> None:
        super().__init__(category, version=version)
        self.name = name or self.name
        self.poison: set[str] = set()
        self.flaky_setup = 0
        self.flaky_apply = 0

    async def setup(self, conn: asyncpg.Connection) -> None:
        if self.flaky_setup:
            self.flaky_setup -= 1
            raise RuntimeError("setup hiccup")
        await super().setup(conn)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        if self.flaky_apply:
            self.flaky_apply -= 1
            raise RuntimeError("apply hiccup")
        await super().apply(conn, events)
        for event in events:
            if event.stream_id in self.poison:
                raise ValueError(f"cannot fold {event.stream_id}")


@pytest.fixture
def category() -> str:
    return f"q{uuid.uuid4().hex[:10]}"


async def _append(store: EventStore, stream: str, n: int) -> None:
    await store.append(stream, [NewEvent(type="test.counted", data={"n": i}) for i in range(n)])


async def _counts(pool: asyncpg.Pool, table: str) -> dict[str, int]:
    rows = await pool.fetch(f"SELECT stream_id, applied FROM projections.{table}")
    return {r["stream_id"]: r["applied"] for r in rows}


def _once(stream: str, n: int) -> dict[str, int]:
    """What a counter holds once it applied ``n`` events of ``stream``, each once."""
    return {f"{stream}/{version}": 1 for version in range(1, n + 1)}


async def _entries(pool: asyncpg.Pool, projection: Counter) -> list[QuarantinedEvent]:
    return [q for q in await list_quarantine(pool, everything=True) if q.name == projection.name]


async def _applied(pool: asyncpg.Pool, projection: Counter, expected: int) -> None:
    async with asyncio.timeout(20):
        while (await checkpoint_of(pool, projection.name, 1))[1] != expected:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def _runner(store: EventStore, projection: Counter, options: ConnectionOptions) -> ProjectionRunner:
    return ProjectionRunner(
        store,
        projection,
        lambda: connect(options),
        batch_size=50,
        standby_interval=0.05,
        backoff=FAST,
        poison_after=3,
    )


def _poisoned(category: str) -> tuple[Fussy, str]:
    """A projection of ``category`` that cannot fold the events of its stream ``-bad``."""
    projection = Fussy(category)
    bad = f"{category}-bad"
    projection.poison.add(bad)
    return projection, bad


async def _paused(runner: ProjectionRunner) -> None:
    async with asyncio.timeout(20):
        while runner.held is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_a_poison_event_is_quarantined_and_skipped_once_released(
    store: EventStore, pool: asyncpg.Pool, app_options: ConnectionOptions, category: str
) -> None:
    projection, bad = _poisoned(category)
    await _append(store, f"{category}-a", 4)
    await _append(store, bad, 1)
    await _append(store, f"{category}-b", 3)
    runner = _runner(store, projection, app_options)
    async with _running(runner):
        await _paused(runner)
        # Everything before the poison event is applied, once; nothing after it.
        assert await _counts(pool, projection.table) == _once(f"{category}-a", 4)
        assert (await checkpoint_of(pool, projection.name, 1))[1] == 4
        assert runner.state == "paused"
        (held,) = await held_events(pool, projection.name, 1)
        assert held == runner.held
        event = (await store.read_stream(bad)).events[0]
        assert (held.event_id, held.type, held.position) == (
            event.event_id,
            "test.counted",
            event.position,
        )
        assert held.error == f"ValueError: cannot fold {bad}"
        assert (held.attempts, held.status) == (3, "held")

        (released,) = await release(pool, projection.name, skip=True)
        assert released.status == "skip"
        await _applied(pool, projection, 7)
        assert runner.held is None
    counts = await _counts(pool, projection.table)
    assert counts == {
        **_once(f"{category}-a", 4),
        **_once(f"{category}-b", 3),
    }
    (settled,) = await _entries(pool, projection)
    assert settled.status == "skipped"
    assert not await held_events(pool, projection.name, 1)


async def test_a_released_event_is_tried_again_once_the_fault_is_fixed(
    store: EventStore, pool: asyncpg.Pool, app_options: ConnectionOptions, category: str
) -> None:
    projection, bad = _poisoned(category)
    await _append(store, bad, 1)
    await _append(store, f"{category}-b", 2)
    runner = _runner(store, projection, app_options)
    async with _running(runner):
        await _paused(runner)
        assert await _counts(pool, projection.table) == {}
        projection.poison.clear()  # the fix is deployed
        (released,) = await release(pool, projection.name)
        assert released.status == "retry"
        await _applied(pool, projection, 3)
    assert await _counts(pool, projection.table) == {
        f"{bad}/1": 1,
        f"{category}-b/1": 1,
        f"{category}-b/2": 1,
    }
    (settled,) = await _entries(pool, projection)
    assert settled.status == "applied"


async def test_the_runner_starts_again_after_a_transient_error_outside_the_database(
    store: EventStore, pool: asyncpg.Pool, app_options: ConnectionOptions, category: str
) -> None:
    projection = Fussy(category)
    projection.flaky_setup = 1
    projection.flaky_apply = 2
    await _append(store, f"{category}-a", 5)
    runner = _runner(store, projection, app_options)
    async with _running(runner):
        await _applied(pool, projection, 5)
        assert runner.restarts == 1  # the failed setup ended the session; it began again
        assert runner.state == "active"
        assert runner.failures == 0
    assert await _counts(pool, projection.table) == _once(f"{category}-a", 5)
    assert not [
        q for q in await list_quarantine(pool, everything=True) if q.name == projection.name
    ]


async def test_a_supervised_task_is_started_again_after_each_failure() -> None:
    runs: list[int] = []

    async def work() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError(f"failure {len(runs)}")

    supervised = Supervised("flaky", work, backoff=FAST)
    async with asyncio.timeout(10):
        await supervised.run()
    assert runs == [0, 1, 2]
    assert (supervised.restarts, supervised.failures, supervised.state) == (2, 2, "stopped")
    assert supervised.last_error == "RuntimeError: failure 2"


async def test_a_rebuild_stopped_by_a_poison_event_says_so(
    store: EventStore, app_options: ConnectionOptions, category: str
) -> None:
    bad = f"{category}-bad"
    await _append(store, bad, 1)

    def make(version: int) -> Fussy:
        fussy = Fussy(category, version=version)
        fussy.poison.add(bad)
        return fussy

    with pytest.raises(RuntimeError, match=rf"cannot apply event .*ValueError: cannot fold {bad}"):
        async with asyncio.timeout(30):
            await rebuild(
                store, make, lambda: connect(app_options), make(1).name, retire_after=0, poll=0.05
            )
