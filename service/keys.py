"""API keys: created with a scope set, stored only as a hash, checked in constant time.

A key reads ``dfk_<id>_<secret>``. The id finds the row and names the key in logs and in the
metadata of every event it writes; only ``sha256(secret)`` is stored, and it is compared with
``hmac.compare_digest``. Hand-written because no maintained Litestar library stores API keys;
Litestar's own authentication middleware base does the request side (``service.auth``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from datetime import datetime
from typing import TYPE_CHECKING, Final, Literal, NamedTuple

import msgspec

from events.notify import CONNECTION_ERRORS

if TYPE_CHECKING:
    import asyncpg

__all__ = (
    "SCOPES",
    "ApiKey",
    "CreatedKey",
    "KeyError_",
    "KeyRing",
    "Scope",
    "create_key",
    "list_keys",
    "list_keys_page",
    "revoke_key",
)

Scope = Literal["read", "write", "admin"]
SCOPES: Final[tuple[Scope, ...]] = ("read", "write", "admin")

INSERT_KEY_SQL: Final = """
INSERT INTO api_keys (id, name, secret_hash, scopes) VALUES ($1, $2, $3, $4)
RETURNING created_at
"""
LIST_KEYS_SQL: Final = """
SELECT id, name, scopes, created_at, revoked_at FROM api_keys ORDER BY created_at, id
"""
# $1/$2: the last key of the previous page (NULL: from the first), $3: how many.
LIST_KEYS_PAGE_SQL: Final = """
SELECT id, name, scopes, created_at, revoked_at FROM api_keys
WHERE $1::timestamptz IS NULL OR (created_at, id) > ($1, $2::text)
ORDER BY created_at, id
LIMIT $3
"""
REVOKE_KEY_SQL: Final = """
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
RETURNING id, name, scopes, created_at, revoked_at
"""
LOOKUP_KEY_SQL: Final = """
SELECT id, name, scopes, created_at, revoked_at, secret_hash FROM api_keys WHERE id = $1
"""

_TOKEN = re.compile(r"^dfk_([a-z0-9]{12})_([A-Za-z0-9_-]{20,100})$")


class KeyError_(ValueError):
    """A key that cannot be created or revoked as asked."""


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """A key as listed: never its secret."""

    id: str
    name: str
    scopes: tuple[Scope, ...]
    created_at: datetime
    revoked_at: datetime | None = None

    def allows(self, scope: Scope) -> bool:
        """Admin implies write, write implies read."""
        rank = SCOPES.index(scope)
        return self.revoked_at is None and any(SCOPES.index(s) >= rank for s in self.scopes)


class CreatedKey(msgspec.Struct, frozen=True, kw_only=True):
    """A new key with its token, which is shown this once and never again."""

    key: ApiKey
    token: str


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        scopes=tuple(row["scopes"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


async def create_key(
    conn: asyncpg.Connection | asyncpg.Pool, name: str, scopes: tuple[Scope, ...]
) -> CreatedKey:
    """Create a key; the returned token is the only copy of its secret."""
    name = name.strip()
    if not name or len(name) > 200:
        raise KeyError_("a key needs a name of 1 to 200 characters")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise KeyError_(f"scopes must be some of {', '.join(SCOPES)}, not {list(scopes)}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    created_at = await conn.fetchval(
        INSERT_KEY_SQL, key_id, name, _digest(secret), sorted(set(scopes), key=SCOPES.index)
    )
    key = ApiKey(
        id=key_id,
        name=name,
        scopes=tuple(sorted(set(scopes), key=SCOPES.index)),
        created_at=created_at,
    )
    return CreatedKey(key=key, token=f"dfk_{key_id}_{secret}")


async def list_keys(conn: asyncpg.Connection | asyncpg.Pool) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first."""
    return [_key(r) for r in await conn.fetch(LIST_KEYS_SQL)]


async def list_keys_page(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[ApiKey]:
    """Up to ``limit`` keys after ``after`` (a key's ``(created_at, id)``), oldest first."""
    created_at, key_id = after if after is not None else (None, None)
    return [_key(r) for r in await conn.fetch(LIST_KEYS_PAGE_SQL, created_at, key_id, limit)]


async def revoke_key(conn: asyncpg.Connection | asyncpg.Pool, key_id: str) -> ApiKey:
    """Revoke a key (revoking twice keeps the first revocation's time)."""
    row = await conn.fetchrow(REVOKE_KEY_SQL, key_id)
    if row is None:
        raise KeyError_(f"no key with id {key_id!r}")
    return _key(row)


class _Stored(NamedTuple):
    key: ApiKey
    secret_hash: bytes


_NO_SECRET: Final = b"\0" * 32


class KeyRing:
    """Verifies tokens against the database, remembering what it read of each key id for
    ``ttl`` seconds, so that a busy client costs one lookup per ``ttl``; a revocation takes
    effect within ``ttl``.

    An id the database does not hold is remembered too, apart from the keys it does, so that a
    flood of bad tokens costs one lookup per made-up id and ``ttl`` (the failure limit per
    address, ``service.auth``, bounds how many ids) and never pushes the real keys out.
    """

    def __init__(self, pool: asyncpg.Pool, *, ttl: float = 5.0, size: int = 10_000) -> None:
        self._pool = pool
        self._ttl = ttl
        self._size = size
        self._known: dict[str, tuple[float, _Stored]] = {}
        self._unknown: dict[str, float] = {}

    async def verify(self, token: str, *, lookup: bool = True) -> ApiKey | None:
        """The key ``token`` belongs to, if it is genuine and not revoked; without ``lookup``,
        only from what is remembered (``None`` for a key not read lately)."""
        match = _TOKEN.match(token)
        if match is None:
            return None
        key_id, secret = match.groups()
        fresh, stored = self._recall(key_id, time.monotonic())
        if not fresh:
            if not lookup:
                return None
            stored = await self._read(key_id)
        return _genuine(stored, secret)

    def _recall(self, key_id: str, now: float) -> tuple[bool, _Stored | None]:
        """Whether what is remembered of ``key_id`` is fresh, and what it is."""
        known = self._known.get(key_id)
        if known is not None:
            return known[0] > now, known[1]
        return self._unknown.get(key_id, 0.0) > now, None

    async def _read(self, key_id: str) -> _Stored | None:
        try:
            row = await self._pool.fetchrow(LOOKUP_KEY_SQL, key_id)
        except CONNECTION_ERRORS:
            # No key can be revoked while the database is away, so what was read last still
            # holds: live streams resuming from memory keep working through an outage.
            known = self._known.get(key_id)
            if known is not None:
                return known[1]
            if key_id in self._unknown:
                return None
            raise
        until = time.monotonic() + self._ttl
        if row is None:
            if len(self._unknown) >= self._size:
                self._unknown.clear()
            self._unknown[key_id] = until
            return None
        stored = _Stored(_key(row), row["secret_hash"])
        if len(self._known) >= self._size:
            self._known.clear()
        self._known[key_id] = (until, stored)
        self._unknown.pop(key_id, None)
        return stored

    def forget(self) -> None:
        """Drop everything remembered (after a revocation through this process)."""
        self._known.clear()
        self._unknown.clear()


def _genuine(stored: _Stored | None, secret: str) -> ApiKey | None:
    # Compared even when there is no such key, so timing tells nothing about which ids exist.
    expected = stored.secret_hash if stored is not None else _NO_SECRET
    if not hmac.compare_digest(expected, _digest(secret)) or stored is None:
        return None
    return stored.key if stored.key.revoked_at is None else None
