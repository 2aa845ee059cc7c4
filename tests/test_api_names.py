"""Names over HTTP: two people sharing a family name, written in several transliterations.

Ismail Haniyeh (alias "Haniyeh") and Abdel Salam Haniyeh (alias "Hanieh") share a family name;
a write naming it in any spelling is refused with both candidates by id, and ``/actors?name=``
lists both. A database of this module's own: the shared one holds the seed's Haniyeh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from events.domain.corrections import CHANGES
from tests.api_server import running_api
from tests.database import scratch_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx

    from tests.api_server import ApiServer

ISMAIL = {"actor_id": "ismail_haniyeh", "canonical_name": "Ismail Haniyeh"}
ABDEL_SALAM = {"actor_id": "abdel_salam_haniyeh", "canonical_name": "Abdel Salam Haniyeh"}
BOTH = {"ismail_haniyeh", "abdel_salam_haniyeh"}


@pytest.fixture(scope="module")
async def api(server_url: str) -> AsyncIterator[ApiServer]:
    """The real API over a database of this module's own, with the two Haniyehs registered."""
    async with (
        scratch_database(server_url, migrated=True) as dsn,
        running_api(dsn) as server,
    ):
        async with server.client("write") as client:
            for body in (
                {**ISMAIL, "kind": "person", "aliases": [{"text": "Haniyeh"}]},
                {**ABDEL_SALAM, "kind": "person", "aliases": [{"text": "Hanieh"}]},
                {"actor_id": "hamas", "kind": "organisation", "canonical_name": "Hamas"},
                {"actor_id": "pij", "kind": "organisation", "canonical_name": "Islamic Jihad"},
            ):
                response = await client.post("/actors", json=body)
                assert response.status_code == 201, response.text
            response = await client.post(
                "/actors/abdel_salam_haniyeh/aliases",
                json={"alias": {"text": "Abdul Salam Haniya", "scheme": "press"}},
            )
            assert response.status_code == 201, response.text
        async with server.client("read") as client:
            # Reads that follow find every actor in the views.
            cursor = response.headers["Diplofeed-Cursor"]
            response = await client.get("/actors", params={"name": "Hamas", "reflect": cursor})
            assert response.status_code == 200, response.text
        yield server


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(path, json=body)


def _call(interaction_id: str, actor: str) -> dict[str, Any]:
    return {
        "kind": "phone_call",
        "interaction_id": interaction_id,
        "participants": [
            {"actor": actor, "role": "initiator"},
            {"actor": "pij", "role": "recipient"},
        ],
        "valid_time": "2024-02",
    }


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("Haniyeh", "ismail_haniyeh"),  # Ismail's alias; Abdel Salam's by a variant
        ("Hanieh", "abdel_salam_haniyeh"),  # Abdel Salam's alias; Ismail's by a variant
        ("Haniya", None),
        ("Haniyya", None),
    ],
)
async def test_a_shared_family_name_is_refused_with_both_candidates_by_id(
    api: ApiServer, name: str, first: str | None
) -> None:
    async with api.client("write") as client:
        response = await _post(client, "/interactions", _call(f"call_{name.lower()}", name))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/ambiguous-actor"
    assert problem["errors"][0]["field"] == "$.participants[0].actor"
    candidates = problem["candidates"]
    assert {c["actor_id"] for c in candidates} == BOTH
    by_id = {c["actor_id"]: c for c in candidates}
    assert by_id["ismail_haniyeh"]["canonical_name"] == "Ismail Haniyeh"
    assert by_id["abdel_salam_haniyeh"]["canonical_name"] == "Abdel Salam Haniyeh"
    assert all(set(c) == {"actor_id", "canonical_name", "matched"} for c in candidates)
    if first is not None:
        assert candidates[0] == {**by_id[first], "matched": name}


async def test_a_full_name_in_another_spelling_is_recorded(api: ApiServer) -> None:
    async with api.client("write") as client:
        for interaction_id, name, who in (
            ("call_ismail", "Isma'il Haniya", "ismail_haniyeh"),
            ("call_abdel_salam", "Abd al-Salam Hanieh", "abdel_salam_haniyeh"),
        ):
            response = await _post(client, "/interactions", _call(interaction_id, name))
            assert response.status_code == 201, response.text
            stream = (await client.get(f"/streams/interaction-{interaction_id}")).json()
            [participant, _] = stream["events"][0]["data"]["participants"]
            assert (participant["actor_id"], participant["name_as_reported"]) == (who, name)


async def test_reading_an_actor_by_a_shared_family_name_lists_the_candidates(
    api: ApiServer,
) -> None:
    async with api.client("read") as client:
        response = await client.get("/actors/Haniya")
    assert response.status_code == 422, response.text
    assert {c["actor_id"] for c in response.json()["candidates"]} == BOTH


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Haniyeh", ["ismail_haniyeh", "abdel_salam_haniyeh"]),  # the exact match first
        ("Hanieh", ["abdel_salam_haniyeh", "ismail_haniyeh"]),
        ("Haniya", ["abdel_salam_haniyeh", "ismail_haniyeh"]),
        ("Haniyya", ["abdel_salam_haniyeh", "ismail_haniyeh"]),
        ("Ismail Haniya", ["ismail_haniyeh"]),
    ],
)
async def test_the_actor_search_lists_every_candidate_with_its_id(
    api: ApiServer, name: str, expected: list[str]
) -> None:
    async with api.client("read") as client:
        response = await client.get("/actors", params={"name": name})
        assert response.status_code == 200, response.text
        assert [a["actor_id"] for a in response.json()] == expected
        # One to a page: the same candidates, in the same order, across pages.
        paged: list[str] = []
        url: str | None = "/actors"
        params: dict[str, Any] | None = {"name": name, "limit": 1}
        while url is not None:
            page = await client.get(url, params=params)
            assert page.status_code == 200, page.text
            paged += [a["actor_id"] for a in page.json()]
            following = page.links.get("next")
            url, params = (following["url"], None) if following else (None, None)
    assert paged == expected


async def _meeting_with_leader(
    client: httpx.AsyncClient, meeting_id: str, person: str
) -> httpx.Response:
    """Schedule ``meeting_id``, invite Hamas, and name ``person`` its delegation's head."""
    for path, body in (
        ("/meetings", {"meeting_id": meeting_id, "title": "Talks", "valid_time": "2024-03"}),
        (f"/meetings/{meeting_id}/invitations", {"faction": "Hamas"}),
        (f"/meetings/{meeting_id}/confirmations", {"faction": "hamas"}),
    ):
        response = await _post(client, path, body)
        assert response.status_code == 201, response.text
    return await _post(
        client, f"/meetings/{meeting_id}/leaders", {"faction": "hamas", "person": person}
    )


async def _roster(client: httpx.AsyncClient, meeting_id: str, cursor: str) -> dict[str, Any]:
    response = await client.get(f"/meetings/{meeting_id}", params={"reflect": cursor})
    assert response.status_code == 200, response.text
    roster: dict[str, Any] = response.json()
    return roster


async def test_a_leader_named_by_a_spelling_keeps_it_as_reported(api: ApiServer) -> None:
    async with api.client("write") as client:
        named = await _meeting_with_leader(client, "leader_spelling", "Isma'il Haniya")
        assert named.status_code == 201, named.text
        roster = await _roster(client, "leader_spelling", named.headers["Diplofeed-Cursor"])
    [hamas] = roster["factions"]
    head = hamas["head"]
    assert (head["person_id"], head["name_as_reported"]) == ("ismail_haniyeh", "Isma'il Haniya")


async def _correct_leader(
    client: httpx.AsyncClient, meeting_id: str, event_id: str, version: str, person: str
) -> httpx.Response:
    return await client.post(
        f"/streams/meeting-{meeting_id}/events/{event_id}/corrections",
        json={"changes": {"person_id": person}, "reason": "the wrong Haniyeh"},
        headers={"If-Match": version},
    )


async def test_a_corrected_leader_is_resolved_by_name_and_must_exist(api: ApiServer) -> None:
    async with api.client("write") as client:
        named = await _meeting_with_leader(client, "leader_corrected", "Ismail Haniyeh")
        assert named.status_code == 201, named.text
        [event_id] = named.json()["event_ids"]
        version = named.headers["ETag"]
        refusals = {}
        for person, status in (("Nobody Known", 422), ("Haniya", 422), ("hamas", 409)):
            refused = await _correct_leader(client, "leader_corrected", event_id, version, person)
            assert refused.status_code == status, refused.text
            refusals[person] = refused.json()
            assert refusals[person]["errors"][0]["field"] == "$.changes.person_id"
        corrected = await _correct_leader(
            client, "leader_corrected", event_id, version, "Abdul Salam Hanieh"
        )
        assert corrected.status_code == 201, corrected.text
        stream = (await client.get("/streams/meeting-leader_corrected")).json()
        roster = await _roster(client, "leader_corrected", corrected.headers["Diplofeed-Cursor"])
    assert refusals["Nobody Known"]["type"] == "/problems/unknown-actor"
    assert refusals["Haniya"]["type"] == "/problems/ambiguous-actor"
    assert {c["actor_id"] for c in refusals["Haniya"]["candidates"]} == BOTH
    assert "not a person" in refusals["hamas"]["detail"]
    # The log holds the id the name resolved to, and the roster's head is that actor.
    assert stream["events"][-1]["data"]["changes"] == {"person_id": "abdel_salam_haniyeh"}
    [hamas] = roster["factions"]
    assert hamas["head"]["person_id"] == "abdel_salam_haniyeh"


async def test_the_openapi_document_lists_each_event_types_correctable_fields(
    api: ApiServer,
) -> None:
    async with api.client(None) as client:
        document = (await client.get("/schema/openapi.json")).json()
    schemas = document["components"]["schemas"]
    operation = document["paths"]["/streams/{stream}/events/{target_event_id}/corrections"]
    body = operation["post"]["requestBody"]["content"]["application/json"]["schema"]
    changes = schemas[body["$ref"].rsplit("/", 1)[1]]["properties"]["changes"]
    listed = {ref["$ref"].rsplit("/", 1)[1] for ref in changes["anyOf"]}
    assert {"DelegationLeaderNamedChanges", "PhoneCallHeldChanges", "RoleAssignedChanges"} <= listed
    assert listed == {f"{event.__name__}Changes" for event in CHANGES}
    leader = schemas["DelegationLeaderNamedChanges"]
    assert set(leader["properties"]) == {
        "faction_id",
        "person_id",
        "name_as_reported",
        "title_as_reported",
        "sources",
    }
    assert leader["properties"]["person_id"]["maxLength"] == 300
