"""The contact graph's open bounds over HTTP: an interaction dated only on one side is possible
back (or on) to the first (last) year the log knows of either of its actors, from their
interactions and the windows of their roles (held, or held in them), and moves with those roles
when they are corrected or retracted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.test_api_writes import register

if TYPE_CHECKING:
    import httpx

    from tests.api_server import ApiServer


async def _write(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response


async def _call(
    client: httpx.AsyncClient, a: str, b: str, valid_time: str, tag: str
) -> httpx.Response:
    return await _write(
        client,
        "/interactions",
        {
            "kind": "phone_call",
            "interaction_id": f"call_{tag}_{a}",
            "participants": [{"actor": a, "role": "initiator"}, {"actor": b, "role": "recipient"}],
            "valid_time": valid_time,
        },
    )


async def _years(client: httpx.AsyncClient, actor: str, other: str, cursor: str) -> list[int]:
    """The years the pair has possible phone calls in."""
    response = await client.get(
        "/graph", params={"actor": actor, "kind": "phone_call", "reflect": cursor, "limit": 1000}
    )
    assert response.status_code == 200, response.text
    assert response.headers["Diplofeed-Stale"] == "false"
    return [e["year"] for e in response.json() if other in (e["a"], e["b"]) and e["possible"]]


async def test_an_open_bound_reaches_what_the_log_knows_of_either_actor(api: ApiServer) -> None:
    async with api.client("write") as client:
        envoy, front, other, far = (
            await register(client),
            await register(client, kind="organisation"),
            await register(client),
            await register(client, kind="organisation"),
        )
        role = await _write(
            client, f"/actors/{envoy}/roles", {"organisation": far, "valid_time": "2010/2021"}
        )
        await _call(client, front, other, "2017", "dated")
        await _call(client, envoy, front, "../2019", "before")  # open lower bound
        await _call(client, envoy, other, "2016/..", "since")  # open upper bound
        written = await _call(client, far, other, "../2018", "held_in")
        cursor = written.headers["Diplofeed-Cursor"]
        # The envoy's role places him (and the organisation he held it in) from 2010 to 2021;
        # his own calls alone would say 2016 to 2019.
        assert await _years(client, envoy, front, cursor) == list(range(2010, 2020))
        assert await _years(client, envoy, other, cursor) == list(range(2016, 2022))
        assert await _years(client, far, other, cursor) == list(range(2010, 2019))

        # The role's window corrected: 2014 to 2020.
        role_event = role.json()["event_ids"][0]
        stream = f"/streams/actor-{envoy}/events/{role_event}"
        corrected = await _write(
            client,
            f"{stream}/corrections",
            {"changes": {"valid_time": "2014/2020"}, "reason": "misdated"},
            **{"If-Match": role.headers["ETag"]},
        )
        cursor = corrected.headers["Diplofeed-Cursor"]
        assert await _years(client, envoy, front, cursor) == list(range(2014, 2020))
        assert await _years(client, envoy, other, cursor) == list(range(2016, 2021))
        assert await _years(client, far, other, cursor) == list(range(2014, 2019))
        # Retracted: what the log knows of them is their calls.
        retracted = await _write(
            client,
            f"{stream}/retractions",
            {"reason": "misreported"},
            **{"If-Match": corrected.headers["ETag"]},
        )
        cursor = retracted.headers["Diplofeed-Cursor"]
        assert await _years(client, envoy, front, cursor) == list(range(2016, 2020))
        assert await _years(client, envoy, other, cursor) == list(range(2016, 2020))
        assert await _years(client, far, other, cursor) == list(range(2016, 2019))


async def test_the_rule_is_in_the_graph_route_description(api: ApiServer) -> None:
    async with api.client("read") as client:
        schema: dict[str, Any] = (await client.get("/schema/openapi.json")).json()
    description = schema["paths"]["/graph"]["get"]["description"]
    for words in ("span", "roles it holds", "roles held in it", "first year of either"):
        assert words in description
