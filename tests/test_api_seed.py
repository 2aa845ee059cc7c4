"""The whole seed article entered over HTTP, then read back through the API: the Moscow
roster, Hamas's contact history, and the feed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from events.domain.seed import seed_commands
from tests.api_server import request_for
from tests.test_api_writes import register, until_visible

if TYPE_CHECKING:
    import httpx

    from tests.api_server import ApiServer


@pytest.fixture(scope="module")
async def seeded(api: ApiServer) -> dict[str, Any]:
    """Every seed command sent as its HTTP request; the last write's cursor."""
    last = None
    statuses: list[int] = []
    async with api.client("write") as client:
        for command in seed_commands():
            path, body = request_for(command)
            response = await client.post(path, json=body)
            assert response.status_code in (200, 201), (path, response.text)
            statuses.append(response.status_code)
            if response.status_code == 201:
                last = response.headers["Diplofeed-Cursor"]
                assert response.headers["Location"].startswith("/")
    return {"cursor": last, "statuses": statuses}


async def _get(client: httpx.AsyncClient, path: str, **params: Any) -> httpx.Response:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response


async def test_every_seed_command_records_something(seeded: dict[str, Any]) -> None:
    assert seeded["statuses"].count(201) >= 60
    assert seeded["cursor"] is not None


async def test_the_moscow_roster_over_http(api: ApiServer, seeded: dict[str, Any]) -> None:
    async with api.client("read") as client:
        listed = (await _get(client, "/meetings", reflect=seeded["cursor"], limit=1000)).json()
        response = await _get(client, "/meetings/moscow_2024", reflect=seeded["cursor"])
    assert {"moscow_2024", "moscow_2019"} <= {m["meeting_id"] for m in listed}
    assert response.headers["Diplofeed-Stale"] == "false"
    assert response.headers["Diplofeed-Position"]
    roster = response.json()
    assert (roster["title"], roster["status"], roster["held"], roster["host_id"]) == (
        "Inter-Palestinian meeting in Moscow",
        "scheduled",
        False,
        "ios_ras",
    )
    assert roster["date"]["edtf"] == "2024-02-28/2024-02-29"
    assert [h["kind"] for h in roster["date_history"]] == ["scheduled", "revised"]

    def invited(faction: str, name: str, head: dict[str, str] | None = None) -> dict[str, Any]:
        return {
            "faction_id": faction,
            "invited": True,
            "name_as_reported": name,
            "attendance": "confirmed",
            "took_part": False,
            "head": head,
            "members": [],
            "declarations": [],
        }

    def leader(person: str, name: str) -> dict[str, Any]:
        return {"person_id": person, "name_as_reported": name, "title_as_reported": None}

    # Every faction's invitation and answer, each with its date and sources.
    histories = [faction.pop("attendance_history") for faction in roster["factions"]]
    for history in histories:
        assert [step["attendance"] for step in history] == ["invited", "confirmed"]
        assert all(step["recorded_at"] and step["event_id"] for step in history)
        assert all(step["sources"] and step["sources"][0]["quote"] for step in history)
        assert all(step["reason"] is None and step["corrected_at"] is None for step in history)
    assert roster["factions"] == [
        invited("fatah", "Fatah", leader("azzam_al_ahmad", "Azzam al-Ahmad")),
        invited("hamas", "Hamas", leader("abu_marzook", "Mousa Abu Marzook")),
        invited("pij", "Islamic Jihad"),
        invited("pflp", "the Popular Front for the Liberation of Palestine (PFLP)"),
        invited("dflp", "the Democratic Front for the Liberation of Palestine (DFLP)"),
    ]


async def test_the_2019_meeting_was_held_over_http(api: ApiServer, seeded: dict[str, Any]) -> None:
    async with api.client("read") as client:
        roster = (await _get(client, "/meetings/moscow_2019", reflect=seeded["cursor"])).json()
    assert (roster["status"], roster["held"]) == ("held", True)
    factions = [
        (f["faction_id"], f["took_part"], f["attendance_history"]) for f in roster["factions"]
    ]
    assert factions == [("fatah", True, []), ("hamas", True, []), ("pij", True, [])]
    assert [d["declaration_id"] for d in roster["declarations"]] == ["moscow_declaration_2019"]


async def test_an_actor_without_aliases_or_roles_sends_empty_lists(api: ApiServer) -> None:
    async with api.client("write") as client:
        organisation = await register(client, kind="organisation")
        member = await register(client)
        written = await client.post(
            f"/actors/{member}/roles", json={"organisation": organisation, "valid_time": "2024-02"}
        )
        assert written.status_code == 201, written.text
        cursor = written.headers["Diplofeed-Cursor"]
        bare = (await _get(client, f"/actors/{organisation}", reflect=cursor)).json()
        found = (await _get(client, "/actors", name=organisation)).json()
        with_role = (await _get(client, f"/actors/{member}", reflect=cursor)).json()
    assert (bare["aliases"], bare["roles"], bare["merged"], bare["sources"]) == ([], [], [], [])
    assert found == [bare]
    assert (with_role["aliases"], with_role["merged"], with_role["sources"]) == ([], [], [])
    assert [r["organisation_id"] for r in with_role["roles"]] == [organisation]


async def test_medvedev_meeting_hamas_is_possible_while_he_was_president(
    api: ApiServer, seeded: dict[str, Any]
) -> None:
    """Undated ("../2024-02"): possible from the first year the log knows of either of them
    (Hamas, from Mashal's role in 2006), through Medvedev's presidency (his role, 2008-2012),
    until the article. Counted from interactions alone, it began in 2017, Hamas's first."""
    async with api.client("read") as client:
        edges = (
            await _get(client, "/graph", actor="medvedev", reflect=seeded["cursor"], limit=1000)
        ).json()
    assert {(e["a"], e["b"], e["kind"]) for e in edges} == {("hamas", "medvedev", "meeting")}
    years = [e["year"] for e in edges]
    assert set(range(2008, 2013)) <= set(years)
    assert (min(years), max(years)) == (2006, 2024)
    assert years == list(range(2006, 2025))
    assert all((e["certain"], e["possible"]) == (0, 1) for e in edges)


async def test_hamas_contact_history_over_http(api: ApiServer, seeded: dict[str, Any]) -> None:
    async with api.client("read") as client:
        history = (await _get(client, "/actors/hamas/contacts", reflect=seeded["cursor"])).json()
        by_name = (await _get(client, "/actors/Hamas/contacts", reflect=seeded["cursor"])).json()
        visits = (
            await _get(client, "/actors/hamas/contacts", kind="visit", reflect=seeded["cursor"])
        ).json()
    ids = [entry["interaction_id"] for entry in history]
    assert by_name == history
    assert {"pattern_putin_avoids_hamas", "contacts_mfa_hamas_delegations_2023",
            "meeting_medvedev_hamas"} <= set(ids)  # fmt: skip
    assert visits and all(entry["kind"] == "visit" for entry in visits)
    aggregate = next(
        e for e in history if e["interaction_id"] == "contacts_mfa_hamas_delegations_2023"
    )
    assert aggregate["cardinality_text"]
    for entry in history:
        assert entry["valid_time"]["edtf"]
        assert entry["cameo"]
        assert entry["sources"], entry["interaction_id"]


async def test_the_feed_carries_every_seed_event_as_cloudevents(
    api: ApiServer, seeded: dict[str, Any]
) -> None:
    events: list[dict[str, Any]] = []
    async with api.client("read") as client:
        await until_visible(client, seeded["cursor"])
        url: str | None = "/feed?limit=25"
        while url:
            response = await client.get(url)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/cloudevents-batch+json")
            page = response.json()
            events.extend(page)
            url = response.links["next"]["url"] if page else None
    assert len(events) >= 60
    assert len({e["id"] for e in events}) == len(events)
    assert events[-1]["cursor"] == seeded["cursor"] or any(
        e["cursor"] == seeded["cursor"] for e in events
    )
    hamas = next(e for e in events if e["subject"] == "actor-hamas")
    assert hamas["specversion"] == "1.0"
    assert hamas["type"] == "actor.registered.v1"
    assert hamas["data"]["actor_id"] == "hamas"
    assert hamas["source"].endswith("/streams/actor-hamas")
    assert hamas["recordedby"].startswith("key:")
    seed_streams = {e["subject"] for e in events if e["recordedby"] == hamas["recordedby"]}
    assert {"meeting-moscow_2024", "meeting-moscow_2019", "actor-abu_marzook"} <= seed_streams
