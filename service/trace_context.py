"""W3C Trace Context: the ``traceparent`` and ``tracestate`` headers of a request, parsed as
the specification (https://www.w3.org/TR/trace-context/) says, so that what events record
about their trace is a well-formed trace reference, never whatever text a client sent.

A receiver that cannot parse ``traceparent`` ignores it and starts a new trace; it then ignores
``tracestate`` too. A ``tracestate`` that does not parse is discarded whole; one longer than
the 512 characters a vendor must pass on is cut by whole list members, the specification's way.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ("MAX_TRACESTATE_CHARS", "parse_traceparent", "parse_tracestate")

_TRACEPARENT: Final = re.compile(
    r"(?P<version>[0-9a-f]{2})-(?P<trace_id>[0-9a-f]{32})-(?P<parent_id>[0-9a-f]{16})"
    r"-(?P<flags>[0-9a-f]{2})(?P<rest>-.*)?",
    re.DOTALL,
)
_KEY_CHARS: Final = r"[a-z0-9_\-*/]"
_MEMBER: Final = re.compile(
    rf"(?:[a-z]{_KEY_CHARS}{{0,255}}|[a-z0-9]{_KEY_CHARS}{{0,240}}@[a-z]{_KEY_CHARS}{{0,13}})"
    r"=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
)
_MAX_MEMBERS: Final = 32
MAX_TRACESTATE_CHARS: Final = 512
"""The longest ``tracestate`` recorded (what the specification asks vendors to propagate)."""
_LONG_MEMBER: Final = 128


def parse_traceparent(value: str | None) -> str | None:
    """``traceparent`` in its version-00 form (``00-<trace id>-<parent id>-<flags>``, 55
    characters), or ``None`` when it is absent or cannot be parsed."""
    if value is None:
        return None
    match = _TRACEPARENT.fullmatch(value.strip(" \t"))
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.group(
        "version", "trace_id", "parent_id", "flags", "rest"
    )
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    if version != "00":
        # A later version: keep what version 00 defines, the sampled flag among the flags.
        flags = "01" if int(flags, 16) & 1 else "00"
    return f"00-{trace_id}-{parent_id}-{flags}"


def parse_tracestate(value: str | None, traceparent: str | None) -> str | None:
    """``tracestate`` normalised (no blanks around members), cut to at most
    ``MAX_TRACESTATE_CHARS``; ``None`` without a valid ``traceparent``, or when a member is
    malformed, a key repeats or there are more than 32 members."""
    if value is None or traceparent is None:
        return None
    members = [m.strip(" \t") for m in value.split(",")]
    members = [m for m in members if m]
    if not members or len(members) > _MAX_MEMBERS:
        return None
    if not all(_MEMBER.fullmatch(m) for m in members):
        return None
    if len({m.split("=", 1)[0] for m in members}) != len(members):
        return None
    if len(",".join(members)) > MAX_TRACESTATE_CHARS:
        # The specification's order: members longer than 128 characters first, then from the
        # end of the list.
        members = [m for m in members if len(m) <= _LONG_MEMBER]
        while len(",".join(members)) > MAX_TRACESTATE_CHARS:
            members.pop()
    return ",".join(members) or None
