"""The HTTP benchmark's floor: a bare Litestar app over an asyncpg pool, served by uvicorn in
its own process exactly like the real app (``bench/http.py`` starts both).

    uvicorn bench._floor_app:create_app --factory   # BENCH_FLOOR_DSN, BENCH_FLOOR_POOL_MAX_SIZE

``GET /feed?tx=&pos=&limit=`` returns the next ``limit`` rows of the real ``events`` table after
``(tx, pos)`` in its key order, with the columns the feed reads, encoded as JSON (stored JSON
spliced in raw, as the real feed does). ``POST /interactions`` decodes the JSON body and
INSERTs one row into ``floor_writes``: the events table's columns and uniqueness constraints,
without its triggers. No authentication, no middleware, no domain rules, no ordering guarantee.
The pool is configured like the app's (same role, timeouts and size, ``events.connect``).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import msgspec
from litestar import Litestar, Request, Response, get, post

from events.connect import ConnectionOptions, create_pool

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ("FLOOR_WRITES_SQL", "create_app")

FLOOR_WRITES_SQL: Final = """
CREATE TABLE floor_writes (
    position        bigint GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text NOT NULL,
    stream_version  bigint NOT NULL,
    event_id        uuid NOT NULL,
    type            text NOT NULL,
    schema_version  integer NOT NULL,
    data            jsonb NOT NULL,
    metadata        jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    hash            bytea NOT NULL,
    PRIMARY KEY (transaction_id, position),
    UNIQUE (stream_id, stream_version),
    UNIQUE (event_id)
);
GRANT SELECT, INSERT ON floor_writes TO diplofeed_app;
"""
READ_SQL: Final = """
SELECT position, transaction_id, stream_id, stream_version, event_id, type, schema_version,
       data::text, metadata::text, recorded_at, hash
FROM events WHERE (transaction_id, position) > ($1::xid8, $2::bigint)
ORDER BY transaction_id, position LIMIT $3
"""
INSERT_SQL: Final = """
INSERT INTO floor_writes (stream_id, stream_version, event_id, type, schema_version, data,
                          metadata, hash)
VALUES ($1, 1, $2, 'interaction.phone_call_held.v1', 1, $3::jsonb, $4::jsonb, $5)
RETURNING position
"""
METADATA: Final = '{"recorded_by": "key:floor"}'


class Row(msgspec.Struct, frozen=True):
    position: int
    transaction_id: int
    stream_id: str
    stream_version: int
    event_id: str
    type: str
    schema_version: int
    data: msgspec.Raw
    metadata: msgspec.Raw
    recorded_at: datetime
    hash: str


class Body(msgspec.Struct, frozen=True):
    interaction_id: str


_ENCODER: Final = msgspec.json.Encoder()
_BODY: Final = msgspec.json.Decoder(Body)


def _pool(app: Litestar) -> Any:
    return app.state.pool


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/feed", media_type="application/json")
async def feed(request: Request[Any, Any, Any], tx: int = 0, pos: int = 0, limit: int = 100) -> Any:
    rows = await _pool(request.app).fetch(READ_SQL, tx, pos, limit)
    body = _ENCODER.encode(
        [
            Row(
                r[0],
                r[1],
                r[2],
                r[3],
                str(r[4]),
                r[5],
                r[6],
                msgspec.Raw(r[7].encode()),
                msgspec.Raw(r[8].encode()),
                r[9],
                r[10].hex(),
            )
            for r in rows
        ]
    )
    return Response(body, media_type="application/json")


@post("/interactions", status_code=201)
async def write(request: Request[Any, Any, Any]) -> dict[str, Any]:
    raw = await request.body()
    body = _BODY.decode(raw)
    event_id = uuid.uuid4()
    position = await _pool(request.app).fetchval(
        INSERT_SQL,
        f"interaction-{body.interaction_id}",
        event_id,
        raw.decode(),
        METADATA,
        hashlib.sha256(raw).digest(),
    )
    return {"stream_id": f"interaction-{body.interaction_id}", "position": position}


@asynccontextmanager
async def _lifespan(app: Litestar) -> AsyncIterator[None]:
    options = ConnectionOptions(
        dsn=os.environ["BENCH_FLOOR_DSN"],
        role=os.environ.get("BENCH_FLOOR_ROLE") or None,
        min_pool_size=int(os.environ.get("BENCH_FLOOR_POOL_MIN_SIZE", "2")),
        max_pool_size=int(os.environ.get("BENCH_FLOOR_POOL_MAX_SIZE", "10")),
    )
    app.state.pool = await create_pool(options)
    try:
        yield
    finally:
        await app.state.pool.close()


def create_app() -> Litestar:
    """The floor app (configured from the environment; see the module docstring)."""
    return Litestar(route_handlers=[health, feed, write], lifespan=[_lifespan])
