"""Given/when/then for the pure domain rules: no database, no handler.

    given(meetings, Stored("e1", MeetingScheduled(...)))
        .when(CancelMeeting(meeting_id="m"), directory)
        .then(MeetingCancelled(meeting_id="m"))

``given`` folds the aggregate module's ``evolve`` over the history, from the module's initial
(empty) state; ``when`` runs its ``decide``; ``then`` asserts the exact list of events decided
(none at all for ``then()``), and ``then_raises`` asserts a typed error, its message and its
``field``, and that the decision appended nothing (``decide`` raised and left the state as it
was).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pytest

from events.domain import actors, declarations, interactions, meetings
from events.domain.amendments import Stored
from events.domain.directory import Directory
from events.domain.errors import DomainError

if TYPE_CHECKING:
    from events.domain.catalogue import DomainEvent

__all__ = ("Aggregate", "Given", "Then", "given", "initial_state")

E = TypeVar("E", bound=DomainError)


class Aggregate(Protocol):
    """An aggregate module: ``events.domain.actors``, ``meetings``, ``declarations`` or
    ``interactions``."""

    __name__: str

    def evolve(self, state: Any, stored: Stored, /) -> Any: ...

    def decide(self, state: Any, command: Any, directory: Directory, /) -> list[DomainEvent]: ...


_INITIAL: dict[str, Any] = {
    actors.__name__: actors.ActorState(),
    meetings.__name__: meetings.MeetingState(),
    declarations.__name__: declarations.DeclarationState(),
    interactions.__name__: interactions.InteractionState(),
}


def initial_state(aggregate: Aggregate) -> Any:
    """The state of an empty stream of ``aggregate``."""
    return _INITIAL[aggregate.__name__]


def given(aggregate: Aggregate, *history: Stored | tuple[str, DomainEvent]) -> Given:
    """A stream of ``aggregate`` holding ``history``: ``Stored`` events or ``(event_id, event)``
    pairs, oldest first."""
    state = initial_state(aggregate)
    for item in history:
        stored = item if isinstance(item, Stored) else Stored(*item)
        state = aggregate.evolve(state, stored)
    return Given(aggregate, state)


class Given:
    """A stream's state, ready for a command."""

    def __init__(self, aggregate: Aggregate, state: Any) -> None:
        self.aggregate = aggregate
        self.state = state

    def when(self, command: Any, directory: Directory | None = None) -> Then:
        """Decide ``command`` against this state (an empty directory if none is given)."""
        return Then(self, command, directory if directory is not None else Directory())


class Then:
    """The outcome of one decision, to assert on."""

    def __init__(self, given_: Given, command: Any, directory: Directory) -> None:
        self._given = given_
        self._command = command
        self._directory = directory

    def _decide(self) -> list[DomainEvent]:
        return self._given.aggregate.decide(self._given.state, self._command, self._directory)

    @property
    def events(self) -> list[DomainEvent]:
        """What the command decides (raises whatever the rules raise)."""
        return self._decide()

    def then(self, *expected: DomainEvent) -> list[DomainEvent]:
        """Assert the command decides exactly ``expected``, in order (``then()``: nothing)."""
        decided = self._decide()
        assert decided == list(expected), _diff(decided, list(expected))
        return decided

    def then_raises(
        self,
        error: type[E],
        *,
        match: str | None = None,
        field: str | None,
    ) -> E:
        """Assert the rules refuse the command with ``error`` (exactly that class or a
        subclass), a message matching the regex ``match`` and this ``field``; nothing is
        decided and the state is left as it was. Returns the error for further checks."""
        before = copy.deepcopy(self._given.state)
        with pytest.raises(error, match=match) as caught:
            decided = self._decide()
            pytest.fail(f"expected {error.__name__}, but the rules decided {decided!r}")
        assert caught.value.field == field, (
            f"{error.__name__} names field {caught.value.field!r}, expected {field!r}: "
            f"{caught.value}"
        )
        assert self._given.state == before, "decide must not change the state it is given"
        return caught.value


def _diff(decided: list[DomainEvent], expected: list[DomainEvent]) -> str:
    lines = ["decided events differ from the expected ones", "decided:"]
    lines += [f"  {e!r}" for e in decided] or ["  (nothing)"]
    lines.append("expected:")
    lines += [f"  {e!r}" for e in expected] or ["  (nothing)"]
    return "\n".join(lines)
