"""Writes over HTTP: 201 with Location, cursor and version; Idempotency-Key; If-Match; what
each event records about the request; reading your own write."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec

from events import Cursor

if TYPE_CHECKING:
    import httpx

    from tests.api_server import ApiServer


def new_id(prefix: str = "t") -> str:
    """An aggregate id no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:16]}"


async def register(client: httpx.AsyncClient, kind: str = "person", name: str = "") -> str:
    """Register an actor; its id."""
    actor_id = new_id("a")
    response = await client.post(
        "/actors",
        json={"actor_id": actor_id, "kind": kind, "canonical_name": name or f"Test {actor_id}"},
    )
    assert response.status_code == 201, response.text
    return actor_id


async def schedule(client: httpx.AsyncClient) -> tuple[str, httpx.Response]:
    """Schedule a meeting; its id and the response."""
    meeting_id = new_id("m")
    response = await client.post(
        "/meetings",
        json={"meeting_id": meeting_id, "title": "Talks", "valid_time": "2024-03"},
    )
    assert response.status_code == 201, response.text
    return meeting_id, response


async def until_visible(client: httpx.AsyncClient, cursor: str) -> None:
    """Wait until the feed shows everything up to ``cursor``: the feed's horizon is
    cluster-wide, so a transaction elsewhere on a shared server may hold it back a moment."""
    wanted = Cursor.decode(cursor)
    async with asyncio.timeout(30):
        while True:
            page = await client.get("/feed", params={"after": cursor, "limit": 1})
            if Cursor.decode(page.headers["Diplofeed-Cursor"]) > wanted:
                return
            await asyncio.sleep(0.05)


async def stored(api: ApiServer, stream_id: str) -> list[asyncpg.Record]:
    """The stream's rows, straight from the log."""
    conn = await asyncpg.connect(api.dsn)
    try:
        return await conn.fetch(
            "SELECT event_id, type, metadata::text AS metadata FROM events "
            "WHERE stream_id = $1 ORDER BY stream_version",
            stream_id,
        )
    finally:
        await conn.close()


async def test_a_write_answers_201_with_location_cursor_and_version(api: ApiServer) -> None:
    async with api.client("write") as client:
        meeting_id, response = await schedule(client)
    assert response.status_code == 201
    assert response.headers["Location"] == f"/meetings/{meeting_id}"
    assert response.headers["ETag"] == '"1"'
    receipt = response.json()
    assert receipt["stream_id"] == f"meeting-{meeting_id}"
    assert receipt["stream_version"] == 1
    assert receipt["replayed"] is False
    assert receipt["cursor"] == response.headers["Diplofeed-Cursor"]
    assert len(receipt["event_ids"]) == 1


async def test_each_event_records_the_key_request_and_trace(api: ApiServer) -> None:
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with api.client("write", headers={"traceparent": trace}) as client:
        meeting_id, response = await schedule(client)
    [row] = await stored(api, f"meeting-{meeting_id}")
    metadata = msgspec.json.decode(row["metadata"])
    write_key = api.tokens["write"].split("_")[1]
    assert metadata["recorded_by"] == f"key:{write_key}"
    assert metadata["traceparent"] == trace
    assert metadata["correlation_id"] == response.headers["X-Request-ID"]


async def test_an_idempotent_retry_returns_the_original_response_and_appends_nothing(
    api: ApiServer,
) -> None:
    meeting_id = new_id("m")
    body = {"meeting_id": meeting_id, "title": "Talks", "valid_time": "2024-03"}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    async with api.client("write") as client:
        first = await client.post("/meetings", json=body, headers=key)
        again = await client.post("/meetings", json=body, headers=key)
        other = await client.post("/meetings", json={**body, "title": "Other"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json()["replayed"] is False
    assert "Idempotent-Replayed" not in first.headers
    # The header and the receipt agree: this answer is a replay.
    assert again.json() == {**first.json(), "replayed": True}
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Diplofeed-Cursor"] == first.headers["Diplofeed-Cursor"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 422
    assert other.json()["type"] == "/problems/idempotency-mismatch"
    assert len(await stored(api, f"meeting-{meeting_id}")) == 1


async def test_concurrent_retries_with_one_key_record_once(api: ApiServer) -> None:
    meeting_id = new_id("m")
    body = {"meeting_id": meeting_id, "title": "Talks", "valid_time": "2024-03"}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    async with api.client("write") as client:
        responses = await asyncio.gather(
            *(client.post("/meetings", json=body, headers=key) for _ in range(8))
        )
        settled = await client.post("/meetings", json=body, headers=key)
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    assert 201 in statuses
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.headers["Retry-After"]
    assert settled.status_code == 201
    assert len(await stored(api, f"meeting-{meeting_id}")) == 1
    assert {r.json()["event_ids"][0] for r in responses if r.status_code == 201} == {
        settled.json()["event_ids"][0]
    }


async def test_a_retry_whose_response_was_lost_answers_the_original_write(
    api: ApiServer,
) -> None:
    """The database went away after the append but before the response was remembered (the
    client got a 503, the key's record is gone or abandoned): the retry with the same key must
    find the write by its key-derived event ids, not decide the command again."""
    meeting_id = new_id("m")
    body = {"meeting_id": meeting_id, "title": "Talks", "valid_time": "2024-03"}
    key = uuid.uuid4().hex
    async with api.client("write") as client:
        first = await client.post("/meetings", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == 201, first.text
        conn = await asyncpg.connect(api.dsn)
        try:
            assert await conn.execute("DELETE FROM idempotency_keys WHERE key = $1", key) == (
                "DELETE 1"
            )
        finally:
            await conn.close()
        retry = await client.post("/meetings", json=body, headers={"Idempotency-Key": key})
    assert retry.status_code == 200, retry.text
    assert retry.json()["event_ids"] == first.json()["event_ids"]
    assert retry.json()["replayed"] is True
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert len(await stored(api, f"meeting-{meeting_id}")) == 1


async def test_a_failed_keyed_request_frees_its_key(api: ApiServer) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    meeting_id = new_id("m")
    async with api.client("write") as client:
        bad = await client.post(
            "/meetings", json={"meeting_id": meeting_id, "title": "T", "valid_time": "never"},
            headers=key,
        )  # fmt: skip
        good = await client.post(
            "/meetings", json={"meeting_id": meeting_id, "title": "T", "valid_time": "2024"},
            headers=key,
        )  # fmt: skip
    assert bad.status_code == 422
    assert good.status_code == 201


async def test_if_match_turns_into_the_expected_version(api: ApiServer) -> None:
    async with api.client("write") as client:
        meeting_id, _ = await schedule(client)
        faction = await register(client, kind="organisation")
        path = f"/meetings/{meeting_id}/invitations"
        stale = await client.post(path, json={"faction": faction}, headers={"If-Match": '"7"'})
        fresh = await client.post(path, json={"faction": faction}, headers={"If-Match": '"1"'})
        replay = await client.post(path, json={"faction": faction}, headers={"If-Match": '"1"'})
        garbled = await client.post(path, json={"faction": faction}, headers={"If-Match": "x"})
    assert stale.status_code == 412
    problem = stale.json()
    assert problem["current_version"] == 1
    assert problem["type"] == "/problems/precondition-failed"
    assert fresh.status_code == 201
    assert fresh.headers["ETag"] == '"2"'
    assert replay.status_code == 412
    assert replay.json()["current_version"] == 2
    assert garbled.status_code == 400
    assert len(await stored(api, f"meeting-{meeting_id}")) == 2


async def test_corrections_need_if_match_and_then_apply(api: ApiServer) -> None:
    async with api.client("write") as client:
        meeting_id, response = await schedule(client)
        event_id = response.json()["event_ids"][0]
        path = f"/streams/meeting-{meeting_id}/events/{event_id}/corrections"
        body: dict[str, Any] = {"changes": {"title": "Moscow talks"}, "reason": "typo"}
        missing = await client.post(path, json=body)
        done = await client.post(path, json=body, headers={"If-Match": '"1"'})
        roster = await client.get(
            f"/meetings/{meeting_id}", params={"reflect": done.json()["cursor"]}
        )
        audit = await client.get(
            f"/audit/meeting-{meeting_id}", params={"reflect": done.json()["cursor"]}
        )
    assert missing.status_code == 428
    assert missing.json()["type"] == "/problems/precondition-required"
    assert done.status_code == 201, done.text
    assert roster.json()["title"] == "Moscow talks"
    assert [e["action"] for e in audit.json()] == ["reported", "corrected"]


async def test_reading_your_own_write(api: ApiServer) -> None:
    async with api.client("write") as client:
        meeting_id, response = await schedule(client)
        view = await client.get(
            f"/meetings/{meeting_id}", params={"reflect": response.headers["Diplofeed-Cursor"]}
        )
    assert view.status_code == 200
    assert view.headers["Diplofeed-Stale"] == "false"
    assert view.json()["meeting_id"] == meeting_id


async def test_a_domain_refusal_is_a_conflict_and_appends_nothing(api: ApiServer) -> None:
    async with api.client("write") as client:
        meeting_id, _ = await schedule(client)
        faction = await register(client, kind="organisation")
        path = f"/meetings/{meeting_id}/invitations"
        assert (await client.post(path, json={"faction": faction})).status_code == 201
        twice = await client.post(path, json={"faction": faction})
        unknown = await client.post(
            f"/meetings/{new_id('m')}/invitations", json={"faction": faction}
        )
        nobody = await client.post(path, json={"faction": "Qwxz Vblorp Front"})
    assert twice.status_code == 409
    assert twice.json()["errors"][0]["field"] == "$.faction"
    assert unknown.status_code == 404
    assert nobody.status_code == 422
    assert nobody.json()["type"] == "/problems/unknown-actor"
    assert len(await stored(api, f"meeting-{meeting_id}")) == 2
