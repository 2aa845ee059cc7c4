"""The operator's ``diplofeed`` commands, run as real processes: help with an example on every
command, load, project, rebuild, export in three formats, tail, one-line errors, and the demo
on an embedded PostgreSQL that keeps its data across restarts."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import httpx
import pytest
from cloudevents.core.formats.json import JSONFormat

from projections.exports import GDELT_COLUMNS
from tests.database import scratch_database
from tests.served import cli_env as _env
from tests.served import diplofeed as _diplofeed
from tests.served import free_port, until_answers

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

SEED = Path(__file__).resolve().parent.parent / "events" / "domain" / "seed_article.jsonl"
COMMANDS = (
    "serve", "project", "migrate", "rebuild", "verify", "keys", "keys create", "keys list",
    "keys revoke", "load", "export", "tail", "quarantine", "quarantine list", "quarantine release",
)  # fmt: skip


async def _run(*args: str, env: dict[str, str], within: float = 120) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        _diplofeed(), *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), within)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture(scope="module")
async def loaded(server_url: str) -> AsyncIterator[dict[str, str]]:
    """A database with the seed article loaded by ``diplofeed load``; its environment."""
    async with scratch_database(server_url, migrated=True) as dsn:
        env = _env(DATABASE_URL=dsn, DIPLOFEED_DB_ROLE="diplofeed_app")
        status, out, err = await _run("load", str(SEED), env=env)
        assert status == 0, err
        assert "73 recorded" in out
        assert "loading" in err and "lines/s" in err
        yield env


@pytest.mark.parametrize("command", COMMANDS)
async def test_every_command_has_help_with_an_example(command: str) -> None:
    status, out, err = await _run(*command.split(), "--help", env=_env())
    assert status == 0, err
    assert "Example:" in out, command


async def test_errors_are_one_line_with_a_non_zero_status(loaded: dict[str, str]) -> None:
    for args in (("rebuild", "nope"), ("export", "--format", "xml"), ("load", "/no/such/file")):
        status, _, err = await _run(*args, env=loaded)
        assert status != 0, args
        assert len(err.strip().splitlines()) == 1, (args, err)
        assert err.startswith("error: "), (args, err)
    status, _, err = await _run(
        "migrate", env=_env(DATABASE_URL="postgresql://postgres@127.0.0.1:1/x")
    )
    assert status == 2
    assert err.startswith("error: database:")


async def test_a_second_load_records_nothing_and_bad_lines_are_named(
    loaded: dict[str, str], tmp_path: Path
) -> None:
    status, out, _ = await _run("load", str(SEED), env=loaded)
    assert status == 0
    assert "0 recorded" in out and "73 recorded before" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "register_actor", "actor_id": "x", "kind": "person"}\n')
    status, _, err = await _run("load", str(bad), env=loaded)
    assert status == 1
    assert "line 1" in err and "canonical_name" in err


async def test_project_builds_the_views_and_stops_on_sigterm(loaded: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        _diplofeed(), "project", env=loaded,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    # Printed once the process handles SIGTERM.
    started = await asyncio.wait_for(process.stderr.readline(), 60)
    assert b"running projections" in started
    conn = await asyncpg.connect(loaded["DATABASE_URL"])
    try:
        async with asyncio.timeout(60):
            while True:
                rows = await conn.fetch("SELECT name, events FROM projection_checkpoints")
                done = {r["name"]: r["events"] for r in rows}
                if {"roster", "contacts", "audit"} <= set(done) and all(done.values()):
                    break
                await asyncio.sleep(0.2)
    finally:
        await conn.close()
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert "projections stopped" in err.decode()


async def test_exports_in_three_formats(loaded: dict[str, str], tmp_path: Path) -> None:
    await test_project_builds_the_views_and_stops_on_sigterm(loaded)
    plover = tmp_path / "plover.jsonl"
    status, _, err = await _run("export", "--format", "plover", "-o", str(plover), env=loaded)
    assert status == 0, err
    assert "exporting plover" in err and "interactions/s" in err
    records = [json.loads(line) for line in plover.read_text().splitlines()]
    assert records
    for record in records:
        assert {"id", "date", "actor", "event"} <= set(record)
        assert len(record["date"]) == 10
    visit = next(r for r in records if r["id"] == "visit_mashal_moscow_2006_03")
    assert visit["event"] == ["CONSULT"]
    assert visit["mode"] == ["visit"]
    assert visit["actor"][0]["diplofeed_id"] == "mashal"
    assert visit["enddate"] == "2006-03-31"
    # The summary adds up and names what was left out, and why.
    counts = re.search(r"(\d+) interactions: wrote (\d+) records, left out (\d+)", err)
    assert counts is not None, err
    read, written, left_out = map(int, counts.groups())
    assert (written, read) == (len(records), written + left_out)
    undated = re.search(r"left out \d+ with no first day .*", err)
    assert undated is not None and "call_bogdanov_al_ahmad_2024" in undated.group(), err
    assert "call_bogdanov_al_ahmad_2024" not in {r["id"] for r in records}
    untyped = re.search(r"left out \d+ with no PLOVER event type .*", err)
    assert untyped is not None and "address_lavrov_factions_2017_01" in untyped.group(), err

    status, out, err = await _run("export", "--format", "gdelt", env=loaded)
    assert status == 0, err
    table = list(csv.reader(io.StringIO(out), delimiter="\t"))
    assert tuple(table[0]) == GDELT_COLUMNS
    rows = [dict(zip(GDELT_COLUMNS, row, strict=True)) for row in table[1:]]
    assert len(rows) >= len(records)
    row = next(r for r in rows if r["GLOBALEVENTID"] == "visit_mashal_moscow_2006_03")
    assert (row["SQLDATE"], row["EventCode"], row["EventRootCode"]) == ("20060301", "042", "04")
    assert row["EDTF"] == "2006-03"
    row = next(r for r in rows if r["GLOBALEVENTID"] == "call_bogdanov_al_ahmad_2024")
    assert (row["SQLDATE"], row["DateUpper"], row["DatePrecision"]) == ("", "20240229", "open")
    # "Putin avoids public contact" is no event: left out, and named.
    assert not [r for r in rows if r["GLOBALEVENTID"].startswith("pattern_putin_avoids_hamas")]
    negated = re.search(r"left out \d+ negated \(reported as not happening\): .*", err)
    assert negated is not None and "pattern_putin_avoids_hamas" in negated.group(), err

    status, out, err = await _run(
        "export", "--format", "cloudevents", "--source", "https://feed.example", env=loaded
    )
    assert status == 0, err
    events = [JSONFormat().read(None, line) for line in out.splitlines()]
    assert len(events) == 73
    assert events[0].get_source().startswith("https://feed.example/streams/")


async def test_rebuild_shows_progress_and_switches_version(loaded: dict[str, str]) -> None:
    status, out, err = await _run("rebuild", "roster", "--batch-size", "10", env=loaded)
    assert status == 0, err
    assert "rebuilding roster" in err and "events/s" in err
    assert "is live" in out
    conn = await asyncpg.connect(loaded["DATABASE_URL"])
    try:
        version = await conn.fetchval("SELECT version FROM projection_live WHERE name = 'roster'")
    finally:
        await conn.close()
    assert version is not None and version >= 2


async def test_tail_prints_the_feed(loaded: dict[str, str]) -> None:
    status, out, err = await _run(
        "tail", "--from-start", "--category", "meeting", "--max", "3", env=loaded
    )
    assert status == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    assert all("meeting-" in line and "meeting." in line for line in lines)
    status, out, _ = await _run("tail", "--from-start", "--json", "--max", "1", env=loaded)
    assert json.loads(out)["specversion"] == "1.0"


async def _serve_demo(data_dir: Path, port: int) -> tuple[int, str, str, dict[str, object]]:
    process = await asyncio.create_subprocess_exec(
        _diplofeed(), "serve", "--demo", "--port", str(port),
        env=_env(DIPLOFEED_DATA_DIR=str(data_dir)),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    seen: dict[str, object] = {}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await until_answers(client, "/ready")
            async with asyncio.timeout(60):
                # The projections are still catching up (404) or building tables (503).
                roster = await client.get("/meetings/moscow_2024")
                while roster.status_code in (404, 503):
                    await asyncio.sleep(0.2)
                    roster = await client.get("/meetings/moscow_2024")
            seen["roster"] = roster.status_code
            seen["factions"] = len(roster.json()["factions"])
    finally:
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode(), seen


async def test_the_demo_runs_on_an_embedded_postgres_and_keeps_its_data(tmp_path: Path) -> None:
    port = free_port()
    status, out, err, seen = await _serve_demo(tmp_path / "demo", port)
    assert status == 0, err
    assert seen == {"roster": 200, "factions": 5}
    assert f"http://127.0.0.1:{port}/schema" in out
    assert "73 commands recorded now" in err
    token = next(line for line in out.splitlines() if "Bearer" in line).split()[-1]
    status, out, err, seen = await _serve_demo(tmp_path / "demo", port)
    assert status == 0, err
    assert seen["factions"] == 5
    assert "0 commands recorded now, 73 recorded before" in err
    assert token in out  # the same key again
    assert (tmp_path / "demo" / "pgdata").is_dir()


async def test_with_database_url_the_demo_uses_that_server(server_url: str, tmp_path: Path) -> None:
    port = free_port()
    async with scratch_database(server_url, migrated=False) as dsn:
        env = _env(DATABASE_URL=dsn, DIPLOFEED_DATA_DIR=str(tmp_path / "demo"))
        process = await asyncio.create_subprocess_exec(
            _diplofeed(), "serve", "--demo", "--port", str(port), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                await until_answers(client, "/ready")
        finally:
            process.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        assert "embedded" not in err.decode()
        conn = await asyncpg.connect(dsn)
        try:
            recorded = await conn.fetchval("SELECT count(*) FROM events")
        finally:
            await conn.close()
    assert recorded == 73  # migrated and seeded there, not in an embedded server
    assert not (tmp_path / "demo" / "pgdata").exists()
