"""The report of ``bench.views``: one markdown table of every page measured, the growth of
each page's cost from the first size to the second, and the goals of issue 12, each printed
PASS, FAIL or n/a (nothing to judge)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from bench._views_measure import Load, Plan
    from bench._views_workloads import Row

__all__ = ("DEFAULT_LIMIT", "FLOOR_PAGE", "SizeResult", "parse_size", "report", "size_label")

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
