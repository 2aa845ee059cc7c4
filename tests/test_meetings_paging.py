"""/meetings and /meetings/{id} through the real app: pages pinned to their first page's cursor
while writes land, bounded limits, tokens bound to their query, and rosters as of a cursor or a
time equal to the live ones captured then."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from events.domain.commands import (
    CorrectEvent,
    InviteFaction,
    PostponeMeeting,
    RegisterActor,
    RetractEvent,
    ScheduleMeeting,
)
from tests.api_server import request_for

if TYPE_CHECKING:
    import httpx

    from events.domain.commands import Command
    from tests.api_server import ApiServer


async def _write(client: httpx.AsyncClient, command: Command) -> tuple[str, str]:
    """Record ``command``; its cursor and event id."""
    path, body = request_for(command)
    headers = {}
    if isinstance(command, (CorrectEvent, RetractEvent)):
        # An amendment says which version of the stream it reviewed.
        stream = await client.get(f"/streams/{command.stream}")
        headers["If-Match"] = stream.headers["ETag"]
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    receipt = response.json()
    return response.headers["Diplofeed-Cursor"], receipt["event_ids"][0]


async def _walk(
    client: httpx.AsyncClient, params: dict[str, Any], between: Any = None
) -> tuple[list[dict[str, Any]], str, int]:
    """Every entry of ``/meetings`` page by page (``between()`` awaited after each page); the
    entries, the first page's position and the number of pages."""
    response = await client.get("/meetings", params=params)
    assert response.status_code == 200, response.text
    position = response.headers["Diplofeed-Position"]
    entries: list[dict[str, Any]] = []
    pages = 0
    while True:
        pages += 1
        page = response.json()
        assert 0 < len(page) <= params.get("limit", 100) or "next" not in response.links
        entries += page
        if "next" not in response.links:
            return entries, position, pages
        if between is not None:
            await between()
        response = await client.get(response.links["next"]["url"])
        assert response.status_code == 200, response.text


async def test_a_walk_while_writes_land_shows_each_meeting_once_as_at_its_first_page(
    api: ApiServer,
) -> None:
    tag = uuid.uuid4().hex[:8]
    # Ids spread over the id order, so that writes land before and after the walk's place.
    ids = [f"{letter}{tag}_{n}" for letter in "bdhmqtwy" for n in range(2)]
    async with api.client("write") as client:
        schedulings = {}
        for meeting_id in ids:
            cursor, schedulings[meeting_id] = await _write(
                client, ScheduleMeeting(meeting_id=meeting_id, title="Talks", valid_time="2025")
            )
        done: list[int] = []

        async def write_meanwhile() -> None:
            n = len(done)
            if n == len(ids) // 2:
                return
            done.append(n)
            await _write(
                client,
                ScheduleMeeting(
                    meeting_id=f"{'aceglnpsuvz'[n % 11]}{tag}_new{n}",
                    title="New",
                    valid_time="2026",
                ),
            )
            await _write(
                client,
                RetractEvent(
                    stream=f"meeting-{ids[n]}", target_event_id=schedulings[ids[n]], reason="x"
                ),
            )
            last, _ = await _write(client, PostponeMeeting(meeting_id=ids[-1 - n], reason="y"))
            # The live view has taken the writes in before the walk goes on.
            live = await client.get(f"/meetings/{ids[-1 - n]}", params={"reflect": last})
            assert live.json()["status"] == "postponed"

        walked, position, pages = await _walk(
            client, {"limit": 3, "reflect": cursor}, write_meanwhile
        )
        assert pages > 3
        assert len(done) > 3, "too few writes landed mid-walk"
        ids_walked = [e["meeting_id"] for e in walked]
        assert len(ids_walked) == len(set(ids_walked)), "a meeting was shown twice"
        assert ids_walked == sorted(ids_walked)
        assert set(ids) <= set(ids_walked)
        assert not any("_new" in m for m in ids_walked if tag in m)
        assert all(e["status"] == "scheduled" for e in walked if tag in e["meeting_id"])
        # The walk is the view as it stood at its first page: read again as of that cursor.
        snapshot, again, _ = await _walk(client, {"limit": 1000, "as_of_cursor": position})
        assert again == position
        assert walked == snapshot
        # And the live view has moved on meanwhile.
        live, _, _ = await _walk(client, {"limit": 1000})
        assert live != walked
        assert ids[0] not in {e["meeting_id"] for e in live}


async def test_limits_out_of_bounds_are_refused(api: ApiServer) -> None:
    async with api.client("read") as client:
        for limit in (0, 1001, -1):
            response = await client.get("/meetings", params={"limit": limit})
            assert response.status_code == 400, (limit, response.text)
        assert (await client.get("/meetings", params={"limit": 1000})).status_code == 200


async def test_a_token_replayed_with_other_filters_is_refused(api: ApiServer) -> None:
    tag = uuid.uuid4().hex[:8]
    async with api.client("write") as client:
        for n in range(3):
            cursor, _ = await _write(
                client, ScheduleMeeting(meeting_id=f"k{tag}_{n}", title="Talks", valid_time="2025")
            )
        first = await client.get("/meetings", params={"limit": 1, "reflect": cursor})
        assert first.status_code == 200
        after = first.links["next"]["url"].split("after=")[1]
        position = first.headers["Diplofeed-Position"]
        same = await client.get("/meetings", params={"limit": 1, "reflect": cursor, "after": after})
        assert same.status_code == 200, same.text
        assert same.json()[0]["meeting_id"] > first.json()[0]["meeting_id"]
        # ``reflect`` may change along a walk (it says what to wait for, not what to read).
        for other in ({"as_of_cursor": position}, {"as_of": "2024-01-01T00:00:00Z"}):
            replayed = await client.get("/meetings", params={"limit": 1, "after": after, **other})
            assert replayed.status_code == 400, (other, replayed.text)
        garbage = await client.get("/meetings", params={"after": "bm90IGEgdG9rZW4"})
        assert garbage.status_code == 400


async def test_a_roster_as_of_a_cursor_or_a_time_equals_the_live_one_captured_then(
    api: ApiServer,
) -> None:
    tag = uuid.uuid4().hex[:8]
    meeting, faction = f"r{tag}", f"f{tag}"
    async with api.client("write") as client:
        before, _ = await _write(
            client,
            RegisterActor(actor_id=faction, kind="organisation", canonical_name=f"Front {tag}"),
        )
        cursor, scheduled = await _write(
            client, ScheduleMeeting(meeting_id=meeting, title="Talks", valid_time="2025-03")
        )
        commands: list[Command] = [
            InviteFaction(meeting_id=meeting, faction=faction),
            PostponeMeeting(meeting_id=meeting, reason="snow"),
            CorrectEvent(
                stream=f"meeting-{meeting}",
                target_event_id=scheduled,
                changes={"valid_time": "2025-04"},
                reason="misread",
            ),
        ]
        captured: list[tuple[str, dict[str, Any]]] = []
        for command in [None, *commands]:
            if command is not None:
                cursor, _ = await _write(client, command)
            live = await client.get(f"/meetings/{meeting}", params={"reflect": cursor})
            assert live.status_code == 200, live.text
            assert live.headers["Diplofeed-Stale"] == "false"
            captured.append((live.headers["Diplofeed-Position"], live.json()))
        retracted, _ = await _write(
            client,
            RetractEvent(stream=f"meeting-{meeting}", target_event_id=scheduled, reason="no"),
        )
        gone = await client.get(f"/meetings/{meeting}", params={"reflect": retracted})
        assert gone.status_code == 404

        assert len({repr(body) for _, body in captured}) == len(captured)
        for position, body in captured:
            by_cursor = await client.get(f"/meetings/{meeting}", params={"as_of_cursor": position})
            assert by_cursor.status_code == 200, by_cursor.text
            assert by_cursor.json() == body
            assert by_cursor.headers["Diplofeed-Position"] == position
            when = body["as_of"]["recorded_at"]
            by_time = await client.get(f"/meetings/{meeting}", params={"as_of": when})
            assert by_time.status_code == 200, by_time.text
            assert by_time.json() == body
            assert by_time.headers["Diplofeed-As-Of"]
        unknown_then = await client.get(f"/meetings/{meeting}", params={"as_of_cursor": before})
        assert unknown_then.status_code == 404
        unknown_after = await client.get(f"/meetings/{meeting}", params={"as_of_cursor": retracted})
        assert unknown_after.status_code == 404
        assert (await client.get(f"/meetings/{meeting}")).status_code == 404
        # An as-of point on an event the roster does not read, past its checkpoint: nothing of
        # the roster lies between the two, so it answers at once, not stale.
        actor_cursor, _ = await _write(
            client, RegisterActor(actor_id=f"x{tag}", kind="person", canonical_name=f"X {tag}")
        )
        at_actor = await client.get(f"/meetings/{meeting}", params={"as_of_cursor": actor_cursor})
        assert at_actor.status_code == 404
        captured_position, captured_body = captured[-1]
        other = await client.get("/meetings", params={"as_of_cursor": actor_cursor, "limit": 1000})
        assert other.headers["Diplofeed-Stale"] == "false"
        assert meeting not in {m["meeting_id"] for m in other.json()}
        back = await client.get(f"/meetings/{meeting}", params={"as_of_cursor": captured_position})
        assert back.json() == captured_body
