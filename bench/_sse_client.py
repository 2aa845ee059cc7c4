"""SSE subscribers for ``bench/http.py``, in their own process: ``n`` connections to
``GET /feed/stream`` on one asyncio loop, over raw sockets (HTTP/1.1, chunked) so that the client
adds as little latency as it can.

    python -m bench._sse_client HOST PORT TOKEN N

Protocol with the parent over stdin/stdout (one JSON object a line): once every subscriber has
received the stream's opening comment (so its start cursor is fixed) it prints
``{"ready": n}``; the parent appends, then writes ``{"ids": [...]}``, the event ids it appended;
the client waits (bounded) until every subscriber has them all and prints the result: per
delivery, receive time (``time.time()``) minus the CloudEvent's ``time`` (the database's
``now()`` at the INSERT, so at or before the commit: the latency is, if anything, overstated).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from datetime import datetime
from typing import Final

import msgspec

READY_TIMEOUT_S: Final = 60.0
DRAIN_TIMEOUT_S: Final = 15.0


class _Event(msgspec.Struct):
    id: str
    time: datetime


_DECODE: Final = msgspec.json.Decoder(_Event)


class Subscriber:
    """One live-stream connection and what it received."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.received: list[tuple[str, float, float]] = []
        """(event id, its recorded time, latency in seconds) per data message, in arrival
        order."""
        self.error: str | None = None

    async def run(self, host: str, port: int, token: str) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(
                f"GET /feed/stream HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0]
            if b" 200 " not in status + b" ":
                raise RuntimeError(f"live stream answered {status.decode(errors='replace')}")
            if b"transfer-encoding: chunked" not in head.lower():
                raise RuntimeError("live stream is not chunked")
            buffer = b""
            while True:
                size_line = await reader.readline()
                if not size_line:
                    return
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    return
                chunk = await reader.readexactly(size + 2)
                now = time.time()
                buffer += chunk[:-2].replace(b"\r\n", b"\n")
                *messages, buffer = buffer.split(b"\n\n")
                for message in messages:
                    self._message(message, now)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _message(self, message: bytes, now: float) -> None:
        data = [line[5:].lstrip(b" ") for line in message.split(b"\n") if line.startswith(b"data:")]
        if not data:
            self.ready.set()  # the opening comment, or a heartbeat
            return
        event = _DECODE.decode(b"\n".join(data))
        recorded = event.time.timestamp()
        self.received.append((event.id, recorded, now - recorded))


def _percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))]


async def main(host: str, port: int, token: str, n: int) -> None:
    loop = asyncio.get_running_loop()
    subscribers = [Subscriber() for _ in range(n)]
    tasks = [loop.create_task(s.run(host, port, token)) for s in subscribers]
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            for s, t in zip(subscribers, tasks, strict=True):
                waiter = loop.create_task(s.ready.wait())
                await asyncio.wait({waiter, t}, return_when=asyncio.FIRST_COMPLETED)
                if t.done():
                    waiter.cancel()
                    t.result()
                    raise RuntimeError("a live stream ended before it started")
        print(msgspec.json.encode({"ready": n}).decode(), flush=True)
        line = await stdin.readline()
        ids: list[str] = msgspec.json.decode(line)["ids"]
        wanted = set(ids)
        deadline = loop.time() + DRAIN_TIMEOUT_S
        while loop.time() < deadline:
            if all(sum(r[0] in wanted for r in s.received) >= len(ids) for s in subscribers):
                break
            await asyncio.sleep(0.05)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies: list[float] = []
    complete = duplicates = unexpected = other_order = 0
    reference: list[str] | None = None
    per_event: dict[str, tuple[float, float, float]] = {}
    """Per event: its first and last delivery's latency, and its recorded time."""
    for s in subscribers:
        seen = [r[0] for r in s.received]
        got = set(seen)
        duplicates += len(seen) - len(got)
        unexpected += len(got - wanted)
        # Every subscriber must see the events in the feed's one order: the first complete
        # subscriber's order is the reference.
        mine = [e for e in seen if e in wanted]
        if wanted <= got:
            reference = reference or mine
            other_order += mine != reference
            complete += 1
        for event_id, recorded, lag in s.received:
            if event_id in wanted:
                latencies.append(lag)
                first, last, _ = per_event.get(event_id, (lag, lag, recorded))
                per_event[event_id] = (min(first, lag), max(last, lag), recorded)
    latencies.sort()
    result = {
        "subscribers": n,
        "events": len(ids),
        "expected": n * len(ids),
        "delivered": len(latencies),
        "complete": complete,
        "duplicates": duplicates,
        "unexpected": unexpected,
        "other_order": other_order,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
        "p99_ms": _percentile(latencies, 0.99) * 1000 if latencies else None,
        "max_ms": latencies[-1] * 1000 if latencies else None,
        # first: the hub's own delay (visibility horizon, wake-up, read); last - first: the
        # fan-out to every subscriber.
        "per_event": [
            [e, first, last, recorded] for e, (first, last, recorded) in per_event.items()
        ],
    }
    print(msgspec.json.encode(result).decode(), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
