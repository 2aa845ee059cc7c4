"""``reflect=<cursor>`` on a live view: the answer says it reflects the write once the view's
projection has applied every event of its own categories up to the cursor, whichever category
the cursor's own event belongs to."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from events.domain.commands import RegisterActor, ScheduleMeeting
from tests.api_server import request_for

if TYPE_CHECKING:
    import httpx

    from events.domain.commands import Command
    from tests.api_server import ApiServer


async def _write(client: httpx.AsyncClient, command: Command) -> str:
    path, body = request_for(command)
    response = await client.post(path, json=body)
    assert response.status_code == 201, response.text
    return response.headers["Diplofeed-Cursor"]


async def test_a_write_the_view_does_not_read_is_reflected_not_stale(api: ApiServer) -> None:
    tag = uuid.uuid4().hex[:8]
    async with api.client("write") as client:
        scheduled = await _write(
            client, ScheduleMeeting(meeting_id=f"m{tag}", title="Talks", valid_time="2025")
        )
        # The roster reads meetings, declarations and interactions, not actors: its checkpoint
        # never moves to this event, yet nothing the roster reads lies before it unapplied.
        registered = await _write(
            client,
            RegisterActor(actor_id=f"a{tag}", kind="person", canonical_name=f"Person {tag}"),
        )
        response = await client.get(f"/meetings/m{tag}", params={"reflect": registered})
        assert response.status_code == 200, response.text
        assert response.headers["Diplofeed-Stale"] == "false"
        assert response.json()["meeting_id"] == f"m{tag}"
        listed = await client.get("/meetings", params={"reflect": registered, "limit": 1})
        assert listed.status_code == 200, listed.text
        assert listed.headers["Diplofeed-Stale"] == "false"
        # The meeting written before the actor is in: reflecting a later cursor reflects it.
        again = await client.get(f"/meetings/m{tag}", params={"reflect": scheduled})
        assert again.headers["Diplofeed-Stale"] == "false"
