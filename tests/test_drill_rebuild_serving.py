"""Fault drill: ``diplofeed rebuild`` of every projection, run as the schema owner, while the API
serves as ``diplofeed_app`` with writers and readers.

The rebuild is the real command in a process of its own, connected as the owner without a role
(as an operator on the demo's database, or on the compose stack's with the owner's URL, would
run it). The API runs the projections itself. Writers schedule meetings (each with its own
Idempotency-Key, retried with it on any failure); a reader walks every view over and over.

What must hold: the tables a rebuild makes are usable by the application role, so every view
answers 200 during and after the rebuilds; ``/ready`` is 200 once the projections caught up;
every acknowledged write is in the log once and shows in the rebuilt views; nothing answered
5xx.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest

from events import Cursor
from events.domain.seed import load_seed
from service.projectors import PROJECTIONS
from tests.api_server import running_api
from tests.served import cli_env, run_diplofeed

if TYPE_CHECKING:
    from service.runtime import Runtime
    from tests.api_server import ApiServer

WRITERS = 3
VIEWS = (
    "/meetings",
    "/meetings/moscow_2024",
    "/actors?name=hamas",
    "/actors/hamas",
    "/actors/hamas/contacts",
    "/graph",
    "/audit/meeting-moscow_2024",
)

pytestmark = pytest.mark.timeout(240)


@dataclass
class Drill:
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Idempotency-Key -> receipt of its acknowledged write."""
    failures: list[tuple[int | None, str]] = field(default_factory=list)
    reads: list[tuple[str, int]] = field(default_factory=list)
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    """Reads not answered 200: path, status, body."""
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def _writer(api: ApiServer, drill: Drill, index: int) -> None:
    async with api.client("write", timeout=20) as client:
        serial = 0
        while not drill.stop.is_set():
            serial += 1
            key = f"drill-{uuid.uuid4()}"
            body = {"meeting_id": f"rb{index}n{serial}", "title": "Talks", "valid_time": "2024"}
            while True:
                try:
                    response = await client.post(
                        "/meetings", json=body, headers={"Idempotency-Key": key}
                    )
                except Exception as exc:  # noqa: BLE001 (every failure is recorded and fails the drill)
                    drill.failures.append((None, repr(exc)))
                else:
                    if response.status_code in (200, 201):
                        drill.acked[key] = response.json()
                        break
                    drill.failures.append((response.status_code, response.text[:300]))
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.02)


async def _reader(api: ApiServer, drill: Drill) -> None:
    async with api.client("read", timeout=20) as client:
        while not drill.stop.is_set():
            for path in VIEWS:
                response = await client.get(path)
                drill.reads.append((path, response.status_code))
                if response.status_code != 200:
                    drill.refused.append((path, response.status_code, response.text[:300]))
            await asyncio.sleep(0.05)


async def _rebuild_as_owner(name: str, owner_dsn: str) -> str:
    status, out, err = await run_diplofeed(
        "rebuild", name, "--batch-size", "20", env=cli_env(DATABASE_URL=owner_dsn)
    )
    assert status == 0, err[-3000:]
    return out


async def _until_ready(api: ApiServer, *, within: float = 30) -> dict[str, Any]:
    body: dict[str, Any] = {}
    async with api.client("read") as client:
        try:
            async with asyncio.timeout(within):
                while True:
                    response = await client.get("/ready")
                    body = response.json()
                    if response.status_code == 200:
                        return body
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise AssertionError(f"not ready within {within}s: {body}") from None


async def _until_views_serve(api: ApiServer) -> None:
    """Until every view has the seed (``/ready`` only says the projections are close)."""
    async with api.client("read") as client, asyncio.timeout(30):
        for path in VIEWS:
            while (await client.get(path)).status_code != 200:  # noqa: ASYNC110
                await asyncio.sleep(0.1)


async def _owners(dsn: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'projections'"
        )
    finally:
        await conn.close()
    return {r["tablename"]: r["tableowner"] for r in rows}


async def test_rebuilds_by_the_owner_leave_views_the_api_can_serve(own_dsn: str) -> None:
    drill = Drill()
    async with running_api(own_dsn) as api:
        runtime: Runtime = api.app.state.runtime
        await load_seed(runtime.handler)
        await _until_ready(api)
        await _until_views_serve(api)
        tasks = [asyncio.create_task(_writer(api, drill, i)) for i in range(WRITERS)]
        tasks.append(asyncio.create_task(_reader(api, drill)))
        try:
            reports = [await _rebuild_as_owner(name, own_dsn) for name in PROJECTIONS]
            await asyncio.sleep(2)  # the API has switched to the new versions
            ready = await _until_ready(api)
            await asyncio.sleep(1)  # writes and reads go on against the rebuilt views
        finally:
            drill.stop.set()
            async with asyncio.timeout(60):
                await asyncio.gather(*tasks)
        last = max(Cursor.decode(r["cursor"]) for r in drill.acked.values()).encode()
        async with api.client("read") as client:
            after = {
                path: await client.get(httpx.URL(path).copy_merge_params({"reflect": last}))
                for path in VIEWS
            }
            missing = [
                receipt["stream_id"]
                for receipt in drill.acked.values()
                if (
                    await client.get(
                        f"/meetings/{receipt['stream_id'].removeprefix('meeting-')}",
                        params={"reflect": last},
                    )
                ).status_code
                != 200
            ]
        conn = await asyncpg.connect(own_dsn)
        try:
            log = await conn.fetch("SELECT event_id::text, stream_id FROM events")
        finally:
            await conn.close()
        owners = await _owners(own_dsn)

    assert all("-> 2 is live" in report for report in reports), reports
    assert [p["version"] for p in ready["projections"]] == [2] * len(PROJECTIONS), ready
    assert {path: r.status_code for path, r in after.items()} == dict.fromkeys(VIEWS, 200), {
        path: r.text[:300] for path, r in after.items() if r.status_code != 200
    }
    assert not drill.refused, drill.refused[:10]
    assert drill.reads
    assert not drill.failures, drill.failures[:10]
    assert drill.acked, "no write was acknowledged"
    # Every acknowledged write is in the log once and in the rebuilt roster.
    by_id: dict[str, list[str]] = {}
    for row in log:
        by_id.setdefault(row["event_id"], []).append(row["stream_id"])
    for receipt in drill.acked.values():
        assert by_id.get(receipt["event_ids"][0]) == [receipt["stream_id"]], receipt
    drill_streams = [r["stream_id"] for r in log if r["stream_id"].startswith("meeting-rb")]
    assert len(drill_streams) == len(set(drill_streams)) == len(drill.acked)
    assert not missing, missing[:10]
    # Whoever ran the rebuild, the application role owns the tables it serves from.
    assert owners
    assert set(owners.values()) == {"diplofeed_app"}, owners
