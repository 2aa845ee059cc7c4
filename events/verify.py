"""Recompute every stream's hash chain and find the first broken link of each stream.

Reads in keyset pages ordered by (stream, version), so memory stays flat and no transaction
stays open long enough to hold anything back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from events.hashing import GENESIS_HASH, canonical_json, chain_hash, content_digest

if TYPE_CHECKING:
    import asyncpg

__all__ = ("BrokenLink", "VerifyReport", "verify_chains")

VERIFY_PAGE_SQL: Final = """
SELECT stream_id, stream_version, event_id, type, schema_version, data::text, metadata::text,
       hash
FROM events
WHERE (stream_id, stream_version) > ($1, $2)
ORDER BY stream_id, stream_version
LIMIT $3
"""


class BrokenLink(msgspec.Struct, frozen=True, kw_only=True):
    """Where a stream's chain stops matching what is stored."""

    stream_id: str
    stream_version: int
    expected_hash: str
    found_hash: str
    reason: str


class VerifyReport(msgspec.Struct, kw_only=True):
    """What ``verify_chains`` checked and found."""

    streams: int = 0
    events: int = 0
    broken: list[BrokenLink] = msgspec.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every chain is intact."""
        return not self.broken


async def verify_chains(
    conn: asyncpg.Connection | asyncpg.Pool, *, page: int = 5_000
) -> VerifyReport:
    """Verify every stream; report the first broken link of each broken stream."""
    report = VerifyReport()
    stream, version = "", 0
    current: str | None = None
    previous = GENESIS_HASH
    next_version = 1
    broken_stream: str | None = None
    while True:
        rows = await conn.fetch(VERIFY_PAGE_SQL, stream, version, page)
        if not rows:
            return report
        for row in rows:
            stream_id: str = row["stream_id"]
            number: int = row["stream_version"]
            if stream_id != current:
                current, previous, next_version = stream_id, GENESIS_HASH, 1
                report.streams += 1
            report.events += 1
            found: bytes = row["hash"]
            if broken_stream == stream_id:
                continue
            digest = content_digest(
                stream_id=stream_id,
                event_id=row["event_id"],
                type=row["type"],
                schema_version=row["schema_version"],
                data=canonical_json(row["data"]),
                metadata=canonical_json(row["metadata"]),
            )
            expected = chain_hash(previous, number, digest)
            reason = ""
            if number != next_version:
                reason = f"version {next_version} is missing"
            elif expected != found:
                reason = "stored hash does not match the recomputed one"
            if reason:
                broken_stream = stream_id
                report.broken.append(
                    BrokenLink(
                        stream_id=stream_id,
                        stream_version=number,
                        expected_hash=expected.hex(),
                        found_hash=found.hex(),
                        reason=reason,
                    )
                )
            previous, next_version = found, number + 1
        last = rows[-1]
        stream, version = last["stream_id"], last["stream_version"]
