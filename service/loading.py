"""``diplofeed load``: record JSON lines of commands (the seed file's format) through the
command handler, line by line, so memory does not grow with the file."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from events.domain.commands import COMMAND_DECODER
from events.domain.errors import DomainError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from events.domain.handler import CommandHandler
    from events.records import Metadata

__all__ = ("LoadError", "LoadReport", "load_commands")


class LoadError(ValueError):
    """A line that is not a command the rules accept; names the line."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line


class LoadReport(msgspec.Struct, kw_only=True):
    """What a load did."""

    commands: int = 0
    recorded: int = 0
    already_recorded: int = 0
    nothing_to_record: int = 0
    refused: list[str] = msgspec.field(default_factory=list)
    events: int = 0


async def load_commands(
    handler: CommandHandler,
    lines: Iterable[str],
    *,
    metadata: Metadata | None = None,
    keep_going: bool = False,
    on_line: Callable[[], None] | None = None,
) -> LoadReport:
    """Record every command in ``lines`` (blank lines and ``#`` comments are skipped).

    Raises:
        LoadError: a line that does not decode or that the rules refuse (unless
            ``keep_going``, which records the refusal in the report and goes on).
    """
    report = LoadReport()
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if on_line is not None:
            on_line()
        if not text or text.startswith("#"):
            continue
        try:
            command = COMMAND_DECODER.decode(text)
            outcome = await handler.handle(command, metadata=metadata)
        except (msgspec.ValidationError, msgspec.DecodeError, DomainError) as exc:
            if not keep_going:
                raise LoadError(number, str(exc)) from exc
            report.refused.append(f"line {number}: {exc}")
            continue
        report.commands += 1
        if outcome.replayed:
            report.already_recorded += 1
        elif outcome.result is None:
            report.nothing_to_record += 1
        else:
            report.recorded += 1
            report.events += len(outcome.event_ids)
    return report
