"""A live-stream client that resumes far back and hangs up at once: the server must notice and
stop, not write the whole backlog into the closed socket.

The API is the real app served by uvicorn on the test's event loop; the two clients (the one
that hangs up, and a prober of ``/health``) are blocking sockets in threads of their own, so
they act while the server's loop is busy, as separate processes would.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from events import NewEvent
from tests.api_server import running_api

if TYPE_CHECKING:
    from service.runtime import Runtime
    from tests.api_server import ApiServer

BACKLOG = 6_000
"""Events behind the resuming client (the issue's case), all in the hub's window."""
SEND_FAILED = "socket.send() raised exception"
ROOT = Path(__file__).resolve().parent.parent


class _Recorder(logging.Handler):
    """Keeps every record logged to the logger it is attached to."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def _resume_and_hang_up(api: ApiServer, after: str) -> str:
    """Run ``tests.hangup_child`` against ``api``; what it printed."""
    host, port = api.url.removeprefix("http://").split(":")
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.hangup_child", host, port, after, api.tokens["read"],
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    out, _ = await child.communicate()
    assert child.returncode == 0
    return out.decode()


def _probe_health(api: ApiServer, stop: threading.Event, statuses: list[int | str]) -> None:
    with httpx.Client(base_url=api.url, timeout=20) as client:
        while not stop.is_set():
            try:
                statuses.append(client.get("/health").status_code)
            except httpx.HTTPError as exc:
                statuses.append(repr(exc))
            stop.wait(0.005)


async def test_a_client_that_hangs_up_far_behind_is_let_go_at_once(own_dsn: str) -> None:
    async with running_api(own_dsn, run_projections=False) as api:
        runtime: Runtime = api.app.state.runtime
        start = await runtime.store.horizon()
        padding = "x" * 400
        for batch in range(0, BACKLOG, 500):
            written = await runtime.store.append(
                f"probe-{batch}",
                [NewEvent(type="test.backlog", data={"n": n, "pad": padding}) for n in range(500)],
            )
        async with asyncio.timeout(30):
            while runtime.hub.end < written.cursor:  # noqa: ASYNC110
                await asyncio.sleep(0.05)

        recorder = _Recorder()
        logging.getLogger("asyncio").addHandler(recorder)
        stop = threading.Event()
        statuses: list[int | str] = []
        prober = threading.Thread(target=_probe_health, args=(api, stop, statuses))
        prober.start()
        try:
            hung_up = await _resume_and_hang_up(api, start.encode())
            # The server lets the stream go once it has seen the client leave.
            async with asyncio.timeout(10):
                while runtime.hub.subscribers:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            probes_after = len(statuses) + 3
            async with asyncio.timeout(10):
                while len(statuses) < probes_after:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        finally:
            stop.set()
            await asyncio.to_thread(prober.join)
            logging.getLogger("asyncio").removeHandler(recorder)

    assert hung_up.split()[1:3] == ["HTTP/1.1", "200"], hung_up
    failed_sends = [m for m in recorder.messages if SEND_FAILED in m]
    assert not failed_sends, f"{len(failed_sends)} x {SEND_FAILED!r}"
    assert statuses
    assert set(statuses) == {200}, statuses
