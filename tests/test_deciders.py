"""Every command is handled by exactly one branch: each decider, and the handler's choice of
stream, dispatch with one ``match`` on the command whose last case is ``assert_never`` (so
mypy --strict proves the branches exhaustive), each command type named in exactly one case.
A command no branch names reaches none: it is refused, never decided by another's rules."""

from __future__ import annotations

import ast
import inspect
import textwrap
import typing
from collections import Counter
from typing import TYPE_CHECKING, Any, cast

import msgspec
import pytest

from events.domain import actors, amendments, declarations, handler, interactions, meetings
from events.domain.commands import AddSource, Command, CorrectEvent, RetractEvent
from events.domain.directory import Directory

if TYPE_CHECKING:
    from collections.abc import Callable

AMENDMENTS = (AddSource, CorrectEvent, RetractEvent)
AGGREGATES: dict[str, tuple[Callable[..., Any], Any, Any]] = {
    "actor": (actors.decide, actors.ActorCommand, actors.ActorState(actor_id="a", kind="person")),
    "meeting": (meetings.decide, meetings.MeetingCommand,
                meetings.MeetingState(meeting_id="m", status="scheduled",
                                      invited=frozenset({"hamas"}))),
    "declaration": (declarations.decide, declarations.DeclarationCommand,
                    declarations.DeclarationState(declaration_id="d", title="t")),
    "interaction": (interactions.decide, interactions.InteractionCommand,
                    interactions.InteractionState()),
}  # fmt: skip
DISPATCHERS: dict[str, tuple[Callable[..., Any], Any]] = {
    **{f"{name}.decide": (decide, union) for name, (decide, union, _) in AGGREGATES.items()},
    "amendments.decide_amendment": (
        amendments.decide_amendment,
        AddSource | CorrectEvent | RetractEvent,
    ),
    "handler.stream_of": (handler.stream_of, Command),
}


def _match_on_command(function: Callable[..., Any]) -> ast.Match:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    found = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Match)
        and isinstance(node.subject, ast.Name)
        and node.subject.id == "command"
    ]
    assert len(found) == 1, f"{function.__qualname__} has {len(found)} matches on command"
    return found[0]


def _classes(pattern: ast.pattern) -> list[str]:
    if isinstance(pattern, ast.MatchOr):
        return [name for p in pattern.patterns for name in _classes(p)]
    assert isinstance(pattern, ast.MatchClass), ast.dump(pattern)
    assert not pattern.patterns and not pattern.kwd_patterns
    assert isinstance(pattern.cls, ast.Name)
    return [pattern.cls.id]


def _branches(function: Callable[..., Any]) -> list[tuple[list[str], ast.match_case]]:
    """Each case but the last: the command types it names, and the case."""
    match = _match_on_command(function)
    *cases, last = match.cases
    # The last case catches the rest, and only to prove there is none.
    assert isinstance(last.pattern, ast.MatchAs) and last.pattern.pattern is None
    (statement,) = last.body
    assert isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
    assert ast.unparse(statement.value) == "assert_never(command)"
    for case in cases:
        assert case.guard is None, "a guard would let a command fall through to a later case"
    return [(_classes(case.pattern), case) for case in cases]


@pytest.mark.parametrize("name", DISPATCHERS)
def test_each_command_type_has_exactly_one_branch(name: str) -> None:
    function, union = DISPATCHERS[name]
    named = Counter(n for classes, _ in _branches(function) for n in classes)
    expected = {t.__name__ for t in typing.get_args(union)}
    assert set(named) == expected
    assert [n for n, count in named.items() if count > 1] == []


def test_every_command_belongs_to_one_aggregate_and_its_stream_says_which() -> None:
    owners: dict[str, set[str]] = {}
    for category, (_, union, _) in AGGREGATES.items():
        for command_type in typing.get_args(union):
            owners.setdefault(command_type.__name__, set()).add(category)
    amending = {t.__name__ for t in AMENDMENTS}
    assert set(owners) == {t.__name__ for t in typing.get_args(Command)}
    for command_name, categories in owners.items():
        if command_name in amending:
            assert categories == set(AGGREGATES)
        else:
            assert len(categories) == 1, (command_name, categories)
    for classes, case in _branches(handler.stream_of):
        (returned,) = case.body
        assert isinstance(returned, ast.Return) and returned.value is not None
        if isinstance(returned.value, ast.Attribute):  # command.stream: the amended stream
            assert set(classes) == amending
            continue
        assert isinstance(returned.value, ast.JoinedStr)
        prefix = returned.value.values[0]
        assert isinstance(prefix, ast.Constant)
        category = str(prefix.value).removesuffix("-")
        assert all(owners[c] == {category} for c in classes), (category, classes)


class Adjourn(msgspec.Struct, frozen=True, kw_only=True):
    """A command no decider knows, carrying every field some branch might read."""

    command_id: str | None = None
    meeting_id: str = "m"
    declaration_id: str = "d"
    interaction_id: str = "i"
    actor: str = "a"
    faction: str = "hamas"
    person: str = "p"
    stream: str = "meeting-m"
    target_event_id: str = "e"
    name_as_reported: str | None = None
    title_as_reported: str | None = None
    sources: tuple[Any, ...] = ()


def test_a_command_no_branch_names_is_refused_not_decided_by_another() -> None:
    command = cast("Any", Adjourn())
    with pytest.raises(AssertionError):
        handler.stream_of(command, Directory())
    for decide, _, state in AGGREGATES.values():
        with pytest.raises(AssertionError):
            decide(state, command, Directory())
    with pytest.raises(AssertionError):
        amendments.decide_amendment(amendments.Record(), command, Directory())
