"""The audit trail over HTTP, a page at a time: walks equal the whole trail, by stream and by
event id; bad paging parameters are 400s; an item with no entry at all is a 404."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import TYPE_CHECKING, Any

import msgspec

from projections.audit import AuditEntry
from service.paging import PageToken
from tests.test_api_writes import register, schedule

if TYPE_CHECKING:
    import httpx

    from tests.api_server import ApiServer

_NEXT = re.compile(r'<([^>]+)>; rel="next"')


async def _meeting_with_a_trail(client: httpx.AsyncClient) -> tuple[str, str, str]:
    """A meeting with six events (scheduled, three invitations, two corrections of the first):
    its id, the first event's id and the cursor of the last write."""
    meeting_id, response = await schedule(client)
    first = response.json()["event_ids"][0]
    for _ in range(3):
        faction = await register(client, kind="organisation")
        invited = await client.post(
            f"/meetings/{meeting_id}/invitations", json={"faction": faction}
        )
        assert invited.status_code == 201, invited.text
    path = f"/streams/meeting-{meeting_id}/events/{first}/corrections"
    for version, title in ((4, "Moscow talks"), (5, "Moscow round table")):
        corrected = await client.post(
            path,
            json={"changes": {"title": title}, "reason": "typo"},
            headers={"If-Match": f'"{version}"'},
        )
        assert corrected.status_code == 201, corrected.text
    return meeting_id, first, corrected.json()["cursor"]


async def _walk(client: httpx.AsyncClient, path: str, limit: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    response = await client.get(path, params={"limit": limit})
    for _ in range(100):
        assert response.status_code == 200, response.text
        page = response.json()
        assert 1 <= len(page) <= limit
        entries += page
        link = _NEXT.search(response.headers.get("Link", ""))
        if link is None:
            return entries
        response = await client.get(link.group(1))
    raise AssertionError("the walk did not end")


async def test_walking_the_trail_page_by_page_gives_the_whole_trail(api: ApiServer) -> None:
    async with api.client("write") as client:
        meeting_id, first, cursor = await _meeting_with_a_trail(client)
        stream_path, event_path = f"/audit/meeting-{meeting_id}", f"/audit/{first}"
        whole = await client.get(stream_path, params={"reflect": cursor, "limit": 1000})
        assert whole.status_code == 200, whole.text
        assert "Link" not in whole.headers
        trail = whole.json()
        assert [e["action"] for e in trail] == ["reported"] * 4 + ["corrected"] * 2
        # Each correction says what it changed: the title before it and after.
        assert [(e["before"], e["changes"]) for e in trail[4:]] == [
            ({"title": "Talks"}, {"title": "Moscow talks"}),
            ({"title": "Moscow talks"}, {"title": "Moscow round table"}),
        ]
        assert all(e["before"] is None for e in trail[:4])
        # The default page holds the whole of a short trail.
        assert (await client.get(stream_path)).json() == trail
        for limit in (1, 2, 4, 6):
            assert await _walk(client, stream_path, limit) == trail, limit
        # An event id: the event and what amends it.
        of_event = (await client.get(event_path, params={"limit": 1000})).json()
        assert of_event == [trail[0], *trail[4:]]
        for limit in (1, 2):
            assert await _walk(client, event_path, limit) == of_event
        # Entries keep their body: no paging field is added to them.
        assert all(set(e) == set(AuditEntry.__struct_fields__) for e in trail)
        unknown = await client.get("/audit/meeting-never_recorded_anything")
        assert unknown.status_code == 404


async def test_bad_paging_parameters_are_400s(api: ApiServer) -> None:
    async with api.client("write") as client:
        meeting_id, _, cursor = await _meeting_with_a_trail(client)
        path = f"/audit/meeting-{meeting_id}"
        page = await client.get(path, params={"limit": 2, "reflect": cursor})
        link = _NEXT.search(page.headers["Link"])
        assert link is not None
        token = dict(re.findall(r"[?&](\w+)=([^&]+)", link.group(1)))["after"]
        other, _, _ = await _meeting_with_a_trail(client)
        bad: list[dict[str, Any]] = [
            {"limit": 0},
            {"limit": 1001},
            {"limit": "ten"},
            {"after": "not a token"},
            {"after": _token(path, ("meeting-x",))},  # a key that is not a position
            {"after": _token(path, (-1,))},
            {"after": _token(path, (True,))},
        ]
        for params in bad:
            response = await client.get(path, params=params)
            assert response.status_code == 400, (params, response.text)
        # A token is only good for the trail it was issued for.
        elsewhere = await client.get(f"/audit/meeting-{other}", params={"after": token})
        assert elsewhere.status_code == 400
        assert (await client.get(path, params={"after": token})).status_code == 200


def _token(path: str, key: tuple[object, ...]) -> str:
    """A token as Diplofeed would issue it for ``path`` (no other parameter), with ``key``."""
    digest = hashlib.sha256(f"{path}\n".encode()).digest()[:8]
    raw = msgspec.msgpack.encode(PageToken(version=1, at=b"", key=key, query=digest))  # type: ignore[arg-type]
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_the_schema_documents_paging_and_order(api: ApiServer) -> None:
    async with api.client("read") as client:
        schema: dict[str, Any] = (await client.get("/schema/openapi.json")).json()
    [operation] = [
        op
        for item in schema["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and op.get("operationId") == "getAuditTrail"
    ]
    names = {p["name"] for p in operation["parameters"]}
    assert {"limit", "after"} <= names
    assert "Oldest first" in operation["description"]
