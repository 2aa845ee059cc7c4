"""How ``bench.views`` measures one page of a view over HTTP, knowing only the API's contract.

A page is a URL: the first page is the route with its filters (and ``limit``, and
``as_of_cursor`` for an as-of read); a deep page is reached by following ``Link: rel="next"``
from the first, and its URL is then replayed as is. What the route supports is read from the
served OpenAPI document (``limit``, ``after``, ``as_of_cursor``), so a route that does not page
or has no as-of yet is reported as such instead of measured as something it is not.

Per page: sequential requests (client-measured latency: median and p99, response bytes), then
pages/s over a fixed duration with a few connections (wrk when installed, else an asyncio
httpx loop), with the server's peak resident memory over both. Requests a load abandons when
its time is up are waited for (the server's CPU idle again) before the next measurement.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlencode

import httpx

from bench._rss import RssPeak
from bench.http import cpu_seconds, feed_script, run_wrk

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from bench.http import Server

__all__ = (
    "Load",
    "Measured",
    "Plan",
    "Support",
    "Walked",
    "load",
    "page_url",
    "read_support",
    "sequential",
    "settle",
    "walk",
)

Engine = Literal["wrk", "httpx"]
OPENAPI_PATH: Final = "/schema/openapi.json"


@dataclass(frozen=True)
class Plan:
    """How much to measure (the smoke test runs a tiny plan)."""

    requests: int = 30
    """Sequential requests per page (fewer when ``sequential_s`` runs out)."""
    sequential_s: float = 10.0
    seconds: float = 5.0
    """Duration of each page's load."""
    rounds: int = 2
    """Load rounds per page; the best counts (a shared machine's rounds swing)."""
    connections: int = 4
    deep_page: int = 10
    limit: int = 100
    concurrent: int = 16
    """Connections of the concurrent as-of load at the largest size."""
    concurrent_s: float = 10.0
    """Duration of that load (requests still running at its end are not counted)."""
    engine: Engine = "wrk"
    fresh_server: bool = True
    """A new server process for each workload (its peak memory is then its own)."""
    rss_cap_mb: float = 3_000.0
    """Past this the server is killed (a shared machine) and the page marked so."""
    timeout_s: float = 60.0

    @staticmethod
    def default_engine() -> Engine:
        return "wrk" if shutil.which("wrk") else "httpx"


@dataclass(frozen=True)
class Support:
    """The query parameters each route documents (``None``: the route is not served)."""

    params: dict[str, frozenset[str]]

    def of(self, template: str) -> frozenset[str] | None:
        return self.params.get(template)


async def read_support(client: httpx.AsyncClient) -> Support:
    """The served OpenAPI document's GET routes and their query parameters."""
    response = await client.get(OPENAPI_PATH)
    response.raise_for_status()
    params: dict[str, frozenset[str]] = {}
    for path, item in response.json().get("paths", {}).items():
        get = item.get("get")
        if get is not None:
            names = {p["name"] for p in get.get("parameters", []) if p.get("in") == "query"}
            params[path] = frozenset(names)
    return Support(params)


def page_url(path: str, query: Sequence[tuple[str, str]]) -> str:
    return f"{path}?{urlencode(query)}" if query else path


@dataclass(frozen=True)
class Measured:
    """Sequential requests of one URL."""

    status: int
    latencies_ms: list[float]
    bytes: int
    detail: str = ""
    """For an error status: the problem's detail."""
    stale: bool = False
    """The answer said ``Diplofeed-Stale: true`` (the view had not reached the moment asked)."""

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99_ms(self) -> float | None:
        return _percentile(self.latencies_ms, 0.99)


def _percentile(values: list[float], share: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else None


def _detail(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or "")[:200]
    return ""


async def sequential(client: httpx.AsyncClient, url: str, plan: Plan) -> Measured:
    """One warm-up request, then up to ``plan.requests`` one after another (or until
    ``plan.sequential_s`` has passed); stops at the first error status."""
    response = await client.get(url)
    if response.status_code != 200:
        return Measured(response.status_code, [], len(response.content), _detail(response))
    latencies: list[float] = []
    size = 0
    deadline = time.perf_counter() + plan.sequential_s
    while len(latencies) < plan.requests and (not latencies or time.perf_counter() < deadline):
        started = time.perf_counter()
        response = await client.get(url)
        size = max(size, len(response.content))
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            return Measured(response.status_code, latencies, size, _detail(response))
    stale = response.headers.get("Diplofeed-Stale") == "true"
    return Measured(200, latencies, size, stale=stale)


@dataclass(frozen=True)
class Load:
    """A fixed-duration load of one or more URLs."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    peak_rss_mb: float
    killed: bool
    """The server passed the memory cap and was killed."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


async def _httpx_load(
    server: Server, paths: Sequence[str], headers: dict[str, str], connections: int, seconds: float
) -> tuple[int, float, int, list[float]]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, timeout=seconds + 60, limits=limits
    ) as client:
        started = time.perf_counter()
        deadline = started + seconds
        ended = started

        async def worker(offset: int) -> None:
            nonlocal errors, ended
            i = offset
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    response = await client.get(paths[i % len(paths)])
                    await response.aread()
                except httpx.HTTPError:
                    errors += 1
                    continue
                done = time.perf_counter()
                ended = max(ended, done)
                if response.status_code != 200:
                    errors += 1
                else:
                    latencies.append((done - sent) * 1000)
                i += 1

        await asyncio.gather(*(worker(n) for n in range(connections)))
    return len(latencies), max(ended - started, 1e-9), errors, latencies


async def settle(server: Server, *, bound: float = 60.0, quiet: float = 0.25) -> None:
    """Wait until the server's CPU is idle: requests a load abandoned at its end (the slow
    ones) are still being answered and would weigh on the next measurement."""
    deadline = time.monotonic() + bound
    before = cpu_seconds([server.process.pid])
    while time.monotonic() < deadline and server.process.poll() is None:
        await asyncio.sleep(quiet)
        now = cpu_seconds([server.process.pid])
        if now - before < quiet * 0.1:
            return
        before = now


async def load(
    server: Server,
    paths: Sequence[str],
    *,
    token: str | None,
    connections: int,
    seconds: float,
    plan: Plan,
    work: Path,
) -> Load:
    """``connections`` clients cycling through ``paths`` for ``seconds``."""
    with RssPeak(server.process.pid, cap_mb=plan.rss_cap_mb) as peak:
        if plan.engine == "wrk":
            seconds = max(1, round(seconds))  # wrk takes whole seconds
            try:
                result = await run_wrk(
                    server.url, feed_script(paths, token), connections, seconds, work
                )
            except RuntimeError:
                if not peak.killed:
                    raise
                return Load(0, seconds, 0, None, None, peak.mb, killed=True)
            requests = result.requests
            elapsed = result.duration_us / 1e6
            errors = result.errors
            p50: float | None = result.p50_us / 1000 if requests else None
            p99: float | None = result.p99_us / 1000 if requests else None
        else:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            requests, elapsed, errors, latencies = await _httpx_load(
                server, paths, headers, connections, seconds
            )
            p50 = _percentile(latencies, 0.5)
            p99 = _percentile(latencies, 0.99)
        await settle(server)
    return Load(requests, elapsed, errors, p50, p99, peak.mb, killed=peak.killed)


@dataclass(frozen=True)
class Walked:
    """Where a walk along ``Link: rel="next"`` ended."""

    url: str | None
    """The page reached (path and query); ``None`` when the walk ended before it."""
    pages: int
    """Pages read (the page reached counts)."""
    failure: str = ""
    """Why a page on the way failed, if one did."""


async def walk(client: httpx.AsyncClient, first: str, pages: int) -> Walked:
    """Follow ``Link: rel="next"`` from ``first`` to page ``pages``."""
    url = first
    for n in range(1, pages):
        response = await client.get(url)
        if response.status_code != 200:
            return Walked(None, n, f"page {n}: HTTP {response.status_code}: {_detail(response)}")
        link = response.links.get("next", {}).get("url")
        if not link:
            return Walked(None, n)
        following = httpx.URL(link).raw_path.decode()
        if following == url:  # a feed's head page links to itself
            return Walked(None, n)
        url = following
    return Walked(url, pages)
