"""The base of every domain event: a frozen, keyword-only Struct that leaves defaults out of
its JSON, at schema version 1 unless it says otherwise (``events.registry``)."""

from __future__ import annotations

from typing import ClassVar

import msgspec

__all__ = ("Event",)


class Event(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A domain event; each concrete one carries a stable dotted, versioned tag."""

    schema_version: ClassVar[int] = 1
