"""Smoke test of ``bench.views``: its measuring code end to end at a tiny size, so that the
benchmark keeps working as the API changes (timings are printed, never asserted).

A database of the test's own gets the seed article and a few thousand synthetic events
(``bench._fill``), every projection is caught up, the real app and the floor run as uvicorn
processes, and every workload is measured with a few requests and a moment of load (httpx, so
that wrk need not be installed). Besides the benchmark's workloads, the plain feed is walked to
a deep page: the feed pages on every branch, so following ``Link: rel="next"`` and replaying
the page reached is always exercised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import pytest

from bench._fill import Filler
from bench._views_log import catch_up, pick_targets
from bench._views_measure import Plan
from bench._views_report import report
from bench._views_workloads import WORKLOADS, Workload
from bench.views import measure_size
from service.keys import create_key

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(120)

EVENTS = 3_000
PLAIN_FEED = Workload("/feed (all)", "/feed", lambda _: "/feed")
TINY = Plan(
    requests=3,
    sequential_s=1.0,
    seconds=0.05,
    rounds=1,
    connections=2,
    deep_page=3,
    concurrent=4,
    concurrent_s=0.3,
    engine="httpx",
    fresh_server=False,
    timeout_s=30.0,
)


async def test_bench_views_measures_every_workload(own_dsn: str, tmp_path: Path) -> None:
    owner = await asyncpg.connect(own_dsn)
    try:
        filler = Filler(own_dsn, owner)
        await filler.grow(EVENTS, chunk=1_000)
        await catch_up(own_dsn, poll=0.05)
        targets = await pick_targets(owner)
        token = (await create_key(owner, "bench read", ("read",))).token
        result = await measure_size(
            own_dsn,
            owner,
            targets,
            size=EVENTS,
            token=token,
            plan=TINY,
            work=tmp_path,
            concurrent=True,
            workloads=(*WORKLOADS, PLAIN_FEED),
        )
    finally:
        await owner.close()

    assert targets.events >= EVENTS
    assert targets.halfway < targets.head
    assert result.floor.requests > 0 and result.floor_bytes > 0
    by_name = {(r.workload, r.mode, r.page): r for r in result.rows}
    for workload in (*WORKLOADS, PLAIN_FEED):
        live = by_name[(workload.name, "live", "first")]
        # Every view answers its first live page, and is loaded and measured.
        assert live.status == 200, (workload.name, live.note)
        assert live.load is not None and live.load.requests > 0, workload.name
        assert live.median_ms is not None and live.bytes, workload.name
        assert live.load.peak_rss_mb > 0
    for row in result.rows:
        # A page is either measured without failures or says why it was not.
        if row.load is None:
            assert row.note, row
        else:
            assert row.status == 200 and not row.load.errors, row
    deep = by_name[(PLAIN_FEED.name, "live", f"page {TINY.deep_page}")]
    assert deep.status == 200 and deep.load is not None, deep
    assert "after=" in deep.url
    # The contact history of the busiest organisation is not empty (the targets are real).
    busiest = by_name[(WORKLOADS[0].name, "live", "first")]
    assert busiest.bytes is not None and busiest.bytes > 2
    assert result.concurrent is not None or result.concurrent_note

    text, _ = report([result], TINY)
    for workload in (*WORKLOADS, PLAIN_FEED):
        assert workload.name in text
    verdicts = [line for line in text.splitlines() if line.startswith("- **")]
    assert len(verdicts) == 4
    assert all(("PASS" in v) or ("FAIL" in v) or ("n/a" in v) for v in verdicts)
