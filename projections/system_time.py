"""System time: every projection row carries the feed-cursor range during which it was current.

A projection never updates a row in place. When an event changes what a row says, the row's
range is closed at that event's cursor (``sys_to``) and its successor opens there
(``sys_from``); the live view is the rows whose range is still open. A view "as of" a cursor
``c`` is then the rows with ``sys_from <= c < sys_to`` (an open ``sys_to`` is infinity), read
through the same indexes as the live view: the SQL:2011 system-versioned table, XTDB's or
Datomic's as-of, with the feed cursor as the clock. Valid time (EDTF, when the interaction
happened) is a separate axis, so the views are bitemporal.

Bounds are ``Cursor.key()``: 16 bytes whose byte order is the feed order, stored as ``bytea``
(PostgreSQL compares it bytewise), one column for a pair that would otherwise be two.

The versions a row goes through depend only on the events, never on how they were batched:
a projection opens one version per event that changes the item (never one per batch), so a
rebuild equals the incrementally built tables row for row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from events.records import Cursor

__all__ = (
    "SYS_COLUMNS",
    "current_at",
    "is_live",
    "key_of",
)

SYS_COLUMNS: Final = "sys_from bytea NOT NULL, sys_to bytea"
"""The two columns every system-versioned table declares (``sys_to`` NULL: still current)."""


def current_at(param: int, alias: str = "") -> str:
    """The SQL condition "this row was current at the cursor key in ``$param``".

    ``alias`` is the table's alias (``"l"`` gives ``l.sys_from``)."""
    column = f"{alias}." if alias else ""
    return (
        f"({column}sys_from <= ${param} AND ({column}sys_to IS NULL OR {column}sys_to > ${param}))"
    )


def is_live(alias: str = "") -> str:
    """The SQL condition "this row is current now"."""
    column = f"{alias}." if alias else ""
    return f"{column}sys_to IS NULL"


def key_of(cursor: Cursor) -> bytes:
    """The stored form of a range bound."""
    return cursor.key()
