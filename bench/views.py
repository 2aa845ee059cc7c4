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
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

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
from bench._views_report import (
    DEFAULT_LIMIT,
    FLOOR_PAGE,
    SizeResult,
    parse_size,
    report,
    size_label,
)
from bench._views_workloads import WORKLOADS, Mode, Row, Workload, modes
from bench.http import floor_server, subject_server
from events import migrate
from service.keys import create_key

if TYPE_CHECKING:
    from bench._views_log import Targets
    from bench._views_measure import Support
    from bench.http import Server

__all__ = ("main", "measure_size")


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
    parser.add_argument(
        "--database",
        help="measure this database as it is (already migrated and filled by --keep): no fill, "
        "one size, its own event count; it is kept",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch database and print its name"
    )
    parser.add_argument("--only", help="only the workloads whose name contains this text")
    parser.add_argument(
        "--fill-only", action="store_true", help="fill (and with --keep keep) without measuring"
    )
    return parser.parse_args()


def _sizes(args: argparse.Namespace) -> list[int]:
    sizes = [parse_size(s) for s in args.sizes.split(",")] if args.sizes else [100_000, 1_000_000]
    if args.quick and not args.sizes:
        sizes = [20_000]
    if args.large and 10_000_000 not in sizes:
        sizes.append(10_000_000)
    return sorted(sizes)


def _plan(args: argparse.Namespace) -> Plan:
    return Plan(
        requests=args.requests or (10 if args.quick else 30),
        seconds=args.seconds or (2.0 if args.quick else 5.0),
        rounds=args.rounds or (1 if args.quick else 2),
        connections=args.connections,
        deep_page=args.deep_page,
        limit=args.limit,
        engine=args.engine,
        rss_cap_mb=args.rss_cap_mb,
    )


async def main() -> None:
    args = _arguments()
    sizes = _sizes(args)
    plan = _plan(args)
    server_url = os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    workloads = tuple(w for w in WORKLOADS if args.only is None or args.only in w.name)
    reuse = args.database is not None
    name = args.database or f"diplofeed_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    if not reuse:
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
        if reuse:
            sizes = [await owner.fetchval("SELECT count(*) FROM events")]
        for size in sizes:
            started = time.perf_counter()
            if not reuse:
                await filler.grow(size)
                await owner.execute("CHECKPOINT")
            total, mix = await filler.mix()
            filled = time.perf_counter() - started
            if args.fill_only:
                print(f"-- {total:,} events ({mix}); filled in {filled:.0f} s", flush=True)
                continue
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
                    workloads=workloads,
                )
            )
        if args.fill_only:
            return
        text, met = report(results, plan)
        print(text, flush=True)
        if args.output is not None:
            args.output.write_text(text + "\n")
        if not met:
            sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        await owner.close()
        if reuse or args.keep:
            print(f"database kept: {name}", flush=True)
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
