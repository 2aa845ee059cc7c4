"""Stored events as CloudEvents 1.0 (JSON format), the feed's wire form.

The hot path encodes a msgspec Struct with the specification's attribute names and splices the
stored JSON in as ``data`` without parsing it; the ``cloudevents`` SDK validates this output in
the contract tests (its own encoder parses and re-encodes every event, and has no batch form).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import TYPE_CHECKING, Final

import msgspec

from events.records import CursorText

if TYPE_CHECKING:
    from collections.abc import Sequence

    from events.records import RecordedEvent

__all__ = (
    "BATCH_MEDIA_TYPE",
    "MEDIA_TYPE",
    "CloudEvent",
    "encode_batch",
    "encode_event",
    "encode_shared",
    "to_cloudevent",
)

MEDIA_TYPE: Final = "application/cloudevents+json"
BATCH_MEDIA_TYPE: Final = "application/cloudevents-batch+json"


class CloudEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One event of the feed. Extension attributes (lowercase, per the specification) carry
    where it sits in the log and who recorded it."""

    specversion: str
    id: str
    """The event's UUID: unique for ever, so consumers deduplicate on it."""
    source: str
    """The stream, as a URI: ``<api>/streams/<stream id>``."""
    type: str
    """The event's stable, versioned type tag (``meeting.scheduled.v1``)."""
    subject: str
    """The stream id (``meeting-moscow_2024``)."""
    time: datetime
    """When the log recorded it (the database's clock)."""
    datacontenttype: str
    data: msgspec.Raw
    position: int
    """Global position (unique; not the feed's order, see ``cursor``)."""
    streamversion: int
    schemaversion: int
    cursor: CursorText
    """Opaque feed cursor just after this event: resume with ``?after=`` or ``Last-Event-ID``."""
    eventhash: str
    """This event's link in its stream's hash chain (hex SHA-256)."""
    traceparent: str | None = None
    tracestate: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    recordedby: str | None = None


class _Meta(msgspec.Struct, frozen=True, kw_only=True):
    correlation_id: str | None = None
    causation_id: str | None = None
    recorded_by: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None


_META = msgspec.json.Decoder(_Meta)
_ENCODER = msgspec.json.Encoder()


def to_cloudevent(event: RecordedEvent, base_url: str) -> CloudEvent:
    """``event`` as a CloudEvent whose ``source`` lives under ``base_url``."""
    meta = _META.decode(event.metadata)
    return CloudEvent(
        specversion="1.0",
        id=str(event.event_id),
        source=f"{base_url.rstrip('/')}/streams/{event.stream_id}",
        type=event.type,
        subject=event.stream_id,
        time=event.recorded_at,
        datacontenttype="application/json",
        data=msgspec.Raw(event.data.encode()),
        position=event.position,
        streamversion=event.stream_version,
        schemaversion=event.schema_version,
        cursor=event.cursor.encode(),
        eventhash=event.hash.hex(),
        traceparent=meta.traceparent,
        tracestate=meta.tracestate,
        correlationid=meta.correlation_id,
        causationid=meta.causation_id,
        recordedby=meta.recorded_by,
    )


def encode_event(event: RecordedEvent, base_url: str) -> bytes:
    """One event in structured mode (``application/cloudevents+json``)."""
    return _ENCODER.encode(to_cloudevent(event, base_url))


@functools.lru_cache(maxsize=4096)
def encode_shared(event: RecordedEvent, base_url: str) -> str:
    """``encode_event`` as text, remembered for the recent events: the live stream sends each
    event to every subscriber, and encoding it once serves them all."""
    return encode_event(event, base_url).decode()


def encode_batch(events: Sequence[RecordedEvent], base_url: str) -> bytes:
    """A page of events in batch mode (``application/cloudevents-batch+json``)."""
    return _ENCODER.encode([to_cloudevent(e, base_url) for e in events])
