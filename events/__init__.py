"""Diplofeed's event log: event types, the append-only PostgreSQL store, and reading it back.

This package imports nothing from ``projections`` or ``service``.
"""

from events.connect import APP_ROLE, ConnectionOptions, connect, create_pool
from events.errors import (
    EventDecodeError,
    EventStoreError,
    IdempotencyError,
    InvalidAppendError,
    InvalidCursorError,
    InvalidReadError,
    MigrationError,
    TransactionOrderError,
    UnknownEventTypeError,
    UpcastError,
    WrongExpectedVersionError,
)
from events.expected import ANY, NO_STREAM, STREAM_EXISTS
from events.horizon import HorizonLag, horizon_lag
from events.migrate import migrate
from events.notify import FeedListener, Notifier
from events.records import (
    START,
    AppendResult,
    Cursor,
    FeedFilter,
    FeedPage,
    Metadata,
    NewEvent,
    RecordedEvent,
    StreamSlice,
    category_of,
)
from events.registry import EventRegistry
from events.store import EventStore
from events.verify import VerifyReport, verify_chains

__all__ = (
    "ANY",
    "APP_ROLE",
    "NO_STREAM",
    "START",
    "STREAM_EXISTS",
    "AppendResult",
    "ConnectionOptions",
    "Cursor",
    "EventDecodeError",
    "EventRegistry",
    "EventStore",
    "EventStoreError",
    "FeedFilter",
    "FeedListener",
    "FeedPage",
    "HorizonLag",
    "IdempotencyError",
    "InvalidAppendError",
    "InvalidCursorError",
    "InvalidReadError",
    "Metadata",
    "MigrationError",
    "NewEvent",
    "Notifier",
    "RecordedEvent",
    "StreamSlice",
    "TransactionOrderError",
    "UnknownEventTypeError",
    "UpcastError",
    "VerifyReport",
    "WrongExpectedVersionError",
    "category_of",
    "connect",
    "create_pool",
    "horizon_lag",
    "migrate",
    "verify_chains",
)
