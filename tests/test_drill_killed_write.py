"""Fault drill: an API process is killed (SIGKILL) while a keyed write is in flight.

The write is held in flight by a lock on the event log that blocks its append. While its
process lives, a retry with the same Idempotency-Key elsewhere is told 409 "still in flight".
Then the process is killed with ``kill -9``, which gives nothing back, and the lock lifted:
a retry with the same key on another API process must succeed at once (not after the claim's
30-second lease), and the write must be in the log exactly once, whichever of the dead
process's append (its server session finishes the statement it was waiting on) and the
retry's gets there first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import httpx
import pytest

from events import APP_ROLE
from service import idempotency
from tests.api_server import running_api
from tests.served import free_port, until_answers

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.timeout(120)

RETRY_FOR = 10.0
"""How long the retry may keep hearing 409: well under the lease (``LEASE_SECONDS``), which is
what a retry had to wait out before."""

# Sessions waiting for this one's lock (only an append can: readers are let through).
_BLOCKED_SQL = """
SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = any(pg_blocking_pids(pid))
"""


@contextlib.asynccontextmanager
async def _served_elsewhere(dsn: str) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """``diplofeed serve`` over ``dsn`` as a process of its own: its URL and the process."""
    found = shutil.which("diplofeed", path=str(Path(sys.executable).parent))
    assert found is not None, "the diplofeed command is not installed next to this Python"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIPLOFEED_")},
        "DATABASE_URL": dsn,
        "DIPLOFEED_DB_ROLE": APP_ROLE,
        "DIPLOFEED_RUN_PROJECTIONS": "false",
        "DIPLOFEED_RATE_LIMIT_PER_MINUTE": "0",
        "DIPLOFEED_LOG_LEVEL": "warning",
    }
    process = await asyncio.create_subprocess_exec(
        found, "serve", "--port", str(port), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as probe:
            await until_answers(probe, "/health", within=60)
        yield url, process
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


async def test_a_write_in_flight_in_a_killed_process_is_retried_at_once_elsewhere(
    own_dsn: str,
) -> None:
    meeting = f"m{uuid.uuid4().hex[:16]}"
    body = {"meeting_id": meeting, "title": "Killed talks", "valid_time": "2024-03"}
    key = f"killed-{uuid.uuid4()}"
    headers = {"Idempotency-Key": key}
    admin = await asyncpg.connect(own_dsn)
    try:
        async with (
            running_api(own_dsn, run_projections=False) as survivor,
            survivor.client("write") as retrying,
            _served_elsewhere(own_dsn) as (doomed_url, doomed),
        ):
            auth = retrying.headers["Authorization"]
            blocker = admin.transaction()
            await blocker.start()
            await admin.execute("LOCK TABLE events IN SHARE MODE")  # appends wait
            async with httpx.AsyncClient(
                base_url=doomed_url, headers={"Authorization": auth}, timeout=60
            ) as client:
                write = client.post("/meetings", json=body, headers=headers)
                in_flight = asyncio.create_task(write)
                try:
                    async with asyncio.timeout(30):
                        while not await admin.fetchval(_BLOCKED_SQL):  # noqa: ASYNC110
                            await asyncio.sleep(0.05)
                    # The write is in flight and its process alive: the key is held.
                    live = await retrying.post("/meetings", json=body, headers=headers)
                    assert live.status_code == 409, live.text
                    doomed.send_signal(signal.SIGKILL)
                    await doomed.wait()
                    with pytest.raises(httpx.TransportError):
                        await in_flight
                finally:
                    in_flight.cancel()
                    await blocker.rollback()
            statuses: list[int] = []
            loop = asyncio.get_running_loop()
            given_up = loop.time() + RETRY_FOR
            while True:
                response = await retrying.post("/meetings", json=body, headers=headers)
                statuses.append(response.status_code)
                if response.status_code != 409 or loop.time() > given_up:
                    break
                await asyncio.sleep(0.1)
            assert response.status_code in (200, 201), (statuses, response.text)
            assert set(statuses[:-1]) <= {409}, statuses
            again = await retrying.post("/meetings", json=body, headers=headers)
            assert again.status_code == response.status_code
            assert again.headers["Idempotent-Replayed"] == "true"
            # The same receipt, now saying it is a replay.
            assert again.json() == {**response.json(), "replayed": True}
        rows = await admin.fetch(
            "SELECT event_id::text FROM events WHERE stream_id = $1", f"meeting-{meeting}"
        )
        assert [r["event_id"] for r in rows] == response.json()["event_ids"]
        assert len(rows) == 1
        principal = await admin.fetchval(
            "SELECT principal FROM idempotency_keys WHERE key = $1", key
        )
        command_id = idempotency.command_id_for(principal, key)
        caused = await admin.fetch(
            "SELECT event_id FROM events WHERE metadata->>'causation_id' = $1", command_id
        )
        assert len(caused) == 1
    finally:
        await admin.close()
