"""Typed errors of the domain rules. Raised before anything is appended."""

from __future__ import annotations

import msgspec

__all__ = (
    "AmbiguousActorError",
    "Candidate",
    "DomainError",
    "InvalidCommandError",
    "InvalidValidTimeError",
    "RuleViolationError",
    "UnknownActorError",
    "UnknownTargetError",
)


class DomainError(Exception):
    """Base class: a command the rules refuse. ``field`` names the offending input, if any."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidCommandError(DomainError, ValueError):
    """A command that is malformed in itself (a missing name, an empty participant list...)."""


class InvalidValidTimeError(InvalidCommandError):
    """An EDTF string that does not parse, or an interval that ends before it starts."""


class UnknownActorError(DomainError, LookupError):
    """A command names an actor that is not registered; ``suggestions`` are the closest names."""

    def __init__(self, name: str, suggestions: list[str], *, field: str | None = None) -> None:
        hint = f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"unknown actor {name!r}{hint}", field=field)
        self.name = name
        self.suggestions = suggestions


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """An actor an ambiguous name may refer to."""

    actor_id: str
    canonical_name: str
    matched: str
    """The registered name or alias the name spells."""


class AmbiguousActorError(DomainError, LookupError):
    """A name that matches several registered actors equally well: the candidates, each with
    its id (two actors may share a canonical name), no guess."""

    def __init__(self, name: str, candidates: list[Candidate], *, field: str | None = None) -> None:
        listed = ", ".join(f"{c.canonical_name!r} ({c.actor_id})" for c in candidates)
        super().__init__(
            f"{name!r} could be any of {listed}; name the actor by id or give more context",
            field=field,
        )
        self.name = name
        self.candidates = candidates


class UnknownTargetError(DomainError, LookupError):
    """A command refers to a meeting, declaration, interaction or event that does not exist."""


class RuleViolationError(DomainError):
    """A command that the current state forbids (revising a cancelled meeting, retracting twice,
    naming a leader who is not a person...)."""
