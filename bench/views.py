"""View benchmark: every view page, live and as of a past cursor, first and deep, at growing
log sizes, beside the bare 100-row endpoint of ``bench._floor_app`` in the same run.

    python -m bench.views                  # 100k and 1M events
    python -m bench.views --large          # also 10M (once; it takes a while)
    python -m bench.views --sizes 100k     # chosen sizes
    python -m bench.views --quick          # 20k events, short rounds (a smoke run)
    python -m bench.views --output docs/benchmarks-run.md

One scratch database, created and migrated like the other benchmarks and dropped at the end,
filled like ``bench.http`` (the seed article, then the synthetic generator) and grown from one
size to the next; at each size every projection the service registers is caught up before
anything is measured. The real app (``service.app:create_app`` under uvicorn, projections
off, rate limit off) and the floor run as separate processes, so that the server's memory is
its own (``bench._rss``). The requests know only the HTTP contract: see
``bench._views_measure`` for how a page is reached and timed, ``bench._views_log`` for how
each workload's actor, meeting and cursors are picked from the log.

Goals (issue 12): each view page costs at most 1.3x more at 1M than at 100k (by pages/s);
each live page reaches 0.5x of the floor's pages/s and each as-of page 0.3x; 16 concurrent
as-of requests at the largest size keep the server under 150 MB; no response is over 2 MB at
the default limit. A page a route cannot serve yet (no ``after``, no ``as_of_cursor``) is
listed as such and left out of the goals.
Set BENCH_DATABASE_URL to a server where a scratch database may be created (default: local).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

import asyncpg
import httpx

from bench._fill import Filler
from bench._views_log import catch_up, floor_starts, pick_targets
from bench._views_measure import (
    Load,
    Measured,
    Plan,
    load,
    page_url,
    read_support,
    sequential,
    walk,
)
from bench._views_workloads import WORKLOADS, Mode, Row, Workload, modes
from bench.http import floor_server, subject_server
from events import migrate
from service.keys import create_key

if TYPE_CHECKING:
    from bench._views_log import Targets
    from bench._views_measure import Support
    from bench.http import Server

__all__ = ("SizeResult", "main", "measure_size", "report")

GROWTH_GOAL: Final = 1.3
LIVE_GOAL: Final = 0.5
AS_OF_GOAL: Final = 0.3
RSS_GOAL_MB: Final = 150.0
BYTES_GOAL: Final = 2_000_000
DEFAULT_LIMIT: Final = 100
FLOOR_PAGE: Final = 100


@dataclass
class SizeResult:
    """Everything measured at one log size."""

    size: int
    events: int
    floor: Load
    floor_ms: float
    floor_p99_ms: float | None
    floor_bytes: int
    rows: list[Row] = field(default_factory=list)
    concurrent: Load | None = None
    concurrent_note: str = ""


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    for suffix, factor in (("k", 1_000), ("m", 1_000_000)):
        if text.endswith(suffix):
            return int(float(text[:-1]) * factor)
    return int(text)


# -- measuring ----------------------------------------------------------------------------------


async def _started(server: Server) -> Server:
    await server.ready()
    return server


async def measure_floor(
    floor: Server, owner: asyncpg.Connection, plan: Plan, work: Path
) -> tuple[Load, Measured]:
    """The floor's pages/s (cycling through 100-row pages spread over the log) and its
    sequential requests of one page."""
    starts = await floor_starts(owner, FLOOR_PAGE * 50)
    paths = [f"/feed?tx={c.transaction_id}&pos={c.position}&limit={FLOOR_PAGE}" for c in starts]
    async with httpx.AsyncClient(base_url=floor.url, timeout=plan.timeout_s) as client:
        timed = await sequential(client, paths[len(paths) // 2], plan)
    result = await load(
        floor,
        paths,
        token=None,
        connections=plan.connections,
        seconds=plan.seconds,
        plan=plan,
        work=work,
    )
    return result, timed


async def _page_rows(
    client: httpx.AsyncClient,
    server: Server,
    workload: Workload,
    mode: Mode,
    params: frozenset[str],
    *,
    size: int,
    targets: Targets,
    token: str,
    plan: Plan,
    work: Path,
) -> list[Row]:
    """The first and the deep page of one workload in one mode."""
    base = Row(size=size, workload=workload.name, mode=mode.name, page="first")
    deep = replace(base, page=f"page {plan.deep_page}")
    if mode.cursor is not None and "as_of_cursor" not in params:
        return [replace(base, page="-", note="no as_of_cursor on this route")]
    query = list(workload.query(targets))
    if "limit" in params:
        query.append(("limit", str(plan.limit)))
    if mode.cursor is not None:
        query.append(("as_of_cursor", mode.cursor(targets).encode()))
    first = page_url(workload.path(targets), query)
    probe = await client.get(first)
    pages: list[tuple[Row, str]] = [(base, first)]
    if probe.status_code != 200:
        deep = replace(deep, note="first page failed")
    elif not isinstance(probe.json(), list):
        deep = replace(deep, note="one item, not a list")
    elif "next" not in probe.links and "after" not in params:
        deep = replace(deep, note="no after on this route (unpaginated)")
    else:
        walked = await walk(client, first, plan.deep_page)
        if walked.failure:
            deep = replace(deep, status=0, note=f"walk failed at {walked.failure}")
        elif walked.url is None:
            deep = replace(deep, note=f"only {walked.pages} page(s) in this answer")
        else:
            pages.append((deep, walked.url))
    rows = [] if len(pages) > 1 else [deep]
    for row, url in pages:
        rows.append(
            await _measure_page(client, server, row, url, token=token, plan=plan, work=work)
        )
    return sorted(rows, key=lambda r: r.page != "first")


async def _measure_page(
    client: httpx.AsyncClient,
    server: Server,
    row: Row,
    url: str,
    *,
    token: str,
    plan: Plan,
    work: Path,
) -> Row:
    print(f"  {size_label(row.size)} {row.workload} [{row.mode}, {row.page}] ...", flush=True)
    if server.process.poll() is not None:
        return replace(row, status=0, note="not measured: the server had died (memory cap)")
    timed = await sequential(client, url, plan)
    row = replace(row, url=url, status=timed.status, bytes=timed.bytes)
    if timed.latencies_ms:
        row = replace(row, median_ms=timed.median_ms, p99_ms=timed.p99_ms)
    if timed.status != 200:
        return replace(row, note=f"HTTP {timed.status}: {timed.detail}")
    result: Load | None = None
    peak = 0.0
    for _ in range(max(plan.rounds, 1)):
        round_ = await load(
            server,
            [url],
            token=token,
            connections=plan.connections,
            seconds=plan.seconds,
            plan=plan,
            work=work,
        )
        peak = max(peak, round_.peak_rss_mb)
        if result is None or round_.killed or round_.rate > result.rate:
            result = round_
        if round_.killed:
            break
    assert result is not None  # noqa: S101 (at least one round)
    result = replace(result, peak_rss_mb=peak)
    notes = ["answered Diplofeed-Stale: true"] if timed.stale else []
    if result.killed:
        notes.append("server killed at the memory cap")
    if result.errors:
        notes.append(f"{result.errors} failed requests under load")
    note = "; ".join(notes)
    return replace(row, load=result, note=note)


class Subject:
    """The real app's server process, started afresh when asked or when it has died (killed
    at the memory cap, or crashed): one page's failure must not end the run."""

    def __init__(self, dsn: str, work: Path) -> None:
        self._dsn = dsn
        self._work = work
        self._server: Server | None = None

    async def fresh(self) -> Server:
        self.stop()
        self._server = await _started(subject_server(self._dsn, self._work))
        return self._server

    async def alive(self) -> Server:
        if self._server is None or self._server.process.poll() is not None:
            return await self.fresh()
        return self._server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


async def measure_size(
    dsn: str,
    owner: asyncpg.Connection,
    targets: Targets,
    *,
    size: int,
    token: str,
    plan: Plan,
    work: Path,
    concurrent: bool,
    workloads: tuple[Workload, ...] = WORKLOADS,
) -> SizeResult:
    """Every workload's pages at this size, the floor before and after (its best), and, if
    asked, the concurrent as-of load."""
    floor = await _started(floor_server(dsn, work))
    subject = Subject(dsn, work)
    try:
        floor_before, timed = await measure_floor(floor, owner, plan, work)
        result = SizeResult(
            size, targets.events, floor_before, timed.median_ms, timed.p99_ms, timed.bytes
        )
        server = await subject.fresh()
        async with httpx.AsyncClient(base_url=server.url, timeout=plan.timeout_s) as probe:
            support = await read_support(probe)
        for workload in workloads:
            if plan.fresh_server and result.rows:
                await subject.fresh()
            result.rows.extend(
                await _workload_rows(
                    subject, workload, support, size=size, targets=targets, token=token,
                    plan=plan, work=work,
                )
            )  # fmt: skip
        floor_after, _ = await measure_floor(floor, owner, plan, work)
        if floor_after.rate > result.floor.rate:
            result.floor = floor_after
        if concurrent:
            server = await subject.fresh()
            await _concurrent_as_of(result, server, token=token, plan=plan, work=work)
        return result
    finally:
        floor.stop()
        subject.stop()


async def _workload_rows(
    subject: Subject,
    workload: Workload,
    support: Support,
    *,
    size: int,
    targets: Targets,
    token: str,
    plan: Plan,
    work: Path,
) -> list[Row]:
    params = support.of(workload.template)
    if params is None:
        return [
            Row(size=size, workload=workload.name, mode=m.name, page="-", note="route not served")
            for m in modes()
        ]
    rows: list[Row] = []
    headers = {"Authorization": f"Bearer {token}"}
    for mode in modes():
        server = await subject.alive()
        async with httpx.AsyncClient(
            base_url=server.url, headers=headers, timeout=plan.timeout_s
        ) as client:
            try:
                rows.extend(
                    await _page_rows(
                        client, server, workload, mode, params, size=size, targets=targets,
                        token=token, plan=plan, work=work,
                    )
                )  # fmt: skip
            except httpx.TransportError as exc:
                note = f"server failed: {type(exc).__name__} {exc}".strip()
                rows.append(
                    Row(size=size, workload=workload.name, mode=mode.name, page="-", status=0,
                        note=note)
                )  # fmt: skip
    return rows


async def _concurrent_as_of(
    result: SizeResult, subject: Server, *, token: str, plan: Plan, work: Path
) -> None:
    urls = [r.url for r in result.rows if r.mode != "live" and r.load is not None and r.url]
    if not urls:
        result.concurrent_note = "no as-of page could be measured"
        return
    print(f"  {size_label(result.size)} {plan.concurrent} concurrent as-of requests ...")
    result.concurrent = await load(
        subject,
        urls,
        token=token,
        connections=plan.concurrent,
        seconds=plan.concurrent_s,
        plan=plan,
        work=work,
    )


# -- report -------------------------------------------------------------------------------------


def _num(value: float | None, spec: str = ",.1f") -> str:
    return "-" if value is None else format(value, spec)


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 10 else f"{value:.2f}"


def _floor_goal(row: Row) -> float:
    return LIVE_GOAL if row.mode == "live" else AS_OF_GOAL


def report(results: list[SizeResult], plan: Plan) -> tuple[str, bool]:
    """The markdown tables and the goals (PASS/FAIL); whether every goal passed."""
    lines = [
        "| size | view | mode | page | median ms | p99 ms | pages/s | x floor | bytes "
        "| peak RSS MB | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        label = size_label(res.size)
        lines.append(
            f"| {label} | floor: {FLOOR_PAGE} events by key | | | {res.floor_ms:,.1f} | "
            f"{_num(res.floor_p99_ms)} | {_rate(res.floor.rate)} | 1.00x | "
            f"{res.floor_bytes:,} | {res.floor.peak_rss_mb:,.0f} | |"
        )
        for row in res.rows:
            rate = row.load.rate if row.load is not None else None
            ratio = f"{rate / res.floor.rate:.2f}x" if rate is not None else "-"
            lines.append(
                f"| {label} | {row.workload} | {row.mode} | {row.page} | "
                f"{_num(row.median_ms)} | {_num(row.p99_ms)} | {_rate(rate)} | {ratio} | "
                f"{_num(row.bytes, ',d') if row.bytes is not None else '-'} | "
                f"{_num(row.load.peak_rss_mb, ',.0f') if row.load else '-'} | {row.note} |"
            )
    goals: list[tuple[str, bool | None, str]] = []
    goals.append(_growth_goal(results, lines))
    goals.append(_floor_goals(results))
    goals.append(_concurrent_goal(results, plan))
    goals.append(_bytes_goal(results, plan))
    lines.append("")
    for name, met, detail in goals:
        verdict = "n/a" if met is None else ("PASS" if met else "FAIL")
        lines.append(f"- **{verdict}** {name}: {detail}")
    unsupported = sum(1 for r in results for row in r.rows if row.load is None and not row.status)
    if unsupported:
        lines.append(
            f"- {unsupported} rows not measured: see their note (not counted in the goals)"
        )
    return "\n".join(lines), all(met is not False for _, met, _ in goals)


def _growth_goal(results: list[SizeResult], lines: list[str]) -> tuple[str, bool | None, str]:
    name = f"each page costs at most {GROWTH_GOAL}x more at the larger size"
    if len(results) < 2:
        return name, None, "one size measured"
    small, large = results[0], results[1]
    before = {(r.workload, r.mode, r.page): r for r in small.rows}
    lines += [
        "",
        f"| view | mode | page | pages/s {size_label(small.size)} | "
        f"pages/s {size_label(large.size)} | cost growth |",
        "|---|---|---|---|---|---|",
    ]
    worst: list[str] = []
    compared = 0
    for row in large.rows:
        was = before.get((row.workload, row.mode, row.page))
        if was is None or was.load is None or row.status is None:
            continue
        compared += 1
        now = row.load.rate if row.load is not None else 0.0
        growth = was.load.rate / now if now > 0 else float("inf")
        lines.append(
            f"| {row.workload} | {row.mode} | {row.page} | {_rate(was.load.rate)} | {_rate(now)} | "
            f"{growth:.2f}x |"
        )
        if growth > GROWTH_GOAL:
            worst.append(f"{row.workload} [{row.mode}, {row.page}] {growth:.1f}x")
    detail = f"{compared} pages compared, {size_label(small.size)} -> {size_label(large.size)}"
    return (
        name,
        not worst and compared > 0,
        detail + (f"; over: {'; '.join(worst)}" if worst else ""),
    )


def _floor_goals(results: list[SizeResult]) -> tuple[str, bool | None, str]:
    name = f"live pages >= {LIVE_GOAL}x and as-of pages >= {AS_OF_GOAL}x of the floor's pages/s"
    below: list[str] = []
    counted = 0
    for res in results:
        for row in res.rows:
            if row.status is None:
                continue  # not served by this API: listed, not counted
            counted += 1
            rate = row.load.rate if row.load is not None else 0.0
            ratio = rate / res.floor.rate
            if ratio < _floor_goal(row):
                below.append(
                    f"{size_label(res.size)} {row.workload} [{row.mode}, {row.page}] {ratio:.2f}x"
                )
    detail = f"{counted - len(below)} of {counted} pages"
    return (
        name,
        (not below) if counted else None,
        detail + (f"; below: {'; '.join(below)}" if below else ""),
    )


def _concurrent_goal(results: list[SizeResult], plan: Plan) -> tuple[str, bool | None, str]:
    name = f"{plan.concurrent} concurrent as-of requests keep the server under {RSS_GOAL_MB:g} MB"
    last = results[-1] if results else None
    if last is None or last.concurrent is None:
        return name, None, last.concurrent_note if last else "nothing measured"
    c = last.concurrent
    detail = (
        f"at {size_label(last.size)}: peak RSS {c.peak_rss_mb:,.0f} MB, {c.requests:,} requests "
        f"in {c.seconds:.1f} s ({c.rate:,.1f}/s), p99 {_num(c.p99_ms)} ms, {c.errors} failed"
        + (" (killed at the memory cap)" if c.killed else "")
    )
    return name, c.peak_rss_mb < RSS_GOAL_MB and not c.killed and not c.errors, detail


def _bytes_goal(results: list[SizeResult], plan: Plan) -> tuple[str, bool | None, str]:
    name = f"no response over {BYTES_GOAL / 1e6:g} MB at the default limit"
    if plan.limit != DEFAULT_LIMIT:
        return name, None, f"run with limit={plan.limit}"
    sizes = [(row.bytes, res, row) for res in results for row in res.rows if row.bytes]
    if not sizes:
        return name, None, "nothing measured"
    over = [
        f"{size_label(res.size)} {row.workload} [{row.mode}, {row.page}] {n / 1e6:.1f} MB"
        for n, res, row in sizes
        if n > BYTES_GOAL
    ]
    largest = max(n for n, _, _ in sizes)
    detail = f"largest {largest / 1e6:.2f} MB" + (f"; over: {'; '.join(over)}" if over else "")
    return name, not over, detail


# -- main ---------------------------------------------------------------------------------------


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", help="comma-separated log sizes (default 100k,1M)")
    parser.add_argument("--large", action="store_true", help="also 10M events")
    parser.add_argument("--quick", action="store_true", help="20k events, short rounds")
    parser.add_argument("--seconds", type=float, help="load per page (default 5, quick 2)")
    parser.add_argument("--requests", type=int, help="sequential requests per page (30)")
    parser.add_argument("--rounds", type=int, help="load rounds per page, best kept (2)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--deep-page", type=int, default=10)
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT)
    parser.add_argument("--engine", choices=("wrk", "httpx"), default=Plan.default_engine())
    parser.add_argument("--rss-cap-mb", type=float, default=3_000.0)
    parser.add_argument("--output", type=Path, help="also write the tables to this file")
    return parser.parse_args()


async def main() -> None:
    args = _arguments()
    sizes = [parse_size(s) for s in args.sizes.split(",")] if args.sizes else [100_000, 1_000_000]
    if args.quick and not args.sizes:
        sizes = [20_000]
    if args.large and 10_000_000 not in sizes:
        sizes.append(10_000_000)
    sizes.sort()
    plan = Plan(
        requests=args.requests or (10 if args.quick else 30),
        seconds=args.seconds or (2.0 if args.quick else 5.0),
        rounds=args.rounds or (1 if args.quick else 2),
        connections=args.connections,
        deep_page=args.deep_page,
        limit=args.limit,
        engine=args.engine,
        rss_cap_mb=args.rss_cap_mb,
    )
    server_url = os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"diplofeed_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = server_url.rsplit("/", 1)[0] + "/" + name
    owner = await asyncpg.connect(dsn)
    work = Path(tempfile.mkdtemp(prefix="bench-views-"))
    results: list[SizeResult] = []
    try:
        await migrate(owner)
        token = (await create_key(owner, "bench read", ("read",))).token
        filler = Filler(dsn, owner)
        print(
            f"PostgreSQL {await owner.fetchval('SHOW server_version')}, {os.cpu_count()} CPUs; "
            f"load by {plan.engine}, {plan.connections} connections, {plan.seconds:g} s a page; "
            f"{plan.requests} sequential requests a page; deep page = page {plan.deep_page}",
            flush=True,
        )
        for size in sizes:
            started = time.perf_counter()
            await filler.grow(size)
            await owner.execute("CHECKPOINT")
            total, mix = await filler.mix()
            filled = time.perf_counter() - started
            caught = await catch_up(dsn)
            targets = await pick_targets(owner)
            print(
                f"-- {total:,} events ({mix}); filled in {filled:.0f} s, projections caught up "
                f"in {caught:.0f} s; organisation {targets.organisation}, person "
                f"{targets.person}, meeting {targets.meeting}",
                flush=True,
            )
            results.append(
                await measure_size(
                    dsn,
                    owner,
                    targets,
                    size=size,
                    token=token,
                    plan=plan,
                    work=work,
                    concurrent=size == sizes[-1],
                )
            )
        text, met = report(results, plan)
        print(text, flush=True)
        if args.output is not None:
            args.output.write_text(text + "\n")
        if not met:
            sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        await owner.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
