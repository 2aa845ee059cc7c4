"""What goes into the log and what comes out of it."""

from __future__ import annotations

import base64
import binascii
import re
import struct
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Final
from uuid import UUID, uuid4

import msgspec

from events.errors import InvalidCursorError, InvalidReadError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = (
    "ACTOR_ID_PATTERN",
    "CURSOR_LENGTH",
    "CURSOR_PATTERN",
    "START",
    "AppendResult",
    "Cursor",
    "CursorText",
    "FeedFilter",
    "FeedPage",
    "Metadata",
    "NewEvent",
    "RecordedEvent",
    "StreamSlice",
    "category_of",
    "check_actor_id",
)

_CURSOR = struct.Struct(">QQ")
CURSOR_PATTERN: Final = "^[A-Za-z0-9_-]{21}[AQgw]$"
"""Every text ``Cursor.encode`` makes, and no other: 16 bytes as unpadded base64url (22
characters, the last carrying two bits and four zeros)."""
CURSOR_LENGTH: Final = 22
CursorText = Annotated[str, msgspec.Meta(pattern=CURSOR_PATTERN, max_length=CURSOR_LENGTH)]
"""A cursor as clients see it (``Cursor.encode``), for the structs that carry one."""
# What JSON text may spell otherwise than as itself: quotes, backslashes and control
# characters (PostgreSQL writes the rest of Unicode as it is).
_ESCAPED = re.compile(r'["\\\x00-\x1f]')
# What a stream id (or its category) and an event type may hold (events.rows checks appends).
_NAME_PART = re.compile(r"[^\s\x00-\x1f\x7f]{1,200}")
_TYPE_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,200}")


class Cursor(msgspec.Struct, frozen=True, order=True, gc=False):
    """A point in the feed's total order: (transaction id, position).

    Clients see it only as an opaque string (``encode``/``decode``), so the representation can
    change without breaking them.
    """

    transaction_id: int
    position: int

    def encode(self) -> str:
        """The opaque, URL-safe form handed to clients."""
        raw = _CURSOR.pack(self.transaction_id, self.position)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def key(self) -> bytes:
        """The cursor as 16 bytes whose byte order is the feed order: how projections store
        the system-time bounds of their rows (``bytea`` compares bytewise in PostgreSQL)."""
        return _CURSOR.pack(self.transaction_id, self.position)

    @classmethod
    def from_key(cls, key: bytes) -> Cursor:
        """The cursor ``key`` returned."""
        transaction_id, position = _CURSOR.unpack(key)
        return cls(transaction_id, position)

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        """Parse a cursor from ``encode``; ``None`` or ``""`` mean the start of the feed."""
        if not text:
            return START
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            transaction_id, position = _CURSOR.unpack(raw)
        except (binascii.Error, struct.error, ValueError) as exc:
            raise InvalidCursorError(f"{text!r} is not a feed cursor issued by Diplofeed") from exc
        if cls(transaction_id, position).encode() != text:
            raise InvalidCursorError(f"{text!r} is not a feed cursor issued by Diplofeed")
        return cls(transaction_id, position)


START = Cursor(0, 0)


class Metadata(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Who recorded an event, why, and the trace it belongs to."""

    correlation_id: str | None = None
    causation_id: str | None = None
    recorded_by: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event to append. ``data`` is any JSON-encodable object (a Struct or a dict)."""

    type: str
    data: Any
    schema_version: int = 1
    event_id: UUID = msgspec.field(default_factory=uuid4)
    metadata: Metadata = Metadata()


class RecordedEvent(msgspec.Struct, frozen=True, gc=False):
    """An event as stored. ``data`` and ``metadata`` stay raw JSON text until decoded, so that
    feed readers that only forward events never pay for parsing them."""

    position: int
    transaction_id: int
    stream_id: str
    stream_version: int
    event_id: UUID
    type: str
    schema_version: int
    data: str
    metadata: str
    recorded_at: datetime
    hash: bytes

    @property
    def cursor(self) -> Cursor:
        """The feed cursor just after this event."""
        return Cursor(self.transaction_id, self.position)

    def decoded_metadata(self) -> Metadata:
        """The metadata as a Struct (unknown keys are kept out, never rejected)."""
        return msgspec.json.decode(self.metadata, type=Metadata)


class AppendResult(msgspec.Struct, frozen=True, kw_only=True):
    """Where an append landed. A replayed (idempotent) append returns the original one."""

    stream_id: str
    first_version: int
    last_version: int
    positions: list[int]
    cursor: Cursor
    replayed: bool = False


class StreamSlice(msgspec.Struct, frozen=True, kw_only=True):
    """Part of one stream, with the stream's current version and where to continue."""

    stream_id: str
    events: list[RecordedEvent]
    current_version: int
    next_version: int | None


ACTOR_ID_PATTERN: Final = r"[a-z0-9][a-z0-9_.]{0,99}"
"""What an actor id looks like (``events.domain.commands.Id``): the only values the feed's
actor filter takes, and the only strings of an event's data its index holds."""
_ACTOR_ID = re.compile(ACTOR_ID_PATTERN)


def check_actor_id(actor: str) -> None:
    """Refuse, with ``InvalidReadError``, an actor filter that cannot be an actor id."""
    if not isinstance(actor, str) or not _ACTOR_ID.fullmatch(actor):
        raise InvalidReadError(
            f"actor {actor!r} is not an actor id: 1-100 characters of a-z, 0-9, _ and ., "
            "starting with a letter or digit"
        )


class FeedFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Narrows the global feed; ``None`` fields do not filter, and the given ones combine.

    ``matches`` applies the same filter to an event in hand, so a process that fans one
    follower out to many subscribers (the HTTP live stream) filters exactly as the database.
    """

    type_prefix: str | None = None
    category: str | None = None
    categories: tuple[str, ...] | None = None
    """Several categories at once (combined with ``category`` if both are given)."""
    stream_id: str | None = None
    """One stream only."""
    actor: str | None = None
    """Events about this actor id: its own stream's, and every event whose data holds the id
    as a string value anywhere (participants, invited factions, leaders, signatories...)."""

    def __post_init__(self) -> None:
        # A value no stored event can match (a NUL, a control character) would otherwise reach
        # the database, which refuses some of them: in a live stream's follower, not the request.
        if self.type_prefix is not None and not _TYPE_PREFIX.fullmatch(self.type_prefix):
            raise InvalidReadError(
                f"type {self.type_prefix!r} cannot begin an event type: 1-200 characters of "
                "A-Z, a-z, 0-9, _, ., : and -"
            )
        for name, value in (
            ("category", self.category),
            *(("category", c) for c in self.categories or ()),
            ("stream", self.stream_id),
        ):
            if value is not None and not _NAME_PART.fullmatch(value):
                raise InvalidReadError(
                    f"{name} {value!r} cannot name a stream: 1-200 characters, no blanks or "
                    "control characters"
                )

    @classmethod
    def of(
        cls,
        *,
        type_prefix: str | None = None,
        categories: Sequence[str] | None = None,
        actor: str | None = None,
        stream_id: str | None = None,
    ) -> FeedFilter | None:
        """The filter these options ask for (empty ones ignored), or ``None`` for the whole
        feed: how the HTTP API and the command line build theirs."""
        if not (type_prefix or categories or actor or stream_id):
            return None
        return cls(
            type_prefix=type_prefix or None,
            categories=tuple(categories) if categories else None,
            actor=actor or None,
            stream_id=stream_id or None,
        )

    def category_list(self) -> list[str] | None:
        """Every category asked for, or ``None`` for all."""
        wanted = [*(self.categories or ()), *([self.category] if self.category else [])]
        return wanted or None

    def matches(self, event: RecordedEvent) -> bool:
        """Whether the feed read with this filter includes ``event``."""
        if self.type_prefix is not None and not event.type.startswith(self.type_prefix):
            return False
        categories = self.category_list()
        if categories is not None and category_of(event.stream_id) not in categories:
            return False
        if self.stream_id is not None and event.stream_id != self.stream_id:
            return False
        if self.actor is None or event.stream_id == f"actor-{self.actor}":
            return True
        # Cheap test first: the id must appear in the text for any value to equal it, unless
        # it holds characters that JSON text escapes.
        if self.actor not in event.data and not _ESCAPED.search(self.actor):
            return False
        return _holds_string(msgspec.json.decode(event.data), self.actor)


def _holds_string(value: Any, wanted: str) -> bool:
    """Whether ``wanted`` is a string value anywhere in ``value`` (jsonpath ``$.**``)."""
    if isinstance(value, str):
        return value == wanted
    if isinstance(value, dict):
        return any(_holds_string(v, wanted) for v in value.values())
    if isinstance(value, list):
        return any(_holds_string(v, wanted) for v in value)
    return False


class FeedPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of the global feed and the cursor to continue from.

    ``full`` is true when the page hit its limit, so more events may follow at once; a page
    that is not full reached the visible end of the feed.
    """

    events: list[RecordedEvent]
    next_cursor: Cursor
    full: bool


def category_of(stream_id: str) -> str:
    """A stream's category: the part before its first ``-`` (``meeting-m24`` -> ``meeting``)."""
    return stream_id.split("-", 1)[0]
