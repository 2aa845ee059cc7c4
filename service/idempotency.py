"""``Idempotency-Key`` (IETF draft-ietf-httpapi-idempotency-key-header-06) for commands.

Two layers make a retried POST safe. The command itself is idempotent: the key becomes the
command's ``command_id``, from which the domain derives its event ids, so a retry appends
nothing whatever happened to the first attempt (even a crash after the append). This table
adds what HTTP needs on top: the same key with another request is refused (422), a request
still in flight is answered 409, and a completed one is answered with its original response.
No maintained Litestar library does this, hence this module.

A claim is stamped with its process's owner token (``service.liveness``). The lease alone kept
the key of a request whose process was killed for ``LEASE_SECONDS``: every retry was told 409
"still in flight" about a request that no longer existed. Now a claim whose owner's lock is
free is taken over at once; the lease only bounds claims without an owner.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import msgspec

from events.notify import CONNECTION_ERRORS
from service.liveness import OWNER_LOCK_SPACE
from service.problems import problem

if TYPE_CHECKING:
    import asyncpg

__all__ = (
    "Claim",
    "Replay",
    "abandon",
    "claim",
    "command_id_for",
    "complete",
    "fingerprint",
    "release",
    "release_eventually",
)

LEASE_SECONDS: Final = 30.0

_abandoned: dict[tuple[str, str], datetime] = {}
"""Claims of this process whose request failed but that could not be released yet (the
database was unreachable), by principal and key: see ``abandon``."""

CLAIM_SQL: Final = """
INSERT INTO idempotency_keys (principal, key, fingerprint, lease_until, owner)
VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5)
ON CONFLICT (principal, key) DO NOTHING
RETURNING lease_until
"""
LOOKUP_SQL: Final = """
SELECT fingerprint, status, response, lease_until > now() AS leased, lease_until, owner
FROM idempotency_keys WHERE principal = $1 AND key = $2
"""
# Taking over an abandoned claim (its lease ran out, its holder failed and could not give it
# back: $4, or its owner's process is gone: the owner lock is free) is safe: the command is
# idempotent by its key, so running it again records nothing twice. The owner test takes the
# lock shared, for this statement's transaction only: it fails while the owner holds it.
TAKE_OVER_SQL: Final = """
UPDATE idempotency_keys SET lease_until = now() + make_interval(secs => $3), owner = $5
WHERE principal = $1 AND key = $2 AND status IS NULL
  AND (lease_until <= now() OR lease_until = $4::timestamptz
       OR (owner IS NOT NULL AND pg_try_advisory_xact_lock_shared($6::integer, owner)))
RETURNING lease_until
"""
COMPLETE_SQL: Final = """
UPDATE idempotency_keys SET status = $3, response = $4::jsonb, lease_until = now()
WHERE principal = $1 AND key = $2
"""
# Only the claim this request holds: a release retried after an outage must not free the key
# under a later request that has taken it over since.
RELEASE_SQL: Final = """
DELETE FROM idempotency_keys
WHERE principal = $1 AND key = $2 AND status IS NULL AND lease_until = $3
"""


class Replay(msgspec.Struct, frozen=True, kw_only=True):
    """A completed request's response, to send again."""

    status: int
    body: Any
    headers: dict[str, str]


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """This request holds the key: run it, then ``complete`` (or ``release`` on failure)."""

    principal: str
    key: str
    lease_until: datetime
    """Identifies this claim among successive claims of the same key."""


def fingerprint(method: str, path: str, body: bytes) -> bytes:
    """What makes two requests the same request."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def command_id_for(principal: str, key: str) -> str:
    """The command id a keyed request runs under (stable, short, unique per principal)."""
    return "idem-" + hashlib.sha256(f"{principal}\0{key}".encode()).hexdigest()[:40]


def check_key(key: str) -> str:
    """Refuse keys that cannot be stored or that look like a mistake."""
    key = key.strip()
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise problem(
            400, "Idempotency-Key must be 1 to 255 printable characters", field="Idempotency-Key"
        )
    return key


async def claim(
    pool: asyncpg.Pool, principal: str, key: str, print_: bytes, *, owner: int | None = None
) -> Claim | Replay:
    """Claim ``key`` for this request, or return the original response. ``owner``: this
    process's token (``Liveness.owner``), while it holds its owner lock.

    Raises:
        Problem: 422 when the key was used with another request; 409 while the first request
            with it is still in flight.
    """
    key = check_key(key)
    async with pool.acquire() as conn:
        lease = await conn.fetchval(CLAIM_SQL, principal, key, print_, LEASE_SECONDS, owner)
        if lease is not None:
            return Claim(principal=principal, key=key, lease_until=lease)
        row = await conn.fetchrow(LOOKUP_SQL, principal, key)
        if row is None:  # released between our two statements: try once more
            lease = await conn.fetchval(CLAIM_SQL, principal, key, print_, LEASE_SECONDS, owner)
            if lease is not None:
                return Claim(principal=principal, key=key, lease_until=lease)
            raise _in_flight()
        if bytes(row["fingerprint"]) != print_:
            raise problem(
                422,
                "this Idempotency-Key was already used with a different request; "
                "use a new key for a new request",
                slug="idempotency-mismatch",
                title="Idempotency key reused",
            )
        if row["status"] is not None:
            saved = msgspec.json.decode(row["response"])
            return Replay(status=row["status"], body=saved["body"], headers=saved["headers"])
        # A claim this process knows has failed is not in flight, whatever its lease says, nor
        # is one whose owner has gone (the statement asks its lock).
        abandoned = _abandoned.get((principal, key))
        lease = (
            None
            if row["leased"] and abandoned != row["lease_until"] and row["owner"] is None
            else await conn.fetchval(
                TAKE_OVER_SQL, principal, key, LEASE_SECONDS, abandoned, owner, OWNER_LOCK_SPACE
            )
        )
        if lease is None:
            raise _in_flight()
        return Claim(principal=principal, key=key, lease_until=lease)


def _in_flight() -> Exception:
    return problem(
        409,
        "a request with this Idempotency-Key is still in flight; retry when it is done",
        headers={"Retry-After": "1"},
    )


async def complete(
    pool: asyncpg.Pool, held: Claim, status: int, body: Any, headers: dict[str, str]
) -> None:
    """Remember the response sent for ``held``."""
    response = msgspec.json.encode({"body": body, "headers": headers}).decode()
    await pool.execute(COMPLETE_SQL, held.principal, held.key, status, response)


async def release(pool: asyncpg.Pool, held: Claim) -> None:
    """Give the key back after a failure, so that a corrected retry may use it."""
    await pool.execute(RELEASE_SQL, held.principal, held.key, held.lease_until)


def abandon(held: Claim) -> None:
    """Note that the request holding ``held`` has failed: a retry reaching this process may
    take the key over at once (``release_eventually`` gives it back to everyone else)."""
    _abandoned[held.principal, held.key] = held.lease_until


async def release_eventually(pool: asyncpg.Pool, held: Claim, *, interval: float = 0.5) -> None:
    """``abandon``, then ``release``, retried through a database outage until the lease would
    have run out anyway.

    A request that fails because the database went away cannot give its key back then, and
    before this the key stayed leased for ``LEASE_SECONDS``: every retry with it was told 409
    "still in flight" for half a minute after the database was back, about a request that had
    long failed. Releasing is safe even when the failed request's append did commit: the retry
    finds the events by their key-derived ids and answers the original write.
    """
    abandon(held)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LEASE_SECONDS
    try:
        while True:
            try:
                await release(pool, held)
            except CONNECTION_ERRORS:
                if loop.time() >= deadline:
                    return
                await asyncio.sleep(interval)
            else:
                return
    finally:
        if _abandoned.get((held.principal, held.key)) == held.lease_until:
            del _abandoned[held.principal, held.key]
