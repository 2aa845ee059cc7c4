"""The seed article as data: the commands that record every fact of it, and their loader.

The file ``seed_article.jsonl`` ships inside the package, one command per line, each with a
fixed ``command_id``: loading it again appends nothing.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Final

import msgspec

from events.domain.commands import COMMAND_DECODER

if TYPE_CHECKING:
    from collections.abc import Iterable

    from events.domain.commands import Command
    from events.domain.handler import CommandHandler
    from events.records import Metadata

__all__ = (
    "ARTICLE_FILE",
    "SEED_FILE",
    "SeedReport",
    "article_text",
    "load_seed",
    "read_commands",
    "seed_commands",
)

SEED_FILE: Final = "seed_article.jsonl"
ARTICLE_FILE: Final = "seed_article.txt"
"""The article itself, every command's quotes come from it."""


class SeedReport(msgspec.Struct, kw_only=True):
    """What a load did: commands handled, and how many recorded something new."""

    commands: int = 0
    recorded: int = 0
    events: int = 0
    already_recorded: int = 0


def read_commands(lines: Iterable[str]) -> list[Command]:
    """Decode JSON lines of commands (blank lines and ``#`` comments skipped).

    Raises:
        ValueError: a line is not a valid command; the message names the line.
    """
    commands: list[Command] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            commands.append(COMMAND_DECODER.decode(text))
        except msgspec.DecodeError as exc:
            raise ValueError(f"line {number}: {exc}") from exc
    return commands


def article_text() -> str:
    """The seed article, as published."""
    return resources.files("events.domain").joinpath(ARTICLE_FILE).read_text(encoding="utf-8")


def seed_commands() -> list[Command]:
    """The seed article's commands, in order."""
    text = resources.files("events.domain").joinpath(SEED_FILE).read_text(encoding="utf-8")
    return read_commands(text.splitlines())


async def load_seed(handler: CommandHandler, *, metadata: Metadata | None = None) -> SeedReport:
    """Record the seed article through ``handler``; a second load appends nothing."""
    report = SeedReport()
    for command in seed_commands():
        outcome = await handler.handle(command, metadata=metadata)
        report.commands += 1
        if outcome.replayed:
            report.already_recorded += 1
        elif outcome.result is not None:
            report.recorded += 1
            report.events += len(outcome.event_ids)
    return report
