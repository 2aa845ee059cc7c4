"""W3C Trace Context parsing: what a request's ``traceparent`` and ``tracestate`` become in
event metadata (the HTTP side is in test_hostile_input)."""

from __future__ import annotations

import pytest

from service.trace_context import MAX_TRACESTATE_CHARS, parse_traceparent, parse_tracestate

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_valid_traceparent_is_kept_as_it_is() -> None:
    assert parse_traceparent(VALID) == VALID
    assert parse_traceparent(f" {VALID}\t") == VALID
    assert len(VALID) == 55


def test_a_later_version_is_read_as_version_00() -> None:
    later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-comes-next"
    assert parse_traceparent(later) == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert parse_traceparent(later.replace("-09-", "-08-")).endswith("-00")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x" * 60_000,
        VALID.upper(),
        VALID + "-extra",  # version 00 is exactly 55 characters
        VALID[:-1],
        "ff" + VALID[2:],  # version ff is invalid
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
        "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\x00",
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.x",
    ],
)
def test_a_traceparent_that_does_not_parse_is_ignored(value: str) -> None:
    assert parse_traceparent(value) is None


def test_tracestate_is_read_only_beside_a_valid_traceparent() -> None:
    assert parse_tracestate("congo=t61rcWkgMzE", VALID) == "congo=t61rcWkgMzE"
    assert parse_tracestate("congo=t61rcWkgMzE", None) is None
    assert parse_tracestate(None, VALID) is None


def test_tracestate_members_are_normalised() -> None:
    state = " rojo=00f067aa0ba902b7 ,\t, congo=t61rcWkgMzE,fw529a3039@dt=abc "
    assert (
        parse_tracestate(state, VALID)
        == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,fw529a3039@dt=abc"
    )


@pytest.mark.parametrize(
    "state",
    [
        "Congo=abc",  # keys are lower case
        "congo=",  # a value is at least one character
        "congo=a,b",  # a member without "="
        "congo=a=b",
        "congo=a\tb",  # a tab is not a value character
        "congo=a,congo=b",  # a key only once
        "congo=a\x00b",
        ",".join(f"k{i}=v" for i in range(33)),  # at most 32 members
        "k=" + "v" * 257,
        "k" * 257 + "=v",
    ],
)
def test_a_tracestate_that_does_not_parse_is_dropped(state: str) -> None:
    assert parse_tracestate(state, VALID) is None


def test_a_long_tracestate_loses_long_members_first_then_the_last_ones() -> None:
    long_member = "big=" + "x" * 200
    members = [f"k{i}={'v' * 40}" for i in range(20)]
    state = parse_tracestate(",".join([members[0], long_member, *members[1:]]), VALID)
    assert state is not None
    assert len(state) <= MAX_TRACESTATE_CHARS
    assert "big=" not in state
    kept = state.split(",")
    assert kept == members[: len(kept)]
    assert len(",".join(members[: len(kept) + 1])) > MAX_TRACESTATE_CHARS
