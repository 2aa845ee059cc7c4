"""Every view request runs under a time limit of its own: past it the answer is a 503 problem
naming the limit, and the server goes on answering."""

from __future__ import annotations

import asyncpg
import pytest

from tests.api_server import running_api
from tests.database import scratch_database
from tests.served import until_answers

VIEW_PATHS = ("/meetings", "/meetings/none_such", "/graph", "/actors/anyone/contacts")


@pytest.mark.parametrize("path", VIEW_PATHS)
async def test_a_view_past_its_time_limit_is_a_503_naming_the_limit(
    server_url: str, path: str
) -> None:
    async with (
        scratch_database(server_url, migrated=True) as dsn,
        running_api(dsn, view_statement_timeout_ms=300) as api,
        api.client("read") as client,
        api.client("write") as writer,
    ):
        made = await writer.post(
            "/actors", json={"actor_id": "anyone", "kind": "person", "canonical_name": "Any One"}
        )
        assert made.status_code == 201, made.text
        cursor = made.headers["Diplofeed-Cursor"]
        for view in ("/meetings", "/actors/anyone/contacts", "/graph"):
            await until_answers(client, f"{view}?reflect={cursor}")
        # Another session holds every view table: each view statement waits on the lock until
        # the view's own timeout cancels it.
        holder = await asyncpg.connect(dsn)
        try:
            transaction = holder.transaction()
            await transaction.start()
            tables = await holder.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'projections'"
            )
            names = ", ".join(f'projections."{t["tablename"]}"' for t in tables)
            await holder.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
            response = await client.get(path)
            await transaction.rollback()
        finally:
            await holder.close()
        after = await client.get("/meetings")
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["limit"] == "view_statement_timeout_ms", body
    assert body["type"].endswith("/view-limit")
    assert "Retry-After" in response.headers
    assert after.status_code == 200
