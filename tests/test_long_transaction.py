"""A long transaction elsewhere on the server holds the feed's horizon back, but never the
writes: an actor registered by another process (the CLI, another replica) can be named at once.

The transaction is held open in a database of its own, as an unrelated application on a shared
server would: the horizon is cluster-wide, so it holds this database's feed back all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from events import APP_ROLE
from tests.api_server import running_api

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx

    from tests.api_server import ApiServer

WRITERS = 4
ROUNDS = 6

pytestmark = pytest.mark.timeout(180)


def _id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:16]}"


@contextlib.asynccontextmanager
async def long_transaction(dsn: str) -> AsyncIterator[int]:
    """A transaction with an id, open in ``dsn`` until the block ends; its id."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            xid: int = await conn.fetchval("SELECT pg_current_xact_id()::text::bigint")
            yield xid
            # Leaving the block commits: the transaction wrote nothing.
    finally:
        await conn.close()


async def _held_back(dsn: str, xid: int) -> bool:
    """Whether the feed's horizon of ``dsn`` is at or below ``xid`` now."""
    conn = await asyncpg.connect(dsn)
    try:
        horizon: int = await conn.fetchval(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
        )
    finally:
        await conn.close()
    return horizon <= xid


async def _load(dsn: str, *commands: dict[str, Any]) -> None:
    """Record ``commands`` with ``diplofeed load -``, a process of its own."""
    found = shutil.which("diplofeed", path=str(Path(sys.executable).parent))
    assert found is not None, "the diplofeed command is not installed next to this Python"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIPLOFEED_")},
        "DATABASE_URL": dsn,
        "DIPLOFEED_DB_ROLE": APP_ROLE,
        "DIPLOFEED_LOG_LEVEL": "warning",
    }
    process = await asyncio.create_subprocess_exec(
        found, "load", "-", env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    lines = "".join(json.dumps(c) + "\n" for c in commands).encode()
    out, err = await asyncio.wait_for(process.communicate(lines), 60)
    assert process.returncode == 0, err.decode()
    assert f"{len(commands)} recorded" in out.decode(), out.decode()


def _interaction(initiator: str, recipient: str) -> dict[str, Any]:
    return {
        "kind": "phone_call",
        "interaction_id": _id("i"),
        "participants": [
            {"actor": initiator, "role": "initiator"},
            {"actor": recipient, "role": "recipient"},
        ],
        "valid_time": "2024-03",
    }


async def test_an_actor_loaded_by_another_process_is_known_at_once(
    api: ApiServer, empty_dsn: str
) -> None:
    async with api.client("write") as client:
        known = await client.post(
            "/actors", json={"actor_id": _id("a"), "kind": "state", "canonical_name": "Known"}
        )
        assert known.status_code == 201, known.text
        async with long_transaction(empty_dsn) as xid:
            person = _id("p")
            name = f"Ottoline Brackenbury {person[-6:]}"
            alias = f"O. Quillfeather {person[-6:]}"
            await _load(
                api.dsn,
                {"type": "register_actor", "actor_id": person, "kind": "person",
                 "canonical_name": name},
                {"type": "add_alias", "actor": person, "alias": {"text": alias}},
            )  # fmt: skip
            # The feed cannot show the registration yet: the test is about that situation.
            assert await _held_back(api.dsn, xid)
            for ref in (name, alias, person):
                response = await client.post(
                    "/interactions", json=_interaction(ref, known.json()["stream_id"][6:])
                )
                assert response.status_code == 201, response.text
            assert await _held_back(api.dsn, xid)


async def _writer(
    register_on: httpx.AsyncClient,
    name_on: httpx.AsyncClient,
    partner: str,
    statuses: Counter[int],
    acked: list[str],
) -> None:
    """Register an actor on one replica and, at once, name it on the other, each write with
    an Idempotency-Key and retried with it until it is answered without a 5xx."""
    for _ in range(ROUNDS):
        person = _id("p")
        name = f"Drill Person {person}"
        register = {"actor_id": person, "kind": "person", "canonical_name": name}
        interaction = _interaction(name, partner)
        for client, path, body in (
            (register_on, "/actors", register),
            (name_on, "/interactions", interaction),
        ):
            key = str(uuid.uuid4())
            while True:
                response = await client.post(path, json=body, headers={"Idempotency-Key": key})
                statuses[response.status_code] += 1
                if response.status_code < 500:
                    break
                await asyncio.sleep(0.1)
            assert response.status_code == 201, response.text
            acked.append(response.json()["event_ids"][0])


async def test_writers_keep_writing_through_a_long_transaction_elsewhere(
    api: ApiServer, empty_dsn: str
) -> None:
    statuses: Counter[int] = Counter()
    acked: list[str] = []
    async with (
        running_api(api.dsn, run_projections=False) as replica,
        api.client("write") as first,
        replica.client("write") as second,
    ):
        partner = _id("s")
        response = await first.post(
            "/actors", json={"actor_id": partner, "kind": "state", "canonical_name": partner}
        )
        assert response.status_code == 201, response.text
        async with long_transaction(empty_dsn) as xid:
            await asyncio.gather(
                *(
                    _writer(*((first, second) if n % 2 else (second, first)), partner, statuses,
                            acked)
                    for n in range(WRITERS)
                )
            )  # fmt: skip
            assert await _held_back(api.dsn, xid)
    assert set(statuses) == {201}, statuses
    assert len(acked) == WRITERS * ROUNDS * 2
    conn = await asyncpg.connect(api.dsn)
    try:
        rows = await conn.fetch(
            "SELECT event_id::text FROM events WHERE event_id = any($1::uuid[])", acked
        )
    finally:
        await conn.close()
    recorded = Counter(r["event_id"] for r in rows)
    assert set(recorded) == set(acked)  # none lost
    assert set(recorded.values()) == {1}  # none twice
