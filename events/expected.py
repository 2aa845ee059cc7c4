"""Expected versions for optimistic concurrency.

Stream versions count from 1; a stream that does not exist is at version 0. An expected version
is an ``int``: ``N >= 0`` means "exactly N" (so ``NO_STREAM`` is just exact 0), and two negative
sentinels relax the check. Plain ints keep the value trivially serialisable (``If-Match``
headers, command payloads) and usable as a single SQL parameter.
"""

from __future__ import annotations

from typing import Final

__all__ = ("ANY", "NO_STREAM", "STREAM_EXISTS", "describe_expected", "validate_expected")

ANY: Final = -1
"""Append whatever the stream's version."""
STREAM_EXISTS: Final = -2
"""Append only to a stream that has at least one event."""
NO_STREAM: Final = 0
"""Append only if the stream has no event yet."""


def describe_expected(expected: int) -> str:
    """A phrase for error messages."""
    if expected == ANY:
        return "any version"
    if expected == STREAM_EXISTS:
        return "an existing stream"
    if expected == NO_STREAM:
        return "no stream (version 0)"
    return f"version {expected}"


def validate_expected(expected: int) -> int:
    """Return ``expected`` if it is a valid expected version, else raise ``ValueError``."""
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < STREAM_EXISTS:
        raise ValueError(
            f"expected version must be ANY (-1), STREAM_EXISTS (-2) or a version >= 0, "
            f"not {expected!r}"
        )
    return expected
