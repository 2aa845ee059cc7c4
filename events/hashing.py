"""Canonical bytes and the per-stream hash chain.

Each event's hash is ``sha256(previous hash || version || digest)``, where the previous hash is
that of the stream's preceding event (32 zero bytes for the first) and the digest covers the
event's own canonical bytes: stream, event id, type, schema version, data and metadata. The
store computes it before inserting; ``verify`` recomputes it from the stored rows.
``recorded_at`` is the database's clock at insert and is deliberately outside the chain: the
store would otherwise need the server's time before the INSERT, costing a round trip per append.

jsonb does not keep the text it was given, so the digest is taken over a canonical JSON form
that survives the round trip: keys sorted, and the few numbers jsonb rewrites (floats written
with an exponent come back as integers, ``-0.0`` as ``0.0``) normalised the same way on both
sides. No library offers "JSON canonical the way jsonb sees it", hence this module.
"""

from __future__ import annotations

import hashlib
import math
import struct
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from uuid import UUID

__all__ = (
    "GENESIS_HASH",
    "canonical_json",
    "chain_hash",
    "content_digest",
    "digest_of_parts",
    "encode_canonical",
    "field_part",
)

GENESIS_HASH = bytes(32)

_encoder = msgspec.json.Encoder(order="sorted")
_int8 = struct.Struct(">q")
_sha256 = hashlib.sha256


def _as_jsonb_reads(text: str) -> float | int:
    """The number jsonb will give back for a JSON float literal.

    jsonb stores numbers as exact decimals with scale ``max(0, fraction digits - exponent)``:
    ``1e20`` and ``1.5e3`` come back as the integers ``100000000000000000000`` and ``1500``
    (from the written digits, not from the float's binary value), ``-0.0`` as ``0.0``, and
    anything with a fraction as the same float.
    """
    if "e" not in text and "E" not in text:
        # Most floats: no exponent, a fraction, well inside the range where jsonb and msgspec
        # agree. Taken first because this hook runs for every float of every appended event.
        value = float(text)
        if value != 0.0 and -1e16 < value < 1e16:
            return value
    mantissa, _, exponent = text.lower().partition("e")
    if exponent:
        fraction = len(mantissa.partition(".")[2])
        if fraction - int(exponent) <= 0:
            return int(Decimal(text))
    value = float(text)
    if value == 0.0:
        return 0.0
    if abs(value) >= 1e16 and math.isfinite(value):
        # Written without an exponent (``100000000000000000000.0``), but msgspec re-encodes it
        # as ``1e20``, which jsonb then reads as an integer: read it as that integer already.
        return int(Decimal(msgspec.json.encode(value).decode()))
    return value


_decoder = msgspec.json.Decoder(float_hook=_as_jsonb_reads)


def canonical_json(encoded: bytes | str) -> bytes:
    """The canonical form of a JSON document, identical before and after a jsonb round trip."""
    return _encoder.encode(_decoder.decode(encoded))


def encode_canonical(value: Any) -> bytes:
    """Encode any msgspec-encodable value (a Struct, a dict...) in canonical form.

    ``msgspec.Raw`` values nested inside ``value`` are written as they are: they must hold
    canonical JSON already (what this module produces), or ``verify`` will not vouch for the
    event. A ``Raw`` given as the whole value is canonicalised like any JSON text.
    """
    encoded = _encoder.encode(value)
    if type(value) is not msgspec.Raw and _no_rewritten_numbers(encoded):
        # msgspec's sorted encoding is already canonical unless it holds a number jsonb
        # gives back otherwise; this path skips a decode and an encode on most appends.
        return encoded
    return canonical_json(encoded)


_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)


def _no_rewritten_numbers(encoded: bytes) -> bool:
    """Whether ``encoded`` (msgspec output) holds no float that jsonb rewrites: no exponent
    (msgspec writes one as a digit then ``e``) and no negative zero. Strings that happen to
    hold such text only send the value down the longer, equally correct path."""
    return b"-0.0" not in encoded and b"0e" not in encoded.translate(_DIGITS_AS_ZERO)


def content_digest(
    *, stream_id: str, event_id: UUID, type: str, schema_version: int, data: bytes, metadata: bytes
) -> bytes:
    """The digest of an event's own content (``data``/``metadata`` already canonical).

    Stream ids and types never hold control characters (the store refuses them), so NUL and
    newline separate the fields unambiguously.
    """
    return digest_of_parts(
        stream_part=field_part(stream_id),
        event_id=event_id,
        type_part=field_part(type),
        schema_version=schema_version,
        data=data,
        metadata=metadata,
    )


def field_part(text: str) -> bytes:
    """A stream id or type as it enters ``digest_of_parts`` (the same for a whole batch)."""
    return text.encode() + b"\0"


def digest_of_parts(
    *,
    stream_part: bytes,
    event_id: UUID,
    type_part: bytes,
    schema_version: int,
    data: bytes,
    metadata: bytes,
) -> bytes:
    """``content_digest`` with the stream id and type already through ``field_part``: an
    append encodes those once per batch, not once per event."""
    # One join and one hash call: this runs for every appended event.
    return _sha256(
        b"".join(
            (
                stream_part,
                event_id.bytes,
                type_part,
                _int8.pack(schema_version),
                data,
                b"\n",
                metadata,
            )
        )
    ).digest()


def chain_hash(previous: bytes, version: int, digest: bytes) -> bytes:
    """One link of a stream's chain: the previous event's hash, this version, this content."""
    return _sha256(previous + _int8.pack(version) + digest).digest()
