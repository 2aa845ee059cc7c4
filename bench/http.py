"""HTTP benchmark: the real app under uvicorn against a bare Litestar + asyncpg floor, driven by
wrk from another process; feed pages, concurrent writes and SSE fan-out, in one run on one DB.

    python -m bench.http            # full run: 100k events stored, 10 s rounds, 30 s of SSE
    python -m bench.http --quick    # 20k events stored, 4 s rounds, 10 s of SSE
    python -m bench.http --profile DIR   # also py-spy the real app during one extra round each
    python -m bench.http --loops    # the real app on uvloop + httptools against asyncio + h11

One scratch database, created and migrated like the other benchmarks and dropped at the end,
filled with the seed article (through the command handler) and synthetic domain events
(``bench.projections.Synth``, COPY). Two servers run side by side, each
``uvicorn <factory> --factory`` in its own process with one worker and the same settings
(access log off, log level warning), each with an asyncpg pool of the same size and role:

- the subject: ``service.app:create_app`` configured from the environment, with the rate limit
  off (one key sends everything here) and the projections off (``DIPLOFEED_RUN_PROJECTIONS``
  false: a separate projector runs them, so a write costs what the API itself does);
- the floor: ``bench._floor_app`` (see there): a GET returning the next 100 rows of the same
  ``events`` table by its key, encoded as JSON, and a POST inserting one row into a bare table
  with the events table's columns and uniqueness constraints.

wrk (``apt-get install wrk``) is the load generator, one thread, its Lua scripts written per
round: feed requests cycle through every full page of the log (real cursors), writes give each
request a new interaction id. Each workload alternates floor and subject rounds after a warm-up
of each and keeps each side's best round (by throughput; its latencies are that round's).
The SSE subscribers (``bench._sse_client``) are another process; events are appended through
the real app's own command route at a steady rate while they listen.
With ``--loops`` the floor is not run: two copies of the real app do, one on uvicorn's plain
asyncio loop with the h11 parser (``--loop asyncio --http h11``), one on uvloop with httptools
(``--loop uvloop --http httptools``, what uvicorn picks by itself when ``uvicorn[standard]`` is
installed). Their rounds alternate, and besides each side's best round the report gives the
median of the ratios of each pair of neighbouring rounds, which a noisy, shared machine moves
less. Both then serve the SSE workload twice, in turn.
Set BENCH_DATABASE_URL to a server where a scratch database may be created (default: local).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import httpx
import msgspec

from bench._fill import Filler
from bench._floor_app import FLOOR_WRITES_SQL
from events import APP_ROLE, ConnectionOptions, EventStore, migrate
from events.connect import create_pool
from events.records import START
from service.keys import create_key

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


PAGE: Final = 100
POOL_SIZE: Final = 20
FEED_CONNECTIONS: Final = 16
WRITERS: Final = 50
SUBSCRIBERS: Final = 200
SSE_RATE: Final = 20.0
FEED_GOAL: Final = 0.7
WRITE_GOAL: Final = 0.6
WRITE_TAIL_GOAL: Final = 4.0
SSE_P99_GOAL_MS: Final = 100.0
HEALTH_TIMEOUT_S: Final = 60.0

# A phone call between two actors the seed registers, named by id; the id is made per request.
WRITE_BODY: Final[dict[str, Any]] = {
    "kind": "phone_call",
    "interaction_id": "__ID__",
    "participants": [
        {"actor": "abu_marzook", "role": "initiator", "name_as_reported": "Mousa Abu Marzook"},
        {"actor": "bogdanov", "role": "recipient", "name_as_reported": "Mikhail Bogdanov"},
    ],
    "valid_time": "2024-02",
    "valid_time_raw": "in February 2024",
    "topics": ["humanitarian situation in Gaza", "Palestinian unity"],
    "modality": "reported",
    "attributed_to": "Russian Ministry of Foreign Affairs",
    "sources": [
        {
            "url": "https://news.example.org/2024/2/bogdanov-abu-marzook",
            "publisher": "TASS",
            "language": "en",
            "quote": "Bogdanov spoke by phone with Mousa Abu Marzook, the Deputy Chairman of "
            "Hamas's Politburo, about the humanitarian situation in the Gaza Strip.",
        }
    ],
}

LUA_DONE: Final = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"max_us":%.0f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


# -- the database -------------------------------------------------------------------------------


async def fill(dsn: str, owner: asyncpg.Connection, target: int) -> tuple[int, str]:
    """The seed article through the command handler, then synthetic events up to ``target``."""
    filler = Filler(dsn, owner)
    await filler.grow(target)
    return await filler.mix()


@dataclass(frozen=True)
class Page:
    cursor: str
    transaction_id: int
    position: int


async def full_pages(dsn: str) -> list[Page]:
    """Where every full page of ``PAGE`` events starts, by the feed's own cursors."""
    pool = await create_pool(ConnectionOptions(dsn=dsn, role=APP_ROLE))
    try:
        store = EventStore(pool)
        pages: list[Page] = []
        cursor = START
        while True:
            page = await store.read_all(cursor, limit=PAGE)
            if not page.full:
                return pages
            pages.append(Page(cursor.encode(), cursor.transaction_id, cursor.position))
            cursor = page.next_cursor
    finally:
        await pool.close()


# -- servers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """One ``uvicorn --factory`` process on a loopback port."""

    def __init__(
        self,
        name: str,
        target: str,
        env: dict[str, str],
        logs: Path,
        options: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = logs / f"{name}.log"
        command = [
            sys.executable, "-m", "uvicorn", target, "--factory",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
            "--log-level", "warning", "--no-access-log", "--timeout-graceful-shutdown", "2",
            *options,
        ]  # fmt: skip
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
            )

    async def ready(self) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/health")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} server did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ``--loops``: uvicorn's two stacks, named by what each runs.
PLAIN_STACK: Final = ("asyncio+h11", ("--loop", "asyncio", "--http", "h11"))
FAST_STACK: Final = ("uvloop+httptools", ("--loop", "uvloop", "--http", "httptools"))


def subject_server(
    dsn: str, work: Path, name: str = "subject", options: Sequence[str] = ()
) -> Server:
    """The real app: rate limit off (one key sends everything), projections off (a separate
    projector runs them, so a request costs what the API itself does)."""
    env = {
        "DATABASE_URL": dsn,
        "DIPLOFEED_DB_ROLE": APP_ROLE,
        "DIPLOFEED_POOL_MAX_SIZE": str(POOL_SIZE),
        "DIPLOFEED_RATE_LIMIT_PER_MINUTE": "0",
        "DIPLOFEED_RUN_PROJECTIONS": "false",
        "DIPLOFEED_LOG_LEVEL": "warning",
    }
    return Server(name, "service.app:create_app", env, work, options)


def floor_server(dsn: str, work: Path) -> Server:
    """The bare floor (``bench._floor_app``) with the same pool."""
    env = {
        "BENCH_FLOOR_DSN": dsn,
        "BENCH_FLOOR_ROLE": APP_ROLE,
        "BENCH_FLOOR_POOL_MAX_SIZE": str(POOL_SIZE),
    }
    return Server("floor", "bench._floor_app:create_app", env, work)


# -- wrk ----------------------------------------------------------------------------------------


class WrkResult(msgspec.Struct, frozen=True):
    requests: int
    duration_us: int
    connect: int
    read: int
    write: int
    status: int
    timeout: int
    p50_us: float
    p90_us: float
    p99_us: float
    max_us: float

    @property
    def rate(self) -> float:
        return self.requests / (self.duration_us / 1e6)

    @property
    def errors(self) -> int:
        return self.connect + self.read + self.write + self.status + self.timeout


def _lua_str(text: str) -> str:
    assert "]==]" not in text  # noqa: S101
    return f"[==[{text}]==]"


def feed_script(paths: Sequence[str], token: str | None) -> str:
    headers = f"{{ Authorization = {_lua_str('Bearer ' + token)} }}" if token else "{}"
    listing = ",\n".join(_lua_str(p) for p in paths)
    return f"""
local paths = {{
{listing}
}}
local headers = {headers}
local i = 0
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], headers)
end
{LUA_DONE}"""


def write_script(prefix: str, token: str | None) -> str:
    before, after = msgspec.json.encode(WRITE_BODY).decode().split("__ID__")
    auth = f", Authorization = {_lua_str('Bearer ' + token)}" if token else ""
    return f"""
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local n = 0
local headers = {{ ["Content-Type"] = "application/json"{auth} }}
local before = {_lua_str(before)}
local after = {_lua_str(after)}
function request()
  n = n + 1
  local body = before .. {_lua_str(prefix)} .. "t" .. tid .. "_" .. n .. after
  return wrk.format("POST", "/interactions", headers, body)
end
{LUA_DONE}"""


async def run_wrk(url: str, script: str, connections: int, seconds: float, work: Path) -> WrkResult:
    path = work / f"wrk-{uuid.uuid4().hex[:8]}.lua"
    path.write_text(script)
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
        "-s", str(path), url,
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds + 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({process.returncode}): {out.decode()}{err.decode()}")
    return msgspec.json.decode(lines[-1], type=WrkResult)


_TICK: Final = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU time of these processes so far (those still alive)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


BACKENDS_SQL: Final = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"


@dataclass(frozen=True)
class Round:
    """One wrk round and the CPU it cost per request: the server's and PostgreSQL's."""

    result: WrkResult
    server_ms: float
    db_ms: float

    @property
    def rate(self) -> float:
        return self.result.rate


async def measured(
    server: Server,
    script: str,
    *,
    connections: int,
    seconds: float,
    work: Path,
    owner: asyncpg.Connection,
) -> Round:
    # The bench database's backends (the pools' connections stay open through a round).
    pg = [r["pid"] for r in await owner.fetch(BACKENDS_SQL)]
    before = cpu_seconds([server.process.pid]), cpu_seconds(pg)
    result = await run_wrk(server.url, script, connections, seconds, work)
    after = cpu_seconds([server.process.pid]), cpu_seconds(pg)
    n = max(result.requests, 1)
    return Round(result, (after[0] - before[0]) * 1000 / n, (after[1] - before[1]) * 1000 / n)


@dataclass
class Best:
    floor: Round | None = None
    subject: Round | None = None
    ratios: list[float] = field(default_factory=list)
    """Subject over floor throughput, per pair of neighbouring rounds."""


def _keep(best: Round | None, new: Round) -> Round:
    return new if best is None or new.rate > best.rate else best


def _check(name: str, result: WrkResult) -> None:
    if result.errors:
        raise RuntimeError(f"{name}: {result.errors} failed requests in a round: {result}")


async def alternate(
    name: str,
    *,
    rounds: int,
    seconds: float,
    connections: int,
    floor: tuple[Server, Callable[[], str]],
    subject: tuple[Server, Callable[[], str]],
    work: Path,
    owner: asyncpg.Connection,
) -> Best:
    """Warm up each side, then alternate floor and subject rounds; best round of each."""
    best = Best()
    for server, script in (floor, subject):
        _check(name, await run_wrk(server.url, script(), connections, min(2.0, seconds), work))
    previous: dict[str, float] = {}
    for n in range(rounds):
        # Which side goes first alternates too, so neither always follows the other.
        sides = [("floor", floor), ("subject", subject)]
        for side, (server, script) in sides if n % 2 == 0 else sides[::-1]:
            done = await measured(
                server, script(), connections=connections, seconds=seconds, work=work, owner=owner
            )
            _check(f"{name} ({side})", done.result)
            if side == "floor":
                best.floor = _keep(best.floor, done)
            else:
                best.subject = _keep(best.subject, done)
            previous[side] = done.rate
            if len(previous) == 2:
                best.ratios.append(previous["subject"] / previous["floor"])
    return best


async def profile_round(
    server: Server, *, script: str, connections: int, seconds: float, out: Path
) -> None:
    """One more subject round with py-spy sampling the server (raw collapsed stacks)."""
    beside = Path(sys.executable).parent / "py-spy"
    # fmt: off
    spy = await asyncio.create_subprocess_exec(
        str(beside) if beside.exists() else "py-spy", "record",
        "--pid", str(server.process.pid), "--format", "raw", "--rate", "250",
        "--duration", f"{max(1, int(seconds) - 1)}", "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    # fmt: on
    try:
        await run_wrk(server.url, script, connections, seconds, out.parent)
        await asyncio.wait_for(spy.wait(), 30)
    finally:
        if spy.returncode is None:
            spy.kill()
            await spy.wait()


# -- SSE ----------------------------------------------------------------------------------------


class SseResult(msgspec.Struct, frozen=True):
    subscribers: int
    events: int
    expected: int
    delivered: int
    complete: int
    duplicates: int
    unexpected: int
    other_order: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    per_event: list[tuple[str, float, float, float]] = []
    """Per event: id, first and last delivery's latency (s), recorded time (epoch s)."""
    appends_per_s: float = 0.0
    foreign_held: int = 0
    """Events whose first delivery waited while another database's transaction held an xid:
    the feed's visibility horizon is cluster-wide, and this machine's server is shared."""
    clean_p99_ms: float | None = None
    """p99 over the deliveries of the other events."""
    first_p99_ms: float | None = None
    spread_p99_ms: float | None = None
    server_cpu: float = 0.0
    """The server's CPU use while appending (1.0: one core busy all along)."""
    client_cpu: float = 0.0


async def quiesce(owner: asyncpg.Connection, quiet: float = 1.0, bound: float = 60.0) -> None:
    """Wait until nothing has been appended for ``quiet`` seconds (requests that wrk had in
    flight when a round ended are still completing on the server)."""
    deadline = time.monotonic() + bound
    last = -1
    while time.monotonic() < deadline:
        count = await owner.fetchval("SELECT count(*) FROM events")
        if count == last:
            return
        last = count
        await asyncio.sleep(quiet)


FOREIGN_XIDS_SQL: Final = """
SELECT count(*) FROM pg_stat_activity
WHERE datname IS DISTINCT FROM current_database() AND backend_xid IS NOT NULL
"""


async def sample_foreign(owner: asyncpg.Connection, samples: list[tuple[float, int]]) -> None:
    """Every 10 ms: how many transactions of other databases hold a transaction id."""
    while True:
        samples.append((time.time(), int(await owner.fetchval(FOREIGN_XIDS_SQL))))
        await asyncio.sleep(0.01)


def _p99(values: list[float]) -> float | None:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.99))] * 1000 if values else None


def attribute(result: SseResult, samples: list[tuple[float, int]]) -> SseResult:
    """Which events waited on another database's transaction, and the latency of the rest."""
    held: set[str] = set()
    for event_id, first, _, recorded in result.per_event:
        if any(n and recorded <= t <= recorded + first for t, n in samples):
            held.add(event_id)
    per = {e: (f, last) for e, f, last, _ in result.per_event}
    # Each event's deliveries span [first, last]; the clean p99 is over all their latencies,
    # approximated by the event's last delivery (its worst) to stay conservative.
    clean = [last for e, (_, last) in per.items() if e not in held]
    return msgspec.structs.replace(
        result,
        foreign_held=len(held),
        clean_p99_ms=_p99(clean),
        first_p99_ms=_p99([f for f, _ in per.values()]),
        spread_p99_ms=_p99([last - f for f, last in per.values()]),
    )


async def sse_fanout(
    server: Server, read: str, write: str, seconds: float, owner: asyncpg.Connection
) -> SseResult:
    """``SUBSCRIBERS`` live streams in another process while the app records ``SSE_RATE``
    phone calls a second through its command route."""
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench._sse_client", "127.0.0.1", str(server.port), read,
        str(SUBSCRIBERS),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert client.stdin is not None  # noqa: S101
    assert client.stdout is not None  # noqa: S101
    try:
        line = await asyncio.wait_for(client.stdout.readline(), 90)
        if not line:
            raise RuntimeError("the SSE client ended before its subscribers were ready")
        ids: list[str] = []
        total = int(seconds * SSE_RATE)
        prefix = f"sse{uuid.uuid4().hex[:6]}"
        headers = {"Authorization": f"Bearer {write}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:

            async def record(n: int) -> None:
                body = msgspec.json.encode(WRITE_BODY).replace(b"__ID__", f"{prefix}_{n}".encode())
                response = await http.post(
                    "/interactions", content=body, headers={"Content-Type": "application/json"}
                )
                if response.status_code != 201:
                    raise RuntimeError(f"append {n}: {response.status_code} {response.text}")
                ids.extend(response.json()["event_ids"])

            loop = asyncio.get_running_loop()
            started = loop.time()
            cpu = cpu_seconds([server.process.pid]), cpu_seconds([client.pid])
            samples: list[tuple[float, int]] = []
            sampler = loop.create_task(sample_foreign(owner, samples))
            tasks: list[asyncio.Task[None]] = []
            for n in range(total):
                delay = started + n / SSE_RATE - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(loop.create_task(record(n)))
            await asyncio.gather(*tasks)
            elapsed = loop.time() - started
            await asyncio.sleep(0.5)  # the last events' deliveries
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            rate = total / elapsed
            server_cpu = (cpu_seconds([server.process.pid]) - cpu[0]) / elapsed
            client_cpu = (cpu_seconds([client.pid]) - cpu[1]) / elapsed
        client.stdin.write(msgspec.json.encode({"ids": ids}) + b"\n")
        await client.stdin.drain()
        line = await asyncio.wait_for(client.stdout.readline(), 90)
        if not line:
            raise RuntimeError("the SSE client ended without a result")
        return msgspec.structs.replace(
            attribute(msgspec.json.decode(line, type=SseResult), samples),
            appends_per_s=rate,
            server_cpu=server_cpu,
            client_cpu=client_cpu,
        )
    finally:
        if client.returncode is None:
            client.kill()
            await client.wait()


# -- report -------------------------------------------------------------------------------------


def _ms(us: float) -> str:
    return f"{us / 1000:,.1f}"


def print_row(name: str, best: Best, unit: str, goal: float, tail_goal: float | None) -> bool:
    assert best.floor is not None and best.subject is not None  # noqa: S101
    floor, subject = best.floor.result, best.subject.result
    ratio = subject.rate / floor.rate
    tail = subject.p99_us / subject.p50_us
    met = ratio >= goal and (tail_goal is None or tail <= tail_goal)
    goal_text = f">= {goal}x" + (f", p99 <= {tail_goal:g}x p50" if tail_goal else "")
    print(
        f"{name:<34} {floor.rate:>9,.0f} {unit:<7} {subject.rate:>9,.0f} {unit:<7} "
        f"{ratio:>5.2f}x  {goal_text:<24} {'yes' if met else 'NO'}"
    )
    print(
        f"{'':<34} latency ms p50/p99: floor {_ms(floor.p50_us)}/{_ms(floor.p99_us)}, "
        f"subject {_ms(subject.p50_us)}/{_ms(subject.p99_us)} "
        f"(p99/p50 floor {floor.p99_us / floor.p50_us:.1f}x, subject {tail:.1f}x)"
    )
    print(
        f"{'':<34} CPU ms per request, server + its DB backends: floor "
        f"{best.floor.server_ms:.2f} + {best.floor.db_ms:.2f}, subject "
        f"{best.subject.server_ms:.2f} + {best.subject.db_ms:.2f}"
    )
    return met


def print_stacks(name: str, best: Best, unit: str) -> None:
    """``--loops``: the plain stack is the "floor" side, uvloop + httptools the "subject"."""
    assert best.floor is not None and best.subject is not None  # noqa: S101
    plain, fast = best.floor.result, best.subject.result
    print(
        f"{name:<34} {plain.rate:>9,.0f} {unit:<7} {fast.rate:>9,.0f} {unit:<7} "
        f"{fast.rate / plain.rate:>5.2f}x  median of {len(best.ratios)} neighbouring pairs "
        f"{statistics.median(best.ratios):.2f}x (range {min(best.ratios):.2f}-"
        f"{max(best.ratios):.2f})"
    )
    print(
        f"{'':<34} latency ms p50/p99: {PLAIN_STACK[0]} {_ms(plain.p50_us)}/{_ms(plain.p99_us)}"
        f", {FAST_STACK[0]} {_ms(fast.p50_us)}/{_ms(fast.p99_us)}"
    )
    print(
        f"{'':<34} CPU ms per request, server + its DB backends: {PLAIN_STACK[0]} "
        f"{best.floor.server_ms:.2f} + {best.floor.db_ms:.2f}, {FAST_STACK[0]} "
        f"{best.subject.server_ms:.2f} + {best.subject.db_ms:.2f}"
    )


def _opt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def print_sse(result: SseResult) -> bool:
    p99 = result.p99_ms if result.p99_ms is not None else float("inf")
    met = (
        result.complete == result.subscribers
        and result.delivered == result.expected
        and result.duplicates == 0
        and p99 < SSE_P99_GOAL_MS
    )
    name = f"SSE, {result.subscribers} subscribers, {SSE_RATE:g} ev/s"
    print(
        f"{name:<34} {result.expected:>9,} deliv.  {result.delivered:>9,} deliv.  "
        f"{result.delivered / max(result.expected, 1):>5.2f}x  "
        f"{'all, p99 < 100 ms':<24} {'yes' if met else 'NO'}"
    )
    p50 = f"{result.p50_ms:,.1f}" if result.p50_ms is not None else "-"
    worst = f"{result.max_ms:,.1f}" if result.max_ms is not None else "-"
    print(
        f"{'':<34} {result.events} events appended at {result.appends_per_s:.1f}/s through "
        f"POST /interactions; {result.complete}/{result.subscribers} subscribers got every "
        f"one, {result.complete - result.other_order} in the same order; duplicates "
        f"{result.duplicates}; {result.unexpected} other events (earlier rounds' writes)"
    )
    print(
        f"{'':<34} commit-to-delivery ms: p50 {p50}, p99 {p99:,.1f}, max {worst}; CPU while "
        f"appending: server {result.server_cpu:.0%}, subscribers' process "
        f"{result.client_cpu:.0%} of a core"
    )
    print(
        f"{'':<34} per event: first delivery p99 {_opt(result.first_p99_ms)} ms (horizon, "
        f"wake-up, read), last minus first p99 {_opt(result.spread_p99_ms)} ms (fan-out)"
    )
    print(
        f"{'':<34} {result.foreign_held} of {result.events} events waited while another "
        f"database's transaction held an xid (the horizon is cluster-wide); p99 of the others' "
        f"worst delivery {_opt(result.clean_p99_ms)} ms"
    )
    return met


_FRAME: Final = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::\d+)?\)$")
_OURS: Final = ("service/", "events/", "projections/")


def _frame(text: str) -> str:
    match = _FRAME.match(text)
    if match is None:
        return text
    file = match["file"].split("site-packages/")[-1]
    for root in _OURS:
        if f"/{root}" in file:
            file = root + file.split(f"/{root}", 1)[1]
    return f"{match['function']} ({file})"


def summarise_profile(path: Path, top: int = 22) -> None:
    """Of the event loop thread's samples: the inclusive share of this project's functions
    and of request handling, and the self share of the hottest frames."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or "_run_once" not in stack:
            continue  # idle pool threads are not the server's work
        n = int(count)
        samples += n
        frames = [_frame(f) for f in stack.split(";") if f]
        own[frames[-1]] += n
        for frame in set(frames):
            if frame.split(" (")[-1].startswith(_OURS) or "Middleware" in frame:
                inclusive[frame] += n
    print(f"  profile {path.name}: {samples} event-loop samples; inclusive, ours and middleware:")
    for frame, n in inclusive.most_common(top):
        print(f"    {n / max(samples, 1):6.1%}  {frame}")
    print("  hottest frames (self):")
    for frame, n in own.most_common(12):
        print(f"    {n / max(samples, 1):6.1%}  {frame}")


# -- main ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """What every workload of one run shares."""

    pages: list[Page]
    read: str
    write: str
    rounds: int
    seconds: float
    sse_seconds: float
    only: set[str]
    work: Path
    owner: asyncpg.Connection


async def compare_stacks(dsn: str, run: Run, servers: list[Server]) -> None:
    """``--loops``: the real app on asyncio + h11 against the same on uvloop + httptools."""
    plain = subject_server(dsn, run.work, "asyncio-h11", PLAIN_STACK[1])
    servers.append(plain)
    fast = subject_server(dsn, run.work, "uvloop-httptools", FAST_STACK[1])
    servers.append(fast)
    await plain.ready()
    await fast.ready()
    print(
        f"the real app twice, uvicorn 1 worker each, access log off; {PLAIN_STACK[0]} against "
        f"{FAST_STACK[0]}; wrk 1 thread; {run.rounds} alternating {run.seconds:g} s rounds "
        "each after a warm-up",
        flush=True,
    )
    print(f"{'workload':<34} {PLAIN_STACK[0]:>17} {FAST_STACK[0]:>17} {'ratio':>6}", flush=True)
    paths = [
        f"/feed?after={p.cursor}&limit={PAGE}" if p.cursor else f"/feed?limit={PAGE}"
        for p in run.pages
    ]
    workloads: list[tuple[str, str, int, Callable[[str], str], str]] = [
        ("feed", f"feed pages of {PAGE}, {FEED_CONNECTIONS} conns", FEED_CONNECTIONS,
         lambda _: feed_script(paths, run.read), "pages/s"),
        ("writes", f"writes, {WRITERS} concurrent writers", WRITERS,
         lambda prefix: write_script(f"{prefix}{uuid.uuid4().hex[:8]}", run.write), "req/s"),
    ]  # fmt: skip
    for name, label, connections, script, unit in workloads:
        if name not in run.only:
            continue
        best = await alternate(
            name,
            rounds=run.rounds,
            seconds=run.seconds,
            connections=connections,
            floor=(plain, functools.partial(script, "a")),
            subject=(fast, functools.partial(script, "u")),
            work=run.work,
            owner=run.owner,
        )
        print_stacks(label, best, unit)
        sys.stdout.flush()
        await quiesce(run.owner)
    if "sse" in run.only:
        # Two rounds each, in the order plain, fast, fast, plain: neither side always goes first.
        stacks = [(PLAIN_STACK[0], plain), (FAST_STACK[0], fast)]
        for label, server in [*stacks, *stacks[::-1]]:
            print(f"-- SSE on {label}")
            print_sse(await sse_fanout(server, run.read, run.write, run.sse_seconds, run.owner))
            sys.stdout.flush()
            await quiesce(run.owner)


async def main() -> None:  # noqa: PLR0912, PLR0915
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller log, shorter rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="py-spy the real app into this folder")
    parser.add_argument(
        "--loops",
        action="store_true",
        help="compare the real app on uvloop + httptools with asyncio + h11 (no floor)",
    )
    parser.add_argument(
        "--only",
        default="feed,writes,sse",
        help="comma-separated workloads to run (feed, writes, sse); default all",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    size, seconds, sse_seconds = (20_000, 4.0, 10.0) if args.quick else (100_000, 10.0, 30.0)
    server_url = os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"diplofeed_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = server_url.rsplit("/", 1)[0] + "/" + name
    owner = await asyncpg.connect(dsn)
    servers: list[Server] = []
    work = Path(tempfile.mkdtemp(prefix="bench-http-"))
    try:
        await migrate(owner)
        await owner.execute(FLOOR_WRITES_SQL)
        started = time.perf_counter()
        total, mix = await fill(dsn, owner, size)
        pages = await full_pages(dsn)
        read = (await create_key(owner, "bench read", ("read",))).token
        write = (await create_key(owner, "bench write", ("write",))).token
        print(
            f"PostgreSQL {await owner.fetchval('SHOW server_version')}, {os.cpu_count()} CPUs; "
            f"{total:,} events stored ({mix}; filled in {time.perf_counter() - started:.0f} s), "
            f"{len(pages):,} full pages of {PAGE}",
            flush=True,
        )
        if args.loops:
            shared = Run(
                pages, read, write, args.rounds, seconds, sse_seconds,
                set(args.only.split(",")), work, owner,
            )  # fmt: skip
            await compare_stacks(dsn, shared, servers)
            return
        subject = subject_server(dsn, work)
        servers.append(subject)
        floor = floor_server(dsn, work)
        servers.append(floor)
        await subject.ready()
        await floor.ready()
        # One request each, checked by hand, before any load.
        async with httpx.AsyncClient(timeout=30) as http:
            body = msgspec.json.encode(WRITE_BODY).replace(b"__ID__", b"check_1")
            json_type = {"Content-Type": "application/json"}
            for url, auth in ((subject.url, {"Authorization": f"Bearer {write}"}), (floor.url, {})):
                response = await http.post(
                    url + "/interactions", content=body, headers={**json_type, **auth}
                )
                if response.status_code != 201:
                    raise RuntimeError(f"{url}: {response.status_code} {response.text}")
            check = await http.get(
                subject.url + f"/feed?after={pages[1].cursor}&limit={PAGE}",
                headers={"Authorization": f"Bearer {read}"},
            )
            check.raise_for_status()
            bare = await http.get(
                floor.url + f"/feed?tx={pages[1].transaction_id}&pos={pages[1].position}"
            )
            assert len(check.json()) == len(bare.json()) == PAGE  # noqa: S101
            assert [e["id"] for e in check.json()] == [  # noqa: S101
                r["event_id"] for r in bare.json()
            ]
            feed_bytes, bare_bytes = len(check.content), len(bare.content)
        print(
            f"uvicorn, 1 worker each, access log off, log level warning; pools of {POOL_SIZE} "
            f"as {APP_ROLE}; real app with rate limit off and projections off (separate "
            f"projector); wrk 1 thread; best of {args.rounds} alternating {seconds:g} s rounds "
            f"after a warm-up; a feed page is {feed_bytes / 1000:.0f} kB as CloudEvents, "
            f"{bare_bytes / 1000:.0f} kB as the floor's rows",
            flush=True,
        )
        subject_paths = [
            f"/feed?after={p.cursor}&limit={PAGE}" if p.cursor else f"/feed?limit={PAGE}"
            for p in pages
        ]
        floor_paths = [f"/feed?tx={p.transaction_id}&pos={p.position}&limit={PAGE}" for p in pages]
        print(
            f"{'workload':<34} {'floor':>17} {'subject':>17} {'ratio':>6}  {'goal':<24} met?",
            flush=True,
        )
        only = set(args.only.split(","))
        met: list[bool] = []
        if "feed" in only:
            feed = await alternate(
                "feed pages",
                rounds=args.rounds,
                seconds=seconds,
                connections=FEED_CONNECTIONS,
                floor=(floor, lambda: feed_script(floor_paths, None)),
                subject=(subject, lambda: feed_script(subject_paths, read)),
                work=work,
                owner=owner,
            )
            label = f"feed pages of {PAGE}, {FEED_CONNECTIONS} conns"
            met.append(print_row(label, feed, "pages/s", FEED_GOAL, None))
            sys.stdout.flush()
        if "writes" in only:
            writes = await alternate(
                "writes",
                rounds=args.rounds,
                seconds=seconds,
                connections=WRITERS,
                floor=(floor, lambda: write_script(f"f{uuid.uuid4().hex[:8]}", None)),
                subject=(subject, lambda: write_script(f"s{uuid.uuid4().hex[:8]}", write)),
                work=work,
                owner=owner,
            )
            label = f"writes, {WRITERS} concurrent writers"
            met.append(print_row(label, writes, "req/s", WRITE_GOAL, WRITE_TAIL_GOAL))
            sys.stdout.flush()
            await quiesce(owner)
        if "sse" in only:
            met.append(print_sse(await sse_fanout(subject, read, write, sse_seconds, owner)))
            sys.stdout.flush()
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            run = uuid.uuid4().hex[:8]
            profiled = {
                ("feed", "subject"): (subject, feed_script(subject_paths, read), FEED_CONNECTIONS),
                ("feed", "floor"): (floor, feed_script(floor_paths, None), FEED_CONNECTIONS),
                ("writes", "subject"): (subject, write_script("p" + run, write), WRITERS),
                ("writes", "floor"): (floor, write_script("q" + run, None), WRITERS),
            }
            for (label, side), (server, script, connections) in profiled.items():
                if label not in only:
                    continue
                out = args.profile / f"{label}-{side}.txt"
                await profile_round(
                    server, script=script, connections=connections, seconds=seconds, out=out
                )
                await quiesce(owner)
                if out.exists():
                    summarise_profile(out)
        print(f"{sum(met)} of {len(met)} goals met", flush=True)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
        await owner.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
