"""Idempotency keys through a database outage: a failed request's key is given back as soon as
the database is back, and only the claim that failed is ever released."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from events import connect
from service import idempotency
from service.liveness import Liveness
from service.problems import Problem

if TYPE_CHECKING:
    import asyncpg

    from events import ConnectionOptions


class _Outage:
    """A pool whose first ``failures`` statements fail as if the server were down."""

    def __init__(self, pool: asyncpg.Pool, failures: int) -> None:
        self._pool = pool
        self.failures = failures
        self.attempts = 0

    async def execute(self, *args: Any) -> str:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionRefusedError(111, "Connect call failed")
        return await self._pool.execute(*args)


async def _row(pool: asyncpg.Pool, principal: str, key: str) -> Any:
    return await pool.fetchrow(
        "SELECT status, lease_until FROM idempotency_keys WHERE principal = $1 AND key = $2",
        principal,
        key,
    )


async def test_a_key_is_released_once_the_database_is_back(pool: asyncpg.Pool) -> None:
    principal, key = f"test:{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    held = await idempotency.claim(pool, principal, key, b"print")
    assert isinstance(held, idempotency.Claim)
    down = _Outage(pool, failures=3)
    await idempotency.release_eventually(down, held, interval=0.01)  # type: ignore[arg-type]
    assert down.attempts == 4
    assert await _row(pool, principal, key) is None
    again = await idempotency.claim(pool, principal, key, b"print")
    assert isinstance(again, idempotency.Claim)


async def test_a_late_release_leaves_a_later_claim_alone(pool: asyncpg.Pool) -> None:
    principal, key = f"test:{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    first = await idempotency.claim(pool, principal, key, b"print")
    assert isinstance(first, idempotency.Claim)
    # The first request's lease ran out and another request took the key over.
    await pool.execute(
        "UPDATE idempotency_keys SET lease_until = now() - interval '1 second' "
        "WHERE principal = $1 AND key = $2",
        principal,
        key,
    )
    second = await idempotency.claim(pool, principal, key, b"print")
    assert isinstance(second, idempotency.Claim)
    await idempotency.release(pool, first)
    row = await _row(pool, principal, key)
    assert row is not None
    assert row["lease_until"] == second.lease_until


async def test_a_retry_takes_over_a_claim_this_process_knows_has_failed(
    pool: asyncpg.Pool,
) -> None:
    principal, key = f"test:{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    failed = await idempotency.claim(pool, principal, key, b"print")
    assert isinstance(failed, idempotency.Claim)
    idempotency.abandon(failed)  # its release could not reach the database
    retry = await idempotency.claim(pool, principal, key, b"print")
    assert isinstance(retry, idempotency.Claim)
    assert retry.lease_until != failed.lease_until
    # But a request that is really in flight still holds its key.
    with pytest.raises(Problem) as refused:
        await idempotency.claim(pool, principal, key, b"print")
    assert refused.value.status_code == 409
    await idempotency.release_eventually(pool, failed)  # finds nothing to release, forgets it
    assert (principal, key) not in idempotency._abandoned
    assert (await _row(pool, principal, key))["lease_until"] == retry.lease_until


async def test_a_claim_is_free_as_soon_as_its_owner_is_gone(
    pool: asyncpg.Pool, app_options: ConnectionOptions
) -> None:
    principal, key = f"test:{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    owner = Liveness(lambda: connect(app_options))
    await owner.start()
    assert owner.owner is not None
    held = await idempotency.claim(pool, principal, key, b"print", owner=owner.owner)
    assert isinstance(held, idempotency.Claim)
    # Its owner lives: the request is in flight.
    with pytest.raises(Problem) as refused:
        await idempotency.claim(pool, principal, key, b"print")
    assert refused.value.status_code == 409
    # Its owner's session ends, as a killed process's does: the lease no longer matters.
    await owner.close()
    assert owner.owner is None
    successor = Liveness(lambda: connect(app_options))
    await successor.start()
    try:
        retry = await idempotency.claim(pool, principal, key, b"print", owner=successor.owner)
        assert isinstance(retry, idempotency.Claim)
        assert retry.lease_until != held.lease_until
        # The claim taken over is the successor's, and in flight while it lives.
        with pytest.raises(Problem) as again:
            await idempotency.claim(pool, principal, key, b"print")
        assert again.value.status_code == 409
    finally:
        await successor.close()
