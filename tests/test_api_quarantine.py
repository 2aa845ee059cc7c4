"""A projection that cannot apply an event, in a serving API: the event is quarantined and
that projection pauses before it, while every other projection keeps up; ``/ready`` names the
projection, the event and the error, ``/metrics`` counts it, and ``diplofeed quarantine`` lists
and releases it."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import TYPE_CHECKING, Any

from events import NewEvent
from service.projectors import PROJECTIONS
from tests.api_server import running_api
from tests.served import cli_env, run_diplofeed
from tests.test_runner_supervision import Fussy

if TYPE_CHECKING:
    import pytest

    from service.runtime import Runtime
    from tests.api_server import ApiServer

NAME = "fussy"


async def _ready(api: ApiServer, *, status: int, within: float = 30) -> dict[str, Any]:
    async with api.client(None) as client, asyncio.timeout(within):
        while True:
            response = await client.get("/ready")
            if response.status_code == status:
                body: dict[str, Any] = response.json()
                return body
            await asyncio.sleep(0.1)


async def _cli(*args: str, dsn: str) -> tuple[int, str, str]:
    env = cli_env(DATABASE_URL=dsn, DIPLOFEED_DB_ROLE="diplofeed_app")
    return await run_diplofeed(*args, env=env, within=60)


def _metric(text: str, metric: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    found = re.search(rf"^{metric}\{{{re.escape(wanted)}\}} (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


async def test_a_poison_event_pauses_only_its_projection_until_released(
    own_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    category = f"q{uuid.uuid4().hex[:10]}"
    bad = f"{category}-bad"

    def make(version: int) -> Fussy:
        fussy = Fussy(category, version=version, name=NAME)
        fussy.poison.add(bad)
        return fussy

    monkeypatch.setitem(PROJECTIONS, NAME, make)
    async with running_api(own_dsn) as api:
        runtime: Runtime = api.app.state.runtime
        await _ready(api, status=200)
        await runtime.store.append(f"{category}-a", [NewEvent(type="test.counted", data={})])
        await runtime.store.append(bad, [NewEvent(type="test.counted", data={})])
        poison = (await runtime.store.read_stream(bad)).events[0]
        async with api.client("write") as writer:
            meeting_id = f"q{uuid.uuid4().hex[:8]}"
            written = await writer.post(
                "/meetings", json={"meeting_id": meeting_id, "title": "T", "valid_time": "2024"}
            )
            assert written.status_code == 201, written.text
        body = await _ready(api, status=503)
        async with asyncio.timeout(30):
            while not all(p["lag_events"] == 0 for p in body["projections"] if p["name"] != NAME):
                body = await _ready(api, status=503)
        async with api.client("read") as reader:
            roster = await reader.get(
                f"/meetings/{meeting_id}", params={"reflect": written.json()["cursor"]}
            )
        async with api.client(None) as client:
            metrics = (await client.get("/metrics")).text
        listed = await _cli("quarantine", "list", dsn=own_dsn)
        released = await _cli("quarantine", "release", NAME, "--skip", dsn=own_dsn)
        after = await _ready(api, status=200)
        counts = await runtime.pool.fetch(
            f"SELECT stream_id FROM projections.counter_{category}_v1 ORDER BY 1"
        )

    statuses = {p["name"]: p for p in body["projections"]}
    fussy = statuses.pop(NAME)
    assert fussy["ok"] is False
    assert (fussy["quarantined"], fussy["runner"]) == (1, "paused")
    assert f"projection {NAME} is paused before event {poison.event_id}" in fussy["problem"]
    assert f"ValueError: cannot fold {bad}" in fussy["problem"]
    assert f"position {poison.position}" in fussy["problem"]
    assert fussy["problem"] in body["problems"]
    # Every other projection caught up and serves.
    assert all(s["ok"] and s["runner"] == "active" for s in statuses.values()), statuses
    assert roster.status_code == 200
    assert roster.headers["Diplofeed-Stale"] == "false"
    assert _metric(metrics, "diplofeed_projection_quarantined_events", name=NAME) == 1.0
    assert _metric(metrics, "diplofeed_projection_quarantined_events", name="roster") == 0.0
    assert _metric(metrics, "diplofeed_projection_runner", name=NAME, state="paused") == 1.0
    assert listed[0] == 0, listed
    assert f"{NAME} v1  held" in listed[1]
    assert f"ValueError: cannot fold {bad}" in listed[1]
    assert released[0] == 0, released
    assert "released (skip)" in released[1]
    assert all(p["ok"] for p in after["projections"]), after
    assert [r["stream_id"] for r in counts] == [f"{category}-a/1"]


async def test_a_runner_that_keeps_failing_is_not_ready(
    own_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    category = f"q{uuid.uuid4().hex[:10]}"

    def make(version: int) -> Fussy:
        broken = Fussy(category, version=version, name="broken")
        broken.flaky_setup = 1_000  # a fault that does not go away
        return broken

    monkeypatch.setitem(PROJECTIONS, "broken", make)
    async with running_api(own_dsn) as api:
        body = await _ready(api, status=503)
        async with asyncio.timeout(30):
            while "keeps failing" not in str(body["problems"]):
                await asyncio.sleep(0.1)
                body = await _ready(api, status=503)
    (broken,) = [p for p in body["projections"] if p["name"] == "broken"]
    assert broken["runner"] == "retrying"
    assert broken["problem"].startswith("projection broken keeps failing (")
    assert broken["problem"].endswith("RuntimeError: setup hiccup")
    assert all(p["ok"] for p in body["projections"] if p["name"] != "broken"), body
