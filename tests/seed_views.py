"""The seed article's sentences, and its facts as the HTTP views show them: what
``test_seed_facts`` asserts each fact through.

Every read goes through the real API: the views (``/actors``, ``/actors/{id}/contacts``,
``/meetings/{id}``, ``/graph``) for the fact itself, and ``/streams/{stream}`` for the sources
of facts whose view shows none (roles, aliases, a meeting's invitations and answers).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from events.domain.seed import article_text

if TYPE_CHECKING:
    import httpx

__all__ = ("SENTENCES", "Backing", "Views", "normalised", "quotes", "sentence")

Backing = list[list[str]]
"""The quotes of each record that backs a fact (one list per record)."""


def normalised(text: str) -> str:
    """``text`` with every run of whitespace one space."""
    return " ".join(text.split())


# A sentence ends at . or ... (a closing quote mark may follow) before the next one's capital.
_END: Final = re.compile(r"(?<=[.!?])\s+(?=[A-Z])|(?<=[.!?][\"”])\s+(?=[A-Z])")

SENTENCES: Final = tuple(_END.split(normalised(article_text())))
"""The article, a sentence each."""


def sentence(start: str) -> str:
    """The one sentence of the article that begins with ``start``."""
    found = [s for s in SENTENCES if s.startswith(start)]
    assert len(found) == 1, (start, found)
    return found[0]


def quotes(record: dict[str, Any]) -> list[str]:
    """The quotes of a record's sources (a view's or an event's), whitespace normalised."""
    return [normalised(s["quote"]) for s in record.get("sources") or () if s.get("quote")]


class Views:
    """The API's read side as the seed left it: every view read at the seed's last write."""

    def __init__(self, client: httpx.AsyncClient, cursor: str) -> None:
        self._client = client
        self._cursor = cursor

    async def get(self, path: str, **params: Any) -> Any:
        """A view's JSON, read once the seed's last write is in it."""
        response = await self._client.get(path, params={"reflect": self._cursor, **params})
        assert response.status_code == 200, (path, response.text)
        return response.json()

    async def actor(self, ref: str) -> dict[str, Any]:
        """``/actors/{ref}``."""
        found: dict[str, Any] = await self.get(f"/actors/{ref}")
        return found

    async def search(self, name: str) -> list[str]:
        """The ids ``/actors?name=`` finds for ``name``."""
        return [a["actor_id"] for a in await self.get("/actors", name=name, limit=1000)]

    async def history(self, actor: str, **params: Any) -> dict[str, dict[str, Any]]:
        """``actor``'s contact history (one page: the seed's are short), by interaction id."""
        entries = await self.get(f"/actors/{actor}/contacts", limit=1000, **params)
        return {e["interaction_id"]: e for e in entries}

    async def entry(self, actor: str, interaction_id: str) -> dict[str, Any]:
        """One entry of ``actor``'s contact history."""
        history = await self.history(actor)
        assert interaction_id in history, (actor, interaction_id, sorted(history))
        return history[interaction_id]

    async def roster(self, meeting_id: str) -> dict[str, Any]:
        """``/meetings/{meeting_id}``."""
        found: dict[str, Any] = await self.get(f"/meetings/{meeting_id}")
        return found

    async def faction(self, meeting_id: str, faction_id: str) -> dict[str, Any]:
        """One faction's row of a meeting's roster."""
        rows: dict[str, dict[str, Any]] = {
            f["faction_id"]: f for f in (await self.roster(meeting_id))["factions"]
        }
        return rows[faction_id]

    async def graph(self, actor: str, **params: Any) -> list[dict[str, Any]]:
        """``actor``'s edges in the contact graph."""
        edges: list[dict[str, Any]] = await self.get("/graph", actor=actor, limit=1000, **params)
        return edges

    async def role(self, actor: str, organisation: str, title: str) -> dict[str, Any]:
        """The role ``/actors/{actor}`` shows in ``organisation`` with ``title``."""
        roles: list[dict[str, Any]] = [
            r
            for r in (await self.actor(actor))["roles"]
            if (r["organisation_id"], r.get("title")) == (organisation, title)
        ]
        assert len(roles) == 1, (actor, organisation, title, roles)
        return roles[0]

    async def events(self, stream: str, event_type: str, **fields: Any) -> list[dict[str, Any]]:
        """The data of ``stream``'s events of ``event_type`` whose fields have these values,
        from ``/streams/{stream}``."""
        response = await self._client.get(f"/streams/{stream}", params={"limit": 1000})
        assert response.status_code == 200, (stream, response.text)
        found = [
            e["data"]
            for e in response.json()["events"]
            if e["type"] == event_type and all(e["data"].get(k) == v for k, v in fields.items())
        ]
        assert found, (stream, event_type, fields)
        return found

    async def feed(self) -> list[dict[str, Any]]:
        """Every event of the feed (CloudEvents), page by page."""
        events: list[dict[str, Any]] = []
        url: str | None = "/feed?limit=1000"
        while url:
            response = await self._client.get(url)
            assert response.status_code == 200, response.text
            page = response.json()
            events.extend(page)
            url = response.links["next"]["url"] if page else None
        return events

    async def backing(self, stream: str, event_type: str, **fields: Any) -> Backing:
        """The quotes of each event ``events`` finds."""
        return [quotes(data) for data in await self.events(stream, event_type, **fields)]
