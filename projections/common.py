"""What every projection shares: table names and the first version of each stream in a batch."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from events.records import RecordedEvent

__all__ = ("first_versions", "table_names")

_PREFIX: Final = re.compile(r"[a-z0-9_]*")


def table_names(prefix: str, version: int, tables: Mapping[str, str]) -> dict[str, str]:
    """Each of a projection's tables (``{"links": "interaction_actors"}``) named for this
    prefix and version (``<prefix>interaction_actors_v<version>``).

    Raises:
        ValueError: The prefix is not a safe SQL identifier part (it is spliced into SQL).
    """
    if _PREFIX.fullmatch(prefix) is None:
        raise ValueError(f"table prefix {prefix!r} may hold only a-z, 0-9 and _")
    return {key: f"{prefix}{name}_v{version}" for key, name in tables.items()}


def first_versions(events: Iterable[RecordedEvent]) -> dict[str, int]:
    """The first stream version of each stream in ``events``: a stream whose first version in a
    batch is above 1 began in an earlier batch, and only such a stream has stored state."""
    first: dict[str, int] = {}
    for event in events:
        first.setdefault(event.stream_id, event.stream_version)
    return first
