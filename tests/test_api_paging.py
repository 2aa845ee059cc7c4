"""Paging shared by every list: limits, opaque tokens bound to their query, Link rel=next,
and the lists outside the projections (API keys, one stream's events)."""

from __future__ import annotations

import base64
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from service.paging import PageToken
from tests.api_server import running_api
from tests.database import scratch_database

if TYPE_CHECKING:
    import httpx

    from tests.api_server import ApiServer


async def _walk(client: httpx.AsyncClient, path: str, **params: str | int) -> list[Any]:
    """Every page of a list (each a JSON body), following Link rel=next."""
    pages: list[Any] = []
    response = await client.get(path, params=params)
    while True:
        assert response.status_code == 200, response.text
        pages.append(response.json())
        following = response.links.get("next")
        if following is None:
            return pages
        response = await client.get(following["url"])


async def test_keys_come_in_pages_that_walk_to_the_whole_list(api: ApiServer) -> None:
    async with api.client("admin") as admin:
        for n in range(5):
            made = await admin.post("/keys", json={"name": f"paged {n}", "scopes": ["read"]})
            assert made.status_code == 201, made.text
        whole = (await admin.get("/keys", params={"limit": 1000})).json()
        pages = await _walk(admin, "/keys", limit=2)
    assert all(len(page) <= 2 for page in pages)
    walked = [key["id"] for page in pages for key in page]
    assert walked == [key["id"] for key in whole]
    assert len(walked) == len(set(walked)) >= 8


async def test_a_list_refuses_limits_out_of_range_and_foreign_tokens(api: ApiServer) -> None:
    async with api.client("admin") as admin:
        for limit in ("0", "1001", "-1", "many"):
            response = await admin.get("/keys", params={"limit": limit})
            assert response.status_code == 400, (limit, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        for after in ("garbage", "AAAA", "x" * 3000, base64.urlsafe_b64encode(b"\x93").decode()):
            response = await admin.get("/keys", params={"after": after})
            assert response.status_code == 400, (after[:20], response.text)
            assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_token_is_refused_on_another_query(api: ApiServer) -> None:
    async with api.client("admin") as admin:
        await admin.post("/keys", json={"name": "token owner", "scopes": ["read"]})
        first = await admin.get("/keys", params={"limit": 1})
        token = first.links["next"]["url"].split("after=")[1]
        # The same token on another route, and with a filter the first page did not have.
        other_route = await admin.get("/meetings", params={"after": token})
        other_filter = await admin.get("/keys", params={"after": token, "extra": "x"})
    assert other_route.status_code == 400, other_route.text
    assert other_filter.status_code == 400, other_filter.text
    assert "query:after" in other_route.text


async def test_a_forged_token_with_a_wrong_key_shape_is_a_400(api: ApiServer) -> None:
    async with api.client("admin") as admin:
        first = await admin.get("/keys", params={"limit": 1})
        token = first.links["next"]["url"].split("after=")[1]
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        real = msgspec.msgpack.decode(raw, type=PageToken)
        forged = PageToken(version=real.version, at=real.at, key=(1, 2, 3), query=real.query)
        text = base64.urlsafe_b64encode(msgspec.msgpack.encode(forged)).decode().rstrip("=")
        response = await admin.get("/keys", params={"limit": 1, "after": text})
    assert response.status_code == 400, response.text


async def test_a_stream_read_links_to_its_next_part(api: ApiServer) -> None:
    actor = f"paged_{uuid.uuid4().hex[:8]}"
    async with api.client("admin") as client:
        made = await client.post(
            "/actors", json={"actor_id": actor, "kind": "person", "canonical_name": "Paged One"}
        )
        assert made.status_code == 201, made.text
        for n in range(3):
            added = await client.post(
                f"/actors/{actor}/aliases", json={"alias": {"text": f"Paged Alias {n}"}}
            )
            assert added.status_code in (200, 201), added.text
        forward = await _walk(client, f"/streams/actor-{actor}", limit=1)
        backward = await _walk(client, f"/streams/actor-{actor}", limit=3, backward="true")
    versions = [event["streamversion"] for page in forward for event in page["events"]]
    assert versions == [1, 2, 3, 4]
    assert [len(p["events"]) for p in backward] == [3, 1]


async def test_pages_end_early_at_the_byte_bound_and_still_walk_everything(
    server_url: str,
) -> None:
    async with (
        scratch_database(server_url, migrated=True) as dsn,
        running_api(dsn, view_page_max_bytes=4096) as api,
        api.client("admin") as admin,
    ):
        for n in range(40):
            made = await admin.post(
                "/keys", json={"name": f"{n:03} " + "k" * 150, "scopes": ["read"]}
            )
            assert made.status_code == 201, made.text
        pages = await _walk(admin, "/keys", limit=1000)
        sizes = [len(msgspec.json.encode(page)) for page in pages]
    assert len(pages) > 1
    assert max(sizes) <= 4096
    names = [key["name"][:3] for page in pages for key in page]
    assert names[-40:] == [f"{n:03}" for n in range(40)]
