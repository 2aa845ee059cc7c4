"""What an append writes: events validated, put in canonical form, digested and chained into
rows, and the rows of several appends laid out as the columns of one INSERT."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final
from uuid import UUID

import msgspec

from events.errors import EventStoreError, InvalidAppendError
from events.expected import ANY, STREAM_EXISTS
from events.hashing import (
    GENESIS_HASH,
    canonical_json,
    chain_hash,
    digest_of_parts,
    encode_canonical,
    field_part,
)
from events.records import AppendResult, Cursor, Metadata

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg

    from events.records import NewEvent, RecordedEvent

__all__ = (
    "EMPTY_HEAD",
    "MAX_BATCH",
    "AppendRequest",
    "PendingAppend",
    "PreparedEvent",
    "StreamHead",
    "append_result",
    "check_stream_id",
    "expectation_holds",
    "extend_chain",
    "insert_rows",
    "prepare",
    "same_content",
)

MAX_BATCH: Final = 1_000
"""Most events one append may carry."""

_STREAM_ID = re.compile(r"^[^\s\x00-\x1f\x7f]{1,200}$")
_EVENT_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,199}$")


def check_stream_id(stream_id: str, error: type[EventStoreError] = InvalidAppendError) -> None:
    """Refuse a malformed stream id with ``error`` (an append's or a read's)."""
    if not isinstance(stream_id, str) or not _STREAM_ID.match(stream_id):
        raise error(
            f"stream id {stream_id!r} must be 1-200 characters without spaces or control characters"
        )


class PreparedEvent(msgspec.Struct, frozen=True):
    event_id: UUID
    type: str
    schema_version: int
    data: str
    metadata: str
    digest: bytes


class StreamHead(msgspec.Struct, frozen=True, gc=False):
    """A stream's last committed version and hash."""

    version: int
    hash: bytes


EMPTY_HEAD = StreamHead(0, GENESIS_HASH)


def expectation_holds(expected: int, version: int) -> bool:
    if expected == ANY:
        return True
    if expected == STREAM_EXISTS:
        return version > 0
    return version == expected


_known_types: set[str] = set()


def check_type(event_type: str) -> None:
    if event_type in _known_types:
        return
    if not isinstance(event_type, str) or not _EVENT_TYPE.match(event_type):
        raise InvalidAppendError(
            f"event type {event_type!r} must start with a letter and hold only letters, "
            "digits and . _ : -"
        )
    if len(_known_types) < 10_000:
        _known_types.add(event_type)


def prepare(stream_id: str, events: Sequence[NewEvent]) -> list[PreparedEvent]:
    if not events:
        raise InvalidAppendError("an append needs at least one event")
    if len(events) > MAX_BATCH:
        raise InvalidAppendError(f"an append carries at most {MAX_BATCH} events, not {len(events)}")
    # This loop runs for every appended event and is most of the client's cost of an append:
    # what is the same for the whole batch (stream, usually the type and the metadata object)
    # is encoded once.
    prepared: list[PreparedEvent] = []
    seen: set[UUID] = set()
    stream_part = field_part(stream_id)
    last_type: str | None = None
    type_part = b""
    last_metadata: Metadata | None = None
    metadata = b""
    metadata_text = ""
    for event in events:
        event_id = event.event_id
        schema_version = event.schema_version
        if event.type != last_type:
            check_type(event.type)
            last_type = event.type
            type_part = field_part(last_type)
        if schema_version < 1:
            raise InvalidAppendError(f"schema version must be >= 1, not {schema_version}")
        if event_id in seen:
            raise InvalidAppendError(f"event id {event_id} appears twice in one append")
        seen.add(event_id)
        try:
            data = encode_canonical(event.data)
        except (TypeError, msgspec.EncodeError) as exc:
            raise InvalidAppendError(f"event {event_id} data is not JSON: {exc}") from exc
        if not data.startswith(b"{"):
            raise InvalidAppendError(f"event {event_id} data must be a JSON object")
        if b"\\u0000" in data:
            raise InvalidAppendError(f"event {event_id} data holds a NUL character")
        if event.metadata is not last_metadata:
            last_metadata = event.metadata
            metadata = encode_canonical(last_metadata)
            if b"\\u0000" in metadata:
                raise InvalidAppendError(f"event {event_id} metadata holds a NUL character")
            metadata_text = metadata.decode()
        digest = digest_of_parts(
            stream_part=stream_part,
            event_id=event_id,
            type_part=type_part,
            schema_version=schema_version,
            data=data,
            metadata=metadata,
        )
        prepared.append(
            PreparedEvent(event_id, last_type, schema_version, data.decode(), metadata_text, digest)
        )
    return prepared


def extend_chain(head: StreamHead, prepared: list[PreparedEvent]) -> tuple[list[int], list[bytes]]:
    """The versions and hashes of ``prepared`` after ``head``."""
    previous, version = head.hash, head.version
    versions = list(range(version + 1, version + len(prepared) + 1))
    hashes: list[bytes] = []
    for event, number in zip(prepared, versions, strict=True):
        previous = chain_hash(previous, number, event.digest)
        hashes.append(previous)
    return versions, hashes


class AppendRequest(msgspec.Struct, gc=False):
    """One append call, as handed to group commit."""

    stream_id: str
    prepared: list[PreparedEvent]
    expected: int


class PendingAppend(msgspec.Struct, gc=False):
    """One append's rows, ready to insert (alone or together with others)."""

    stream_id: str
    prepared: list[PreparedEvent]
    versions: list[int]
    hashes: list[bytes]


class _Row(msgspec.Struct, array_like=True, gc=False):
    """One event as an element of ``insert_rows``: a JSON array, read by position in SQL."""

    stream_id: str
    version: int
    event_id: UUID
    type: str
    schema_version: int
    data: msgspec.Raw
    metadata: msgspec.Raw
    hash: bytes


_rows_encoder = msgspec.json.Encoder()


def insert_rows(batch: Sequence[PendingAppend]) -> str:
    """The rows of ``batch`` as one JSON array, the parameter of ``APPEND_SQL``.

    One text parameter encoded by msgspec in one call costs the client far less than eight
    arrays encoded element by element by asyncpg, and costs the server no more: it parses the
    same JSON either way. ``data`` and ``metadata`` go in as the canonical bytes the digest was
    taken over, unchanged (``msgspec.Raw``); the hash goes as base64.
    """
    return _rows_encoder.encode(
        [
            _Row(
                pending.stream_id,
                version,
                p.event_id,
                p.type,
                p.schema_version,
                msgspec.Raw(p.data),
                msgspec.Raw(p.metadata),
                hash,
            )
            for pending in batch
            for p, version, hash in zip(
                pending.prepared, pending.versions, pending.hashes, strict=True
            )
        ]
    ).decode()


def append_result(pending: PendingAppend, rows: Sequence[asyncpg.Record]) -> AppendResult:
    """The result of ``pending`` from its rows as ``APPEND_SQL`` returned them (any order)."""
    last_version = pending.versions[-1]
    last = next(r for r in rows if r["stream_version"] == last_version)
    return AppendResult(
        stream_id=pending.stream_id,
        first_version=pending.versions[0],
        last_version=last_version,
        positions=sorted([r["position"] for r in rows]),
        cursor=Cursor(last["transaction_id"], last["position"]),
    )


def same_content(stream_id: str, new: PreparedEvent, stored: RecordedEvent) -> bool:
    # Metadata (trace context, request ids) legitimately differs between a request and its
    # retry, so it is not part of what "the same event" means.
    return (
        stored.stream_id == stream_id
        and stored.type == new.type
        and stored.schema_version == new.schema_version
        and canonical_json(stored.data) == new.data.encode()
    )
