"""Commands as they arrive: the seed file decodes, typos and malformed ids are refused at the
door (before any rule runs), and the seed loader says which line was wrong."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import msgspec
import pytest

from events.domain.commands import (
    COMMAND_DECODER,
    Command,
    RecordInteraction,
    RegisterActor,
)
from events.domain.seed import SEED_FILE, read_commands, seed_commands

SEED_LINES = (
    resources.files("events.domain").joinpath(SEED_FILE).read_text(encoding="utf-8").splitlines()
)


def decode(data: dict[str, Any]) -> Command:
    return COMMAND_DECODER.decode(json.dumps(data))


def _kept(sent: Any, decoded: Any, path: str = "$") -> None:
    """Every value in ``sent`` arrives in ``decoded`` (which may add defaults)."""
    if isinstance(sent, dict):
        assert isinstance(decoded, dict), path
        for key, value in sent.items():
            assert key in decoded, f"{path}.{key} was dropped"
            _kept(value, decoded[key], f"{path}.{key}")
    elif isinstance(sent, list):
        assert isinstance(decoded, list), path
        assert len(sent) == len(decoded), path
        for n, (a, b) in enumerate(zip(sent, decoded, strict=True)):
            _kept(a, b, f"{path}[{n}]")
    else:
        assert sent == decoded, f"{path}: sent {sent!r}, decoded {decoded!r}"


# -- the seed file --------------------------------------------------------------------------------


def test_the_seed_file_has_one_command_a_line() -> None:
    assert len(SEED_LINES) == 73
    assert all(line.strip() for line in SEED_LINES)


@pytest.mark.parametrize(
    "line", SEED_LINES, ids=[f"line{n}" for n in range(1, len(SEED_LINES) + 1)]
)
def test_every_seed_line_decodes_and_keeps_every_value(line: str) -> None:
    command = COMMAND_DECODER.decode(line)
    sent = json.loads(line)
    assert msgspec.structs.asdict(command)["command_id"] == sent["command_id"]
    encoded = msgspec.json.encode(command)
    _kept(sent, msgspec.json.decode(encoded))
    assert COMMAND_DECODER.decode(encoded) == command


def test_seed_commands_are_the_file_in_order_with_distinct_ids() -> None:
    commands = seed_commands()
    assert commands == [COMMAND_DECODER.decode(line) for line in SEED_LINES]
    ids = [c.command_id for c in commands]
    assert None not in ids
    assert len(set(ids)) == len(ids)
    assert isinstance(commands[0], RegisterActor)
    assert sum(isinstance(c, RecordInteraction) for c in commands) == 23


# -- unknown fields -------------------------------------------------------------------------------

REGISTER = {"type": "register_actor", "actor_id": "mashal", "kind": "person", "canonical_name": "K"}
VISIT = {
    "type": "record_interaction",
    "kind": "visit",
    "interaction_id": "visit_mashal_moscow_2006_03",
    "valid_time": "2006-03",
    "participants": [{"actor": "Khalid Meshal", "role": "visitor", "organisation": "hamas"}],
}


def test_the_fixtures_are_valid_commands() -> None:
    assert isinstance(decode(REGISTER), RegisterActor)
    assert isinstance(decode(VISIT), RecordInteraction)


@pytest.mark.parametrize(
    ("data", "field", "where"),
    [
        ({**REGISTER, "canonical_nmae": "Khaled Mashal"}, "canonical_nmae", None),
        ({**REGISTER, "alias": "Khalid Meshal"}, "alias", None),  # the field is "aliases"
        ({**VISIT, "date": "2006-03"}, "date", None),
        (
            {**VISIT, "participants": [{"actor": "Khalid Meshal", "role": "visitor", "org": "x"}]},
            "org",
            "$.participants[0]",
        ),
        ({**VISIT, "coding": {"cammeo": "043"}}, "cammeo", "$.coding"),
        (
            {"type": "cancel_meeting", "meeting_id": "moscow_2024", "reasons": "war"},
            "reasons",
            None,
        ),
        (
            {
                "type": "correct_event",
                "stream": "meeting-moscow_2024",
                "target_event_id": "e1",
                "changes": {"title": "t"},
                "reason": "r",
                "why": "typo",
            },
            "why",
            None,
        ),
    ],
)
def test_an_unknown_field_is_refused_and_named(
    data: dict[str, Any], field: str, where: str | None
) -> None:
    with pytest.raises(msgspec.ValidationError, match=f"unknown field `{field}`") as caught:
        decode(data)
    if where is not None:
        assert f"at `{where}`" in str(caught.value)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({**REGISTER, "sources": [{"publisher": "TASS", "qoute": "x"}]}, "$.sources[0]"),
        ({**REGISTER, "aliases": [{"text": "Hamas", "lnag": "en"}]}, "$.aliases[0]"),
        ({**VISIT, "place": {"name": "Moscow", "contry": "RUS"}}, "$.place"),
    ],
)
def test_an_unknown_field_inside_a_shared_object_is_refused(
    data: dict[str, Any], where: str
) -> None:
    with pytest.raises(msgspec.ValidationError, match=r"unknown field `\w+`") as caught:
        decode(data)
    assert f"at `{where}`" in str(caught.value)


# -- ids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["bad-id", "Mashal", "mashal ", "_mashal", "", "x" * 101])
@pytest.mark.parametrize(
    ("data", "field"),
    [
        (REGISTER, "actor_id"),
        (VISIT, "interaction_id"),
        ({**VISIT, "meeting_id": "moscow_2024"}, "meeting_id"),
        ({"type": "cancel_meeting", "meeting_id": "moscow_2024"}, "meeting_id"),
        ({"type": "draft_declaration", "declaration_id": "d", "title": "t"}, "declaration_id"),
    ],
)
def test_a_bad_id_is_refused(data: dict[str, Any], field: str, bad: str) -> None:
    decode(data)  # the command is fine with its own id
    with pytest.raises(msgspec.ValidationError, match=rf"at `\$\.{field}`"):
        decode({**data, field: bad})


@pytest.mark.parametrize("good", ["mashal", "moscow_2024", "a.b_c9", "0", "x" * 100])
def test_ids_of_lowercase_letters_digits_dots_and_underscores_are_accepted(good: str) -> None:
    command = decode({**REGISTER, "actor_id": good})
    assert isinstance(command, RegisterActor)
    assert command.actor_id == good


@pytest.mark.parametrize(
    "stream", ["meeting_moscow_2024", "meeting-Moscow", "person-mashal", "meeting-", "meeting"]
)
def test_a_bad_stream_reference_is_refused(stream: str) -> None:
    data = {"type": "retract_event", "stream": stream, "target_event_id": "e1", "reason": "r"}
    with pytest.raises(msgspec.ValidationError, match=r"at `\$\.stream`"):
        decode(data)


# -- the loader -----------------------------------------------------------------------------------


def test_read_commands_skips_blank_lines_and_comments() -> None:
    lines = ["", "# the seed article", "   ", json.dumps(REGISTER), "  # trailing comment"]
    assert read_commands(lines) == [decode(REGISTER)]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({**REGISTER, "actor_id": "bad-id"}, r"at `\$\.actor_id`"),
        ({**REGISTER, "nmae": "x"}, "unknown field `nmae`"),
        ({"type": "register_actors"}, r"Invalid value 'register_actors' - at `\$\.type`"),
    ],
)
def test_read_commands_names_the_line_of_an_invalid_command(
    bad: dict[str, Any], message: str
) -> None:
    lines = ["# header", "", json.dumps(REGISTER), json.dumps(VISIT), json.dumps(bad)]
    with pytest.raises(ValueError, match=rf"^line 5: .*{message}") as caught:
        read_commands(lines)
    assert isinstance(caught.value.__cause__, msgspec.ValidationError)


def test_read_commands_names_the_line_of_malformed_json() -> None:
    lines = [json.dumps(REGISTER), '{"type": "register_actor", "actor_id": ']
    with pytest.raises(ValueError, match=r"^line 2: ") as caught:
        read_commands(lines)
    assert isinstance(caught.value.__cause__, msgspec.DecodeError)


def test_a_bad_line_in_a_copy_of_the_seed_is_reported_by_number() -> None:
    lines = list(SEED_LINES)
    broken = json.loads(lines[40])
    broken["meeting_id"] = "Moscow-2024"
    lines[40] = json.dumps(broken)
    with pytest.raises(ValueError, match=r"^line 41: .*meeting_id"):
        read_commands(lines)
