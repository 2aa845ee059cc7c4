"""``Idempotency-Key`` (IETF draft-ietf-httpapi-idempotency-key-header-06) for commands.

Two layers make a retried POST safe. The command itself is idempotent: the key becomes the
command's ``command_id``, from which the domain derives its event ids, so a retry appends
nothing whatever happened to the first attempt (even a crash after the append). This table
adds what HTTP needs on top: the same key with another request is refused (422), a request
still in flight is answered 409, and a completed one is answered with its original response.
No maintained Litestar library does this, hence this module.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Final

import msgspec

from service.problems import problem

if TYPE_CHECKING:
    import asyncpg

__all__ = ("Claim", "Replay", "claim", "command_id_for", "complete", "fingerprint")

LEASE_SECONDS: Final = 30.0

CLAIM_SQL: Final = """
INSERT INTO idempotency_keys (principal, key, fingerprint, lease_until)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
ON CONFLICT (principal, key) DO NOTHING
"""
LOOKUP_SQL: Final = """
SELECT fingerprint, status, response, lease_until > now() AS leased
FROM idempotency_keys WHERE principal = $1 AND key = $2
"""
# Taking over an abandoned claim (its holder died mid-request) is safe: the command is
# idempotent by its key, so running it again records nothing twice.
TAKE_OVER_SQL: Final = """
UPDATE idempotency_keys SET lease_until = now() + make_interval(secs => $3)
WHERE principal = $1 AND key = $2 AND status IS NULL AND lease_until <= now()
"""
COMPLETE_SQL: Final = """
UPDATE idempotency_keys SET status = $3, response = $4::jsonb, lease_until = now()
WHERE principal = $1 AND key = $2
"""
RELEASE_SQL: Final = """
DELETE FROM idempotency_keys WHERE principal = $1 AND key = $2 AND status IS NULL
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


async def claim(pool: asyncpg.Pool, principal: str, key: str, print_: bytes) -> Claim | Replay:
    """Claim ``key`` for this request, or return the original response.

    Raises:
        Problem: 422 when the key was used with another request; 409 while the first request
            with it is still in flight.
    """
    key = check_key(key)
    async with pool.acquire() as conn:
        status = await conn.execute(CLAIM_SQL, principal, key, print_, LEASE_SECONDS)
        if status == "INSERT 0 1":
            return Claim(principal=principal, key=key)
        row = await conn.fetchrow(LOOKUP_SQL, principal, key)
        if row is None:  # released between our two statements: try once more
            await conn.execute(CLAIM_SQL, principal, key, print_, LEASE_SECONDS)
            return Claim(principal=principal, key=key)
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
        if (
            row["leased"]
            or await conn.execute(TAKE_OVER_SQL, principal, key, LEASE_SECONDS) != "UPDATE 1"
        ):
            raise problem(
                409,
                "a request with this Idempotency-Key is still in flight; retry when it is done",
                headers={"Retry-After": "1"},
            )
        return Claim(principal=principal, key=key)


async def complete(
    pool: asyncpg.Pool, held: Claim, status: int, body: Any, headers: dict[str, str]
) -> None:
    """Remember the response sent for ``held``."""
    response = msgspec.json.encode({"body": body, "headers": headers}).decode()
    await pool.execute(COMPLETE_SQL, held.principal, held.key, status, response)


async def release(pool: asyncpg.Pool, held: Claim) -> None:
    """Give the key back after a failure, so that a corrected retry may use it."""
    await pool.execute(RELEASE_SQL, held.principal, held.key)
