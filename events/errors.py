"""Typed errors of the event log. Every one carries what a caller needs to act on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from events.expected import describe_expected

if TYPE_CHECKING:
    from uuid import UUID

__all__ = (
    "EventDecodeError",
    "EventStoreError",
    "IdempotencyError",
    "InvalidAppendError",
    "InvalidCursorError",
    "InvalidReadError",
    "MigrationError",
    "TransactionOrderError",
    "UnknownEventTypeError",
    "UpcastError",
    "WrongExpectedVersionError",
)


class EventStoreError(Exception):
    """Base class of every error raised by the ``events`` package."""


class InvalidAppendError(EventStoreError, ValueError):
    """The append request itself is malformed (bad stream id, duplicate ids, no events...)."""


class WrongExpectedVersionError(EventStoreError):
    """The stream is not at the version the caller expected; nothing was appended."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, expected {describe_expected(expected)}"
        )


class TransactionOrderError(EventStoreError):
    """Appending in this transaction would put a stream's new version before its last one in
    the feed: the stream's last writer took its transaction id after the caller's transaction
    did. Nothing was appended; retry the whole transaction."""

    def __init__(self, stream_id: str, version: int) -> None:
        self.stream_id = stream_id
        self.version = version
        super().__init__(
            f"stream {stream_id!r} version {version} was written by a transaction younger than "
            "this one; retry in a new transaction"
        )


class IdempotencyError(EventStoreError):
    """An event id was appended before with different content (or only part of a batch was)."""

    def __init__(self, event_id: UUID, reason: str) -> None:
        self.event_id = event_id
        self.reason = reason
        super().__init__(f"event {event_id} was already appended {reason}")


class InvalidReadError(EventStoreError, ValueError):
    """A read with arguments out of range (a limit too large, a bad stream id...)."""


class InvalidCursorError(EventStoreError, ValueError):
    """A feed cursor that this store did not issue."""


class UnknownEventTypeError(EventStoreError, LookupError):
    """A stored event whose (type, schema version) no registered type or upcaster covers."""


class EventDecodeError(EventStoreError):
    """A stored event's data does not fit its type's Struct."""


class UpcastError(EventDecodeError):
    """An upcaster failed, or its result does not fit the current event type."""


class MigrationError(EventStoreError):
    """The database schema cannot be brought to the shipped migrations."""
