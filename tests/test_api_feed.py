"""The feed over HTTP: CloudEvents pages with links and cursors, immutable full pages, 304s,
filters, long polls, the live stream with resumption, and single streams."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from cloudevents.core.formats.json import JSONFormat
from httpx_sse import aconnect_sse

from tests.test_api_writes import new_id, register, schedule, until_visible

if TYPE_CHECKING:
    from tests.api_server import ApiServer


async def _tail(client: httpx.AsyncClient, **params: Any) -> str:
    """The cursor at the feed's visible end now (for these filters)."""
    url: str | None = "/feed"
    query: dict[str, Any] = {"limit": 1000, **params}
    while True:
        response = await client.get(url or "/feed", params=query)
        assert response.status_code == 200, response.text
        cursor = response.headers["Diplofeed-Cursor"]
        if len(response.json()) < 1000:
            return cursor
        query["after"] = cursor


async def _write_meetings(api: ApiServer, count: int) -> list[str]:
    """Schedule ``count`` meetings and wait until the feed shows them."""
    async with api.client("write") as client:
        written = [await schedule(client) for _ in range(count)]
        await until_visible(client, written[-1][1].headers["Diplofeed-Cursor"])
    return [meeting_id for meeting_id, _ in written]


async def test_pages_link_to_the_next_and_full_pages_are_immutable(api: ApiServer) -> None:
    await _write_meetings(api, 3)
    async with api.client("read") as client:
        response = await client.get("/feed", params={"limit": 2})
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        etag = response.headers["ETag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        again = await client.get("/feed", params={"limit": 2})
        cached = await client.get("/feed", params={"limit": 2}, headers={"If-None-Match": etag})
        following = await client.get(response.links["next"]["url"])
    assert again.content == response.content
    assert again.headers["ETag"] == etag
    assert cached.status_code == 304
    assert not cached.content
    first, second = response.json(), following.json()
    assert len(first) == 2
    assert following.request.url.params["after"] == first[-1]["cursor"]
    assert not {e["id"] for e in first} & {e["id"] for e in second}


async def test_the_head_page_revalidates(api: ApiServer) -> None:
    async with api.client("read") as client:
        tail = await _tail(client, category="meeting")
        head = await client.get("/feed", params={"after": tail, "category": "meeting"})
        assert head.headers["Cache-Control"] == "no-cache"
        same = await client.get(
            "/feed",
            params={"after": tail, "category": "meeting"},
            headers={"If-None-Match": head.headers["ETag"]},
        )
        assert same.status_code in (200, 304)  # the horizon may move on between the two reads
        await _write_meetings(api, 1)
        moved = await client.get(
            "/feed",
            params={"after": tail, "category": "meeting", "limit": 10},
            headers={"If-None-Match": head.headers["ETag"], "Prefer": "wait=5"},
        )
    assert moved.status_code == 200
    assert len(moved.json()) == 1


async def test_every_page_is_valid_cloudevents(api: ApiServer) -> None:
    await _write_meetings(api, 2)
    async with api.client("read") as client:
        response = await client.get("/feed", params={"limit": 50})
    batch = response.json()
    assert batch
    for raw in batch:
        # The SDK validates required, optional and extension attributes as it builds the event.
        event = JSONFormat().read(None, json.dumps(raw))
        assert event.get_specversion() == "1.0"
        assert event.get_id() == raw["id"]
        assert event.get_subject() == raw["subject"]
        assert event.get_type() == raw["type"]
        assert event.get_data() == raw["data"]
        assert event.get_extension("position") == raw["position"]
        assert event.get_time() is not None


async def test_filters_by_type_category_stream_and_actor(api: ApiServer) -> None:
    async with api.client("write") as client:
        meeting_id, _ = await schedule(client)
        faction = await register(client, kind="organisation")
        invited = await client.post(
            f"/meetings/{meeting_id}/invitations", json={"faction": faction}
        )
        assert invited.status_code == 201
        await until_visible(client, invited.headers["Diplofeed-Cursor"])
    async with api.client("read") as client:
        by_stream = (await client.get("/feed", params={"stream": f"meeting-{meeting_id}"})).json()
        by_actor = (await client.get("/feed", params={"actor": faction, "limit": 1000})).json()
        by_type = (
            await client.get(
                "/feed",
                params={"type": "meeting.faction_invited", "stream": f"meeting-{meeting_id}"},
            )
        ).json()
        by_category = (
            await client.get(
                "/feed", params={"category": ["actor"], "actor": faction, "limit": 1000}
            )
        ).json()
    assert [e["type"] for e in by_stream] == ["meeting.scheduled.v1", "meeting.faction_invited.v1"]
    assert [e["subject"] for e in by_actor] == [f"actor-{faction}", f"meeting-{meeting_id}"]
    assert [e["type"] for e in by_type] == ["meeting.faction_invited.v1"]
    assert [e["subject"] for e in by_category] == [f"actor-{faction}"]


async def test_an_actor_that_cannot_be_an_actor_id_is_a_400_problem(api: ApiServer) -> None:
    # No actor id holds capitals, spaces or quotes: such a filter could only ever match by a
    # walk of the log, so it is refused rather than answered slowly.
    async with api.client("read") as client:
        for actor in ("Hamas", "abu marzook", 'x"y', "a" * 101):
            for path in ("/feed", "/feed/stream"):
                response = await client.get(path, params={"actor": actor})
                assert response.status_code == 400, (path, actor, response.text)
                assert response.headers["content-type"].startswith("application/problem+json")
        assert (await client.get("/feed", params={"actor": "hamas", "limit": 1})).status_code == 200


async def test_a_long_poll_answers_as_soon_as_an_event_arrives(api: ApiServer) -> None:
    async with api.client("read") as client:
        stream = f"meeting-{new_id('m')}"
        tail = await _tail(client)
        started = time.monotonic()
        empty = await client.get(
            "/feed", params={"after": tail, "stream": stream}, headers={"Prefer": "wait=0.5"}
        )
        assert empty.status_code == 200
        assert empty.json() == []
        assert empty.headers["Preference-Applied"] == "wait=0.5"
        assert time.monotonic() - started >= 0.45

        async def write_soon() -> None:
            await asyncio.sleep(0.3)
            async with api.client("write") as writer:
                await writer.post(
                    "/meetings",
                    json={
                        "meeting_id": stream.split("-", 1)[1],
                        "title": "T",
                        "valid_time": "2024",
                    },
                )

        writing = asyncio.create_task(write_soon())
        waited = await client.get(
            "/feed", params={"after": tail, "stream": stream}, headers={"Prefer": "wait=9"}
        )
        await writing
    assert [e["subject"] for e in waited.json()] == [stream]


async def _collect(
    api: ApiServer,
    events: list[dict[str, Any]],
    *,
    last_event_id: str | None = None,
    params: dict[str, Any] | None = None,
    stop_after: int | None = None,
    comments: list[str] | None = None,
) -> None:
    """Read the live stream into ``events`` until cancelled (or ``stop_after`` events)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    async with (
        api.client("read", timeout=httpx.Timeout(30.0, read=None)) as client,
        aconnect_sse(client, "GET", "/feed/stream", params=params, headers=headers) as source,
    ):
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        async for message in source.aiter_sse():
            if not message.data:
                continue
            event = json.loads(message.data)
            assert message.id == event["cursor"]
            events.append(event)
            if stop_after is not None and len(events) >= stop_after:
                return


async def test_the_live_stream_resumes_after_a_dropped_connection_without_a_gap(
    api: ApiServer,
) -> None:
    async with api.client("read") as client:
        start = await _tail(client, category="meeting")
    params = {"category": "meeting", "after": start}
    first: list[dict[str, Any]] = []
    # The client hangs up after five events: the connection drops.
    reading = asyncio.create_task(_collect(api, first, params=params, stop_after=5))
    written = await _write_meetings(api, 5)
    await asyncio.wait_for(reading, 20)
    written += await _write_meetings(api, 5)  # while nobody listens
    resumed: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        await _collect(api, resumed, last_event_id=first[4]["cursor"], params=params, stop_after=5)
    delivered = first[:5] + resumed
    subjects = [e["subject"] for e in delivered]
    assert subjects == [f"meeting-{m}" for m in written]
    assert len({e["id"] for e in delivered}) == 10


async def test_the_live_stream_sends_heartbeats_and_filters(api: ApiServer) -> None:
    meeting_id = new_id("m")
    stream = f"meeting-{meeting_id}"
    lines: list[str] = []
    async with (
        api.client("read", timeout=httpx.Timeout(30.0, read=None)) as client,
        client.stream("GET", "/feed/stream", params={"stream": stream, "max_events": 1}) as r,
    ):

        async def write_later() -> None:
            await asyncio.sleep(1.2)  # past two heartbeats
            async with api.client("write") as writer:
                await writer.post(
                    "/meetings", json={"meeting_id": meeting_id, "title": "T", "valid_time": "2024"}
                )
                await schedule(writer)  # another stream's: filtered out

        writing = asyncio.create_task(write_later())
        async with asyncio.timeout(20):
            async for line in r.aiter_lines():
                lines.append(line)
        await writing
    assert lines.count(": heartbeat") >= 2
    data = [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]
    assert [e["subject"] for e in data] == [stream]


async def test_a_stream_reads_with_its_version_as_etag(api: ApiServer) -> None:
    async with api.client("write") as client:
        meeting_id, _ = await schedule(client)
        faction = await register(client, kind="organisation")
        await client.post(f"/meetings/{meeting_id}/invitations", json={"faction": faction})
        page = await client.get(f"/streams/meeting-{meeting_id}")
        cached = await client.get(
            f"/streams/meeting-{meeting_id}", headers={"If-None-Match": page.headers["ETag"]}
        )
        backward = await client.get(
            f"/streams/meeting-{meeting_id}", params={"backward": "true", "limit": 1}
        )
        missing = await client.get(f"/streams/meeting-{new_id('m')}")
        malformed = await client.get("/streams/no dash here")
    assert page.status_code == 200
    assert page.headers["ETag"] == '"2"'
    body = page.json()
    assert body["current_version"] == 2
    assert [e["streamversion"] for e in body["events"]] == [1, 2]
    assert cached.status_code == 304
    assert [e["streamversion"] for e in backward.json()["events"]] == [2]
    assert backward.json()["next_version"] == 1
    assert missing.status_code == 404
    assert malformed.status_code == 400


@pytest.mark.parametrize("limit", ["0", "1001", "x"])
async def test_bad_paging_parameters_are_400(api: ApiServer, limit: str) -> None:
    async with api.client("read") as client:
        response = await client.get("/feed", params={"limit": limit})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "query:limit"
