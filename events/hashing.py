"""Canonical bytes and the per-stream hash chain.

Each event's hash is ``sha256(previous hash || version || recorded_at || digest)``, where the
previous hash is that of the stream's preceding event (32 zero bytes for the first) and the
digest covers the event's own canonical bytes. The database computes the chain step inside the
append statement (it alone knows the previous hash and the commit clock without another round
trip); Python computes the digest, and ``verify`` recomputes both from the stored rows.

jsonb does not keep the text it was given, so the digest is taken over a canonical JSON form
that survives the round trip: keys sorted, and the few numbers jsonb rewrites (floats written
with an exponent come back as integers, ``-0.0`` as ``0.0``) normalised the same way on both
sides. No library offers "JSON canonical the way jsonb sees it", hence this module.
"""

from __future__ import annotations

import hashlib
import re
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

__all__ = (
    "GENESIS_HASH",
    "canonical_json",
    "chain_hash",
    "content_digest",
    "encode_canonical",
    "epoch_micros",
)

GENESIS_HASH = bytes(32)

_encoder = msgspec.json.Encoder(order="sorted")
_int8 = struct.Struct(">q")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# A float that jsonb would rewrite: an exponent, or a negative zero. Strings that merely look
# like this only cost a slower normalisation, never a wrong result.
_REWRITTEN_NUMBER = re.compile(rb"[0-9][eE]|-0\.0")


def _normalise(value: Any) -> Any:
    if isinstance(value, float):
        if value == 0.0:
            return 0.0
        if "e" in repr(value) and abs(value) >= 1.0:
            return int(value)
        return value
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def canonical_json(encoded: bytes | str) -> bytes:
    """The canonical form of a JSON document, identical before and after a jsonb round trip."""
    raw = encoded.encode() if isinstance(encoded, str) else encoded
    value = msgspec.json.decode(raw)
    if _REWRITTEN_NUMBER.search(raw):
        value = _normalise(value)
    return _encoder.encode(value)


def encode_canonical(value: Any) -> bytes:
    """Encode any msgspec-encodable value (a Struct, a dict...) in canonical form."""
    # Encoding and decoding once first turns Structs, UUIDs, datetimes and non-string keys into
    # plain JSON, whose sorted form is what a reader of the stored jsonb will reproduce.
    return canonical_json(_encoder.encode(value))


def content_digest(
    *, stream_id: str, event_id: str, type: str, schema_version: int, data: bytes, metadata: bytes
) -> bytes:
    """The digest of an event's own content (``data``/``metadata`` already canonical)."""
    header = _encoder.encode([stream_id, event_id, type, schema_version])
    return hashlib.sha256(b"\n".join((header, data, metadata))).digest()


def epoch_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch, exactly as the append statement computes them."""
    return (moment - _EPOCH) // _MICROSECOND


def chain_hash(previous: bytes, version: int, recorded_micros: int, digest: bytes) -> bytes:
    """One step of the chain; mirrors the SQL in ``events.store.APPEND_SQL``."""
    return hashlib.sha256(
        previous + _int8.pack(version) + _int8.pack(recorded_micros) + digest
    ).digest()
