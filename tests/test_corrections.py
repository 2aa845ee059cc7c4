"""Corrections: each fact type's correctable fields, and actor references in a correction
resolved like any command's (any spelling; a name of nobody, or of several actors, refused)."""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from events.domain import declarations, interactions, meetings
from events.domain.amendments import AMENDMENTS, Stored
from events.domain.catalogue import (
    DeclarationSigned,
    DelegationLeaderNamed,
    DomainEvent,
    EventCorrected,
    RoleAssigned,
)
from events.domain.commands import CorrectEvent
from events.domain.corrections import CHANGES, identity_fields
from events.domain.errors import (
    AmbiguousActorError,
    InvalidCommandError,
    RuleViolationError,
    UnknownActorError,
)
from tests.domain_bdd import given
from tests.test_domain_rules import (
    CALL,
    DRAFTED,
    SCHEDULED,
    SEED_ACTORS,
    SIGNED,
    directory_of,
    invited,
    leader,
)

if TYPE_CHECKING:
    from events.domain.directory import Directory


@pytest.fixture
def directory() -> Directory:
    return directory_of(*SEED_ACTORS)


MEETING = "meeting-moscow_2024"
HEADED = (
    Stored("m1", SCHEDULED),
    Stored("m2", invited("hamas")),
    Stored("m3", leader("hamas", "abu_marzook")),
)
"""A meeting whose Hamas delegation is headed by Abu Marzook (event ``m3``)."""


def _correct(stream: str, target: str, **changes: Any) -> CorrectEvent:
    return CorrectEvent(stream=stream, target_event_id=target, changes=changes, reason="r")


def _corrected(target: str, **changes: Any) -> EventCorrected:
    return EventCorrected(target_event_id=target, changes=changes, reason="r")


def test_every_fact_type_lists_its_correctable_fields() -> None:
    facts = [t for t in typing.get_args(DomainEvent) if t not in AMENDMENTS]
    assert list(CHANGES) == facts
    for event, changes in CHANGES.items():
        assert changes.__name__ == f"{event.__name__}Changes"
        correctable = set(event.__struct_fields__) - identity_fields(event)
        assert set(changes.__struct_fields__) == correctable
        assert changes.__struct_config__.forbid_unknown_fields
        assert msgspec.convert({}, changes) == changes()  # every field optional
    assert set(CHANGES[DelegationLeaderNamed].__struct_fields__) == {
        "faction_id",
        "person_id",
        "name_as_reported",
        "title_as_reported",
        "sources",
    }
    assert "organisation_id" in CHANGES[RoleAssigned].__struct_fields__


@pytest.mark.parametrize(
    ("person", "person_id"),
    [
        ("Khalid Meshal", "mashal"),  # a namesake's skeleton: the faction settles it
        ("Mousa Abu Marzook", "abu_marzook"),
        ("Moussa Abou Marzouk", "abu_marzook"),
        ("mashal", "mashal"),
    ],
)
def test_a_corrected_leader_named_by_any_spelling_is_stored_by_id(
    directory: Directory, person: str, person_id: str
) -> None:
    given(meetings, *HEADED).when(_correct(MEETING, "m3", person_id=person), directory).then(
        _corrected("m3", person_id=person_id)
    )


def test_correcting_a_leader_to_a_name_of_nobody_is_refused(directory: Directory) -> None:
    error = (
        given(meetings, *HEADED)
        .when(_correct(MEETING, "m3", person_id="Ismail Haniyeh"), directory)
        .then_raises(UnknownActorError, match="Ismail Haniyeh", field="changes.person_id")
    )
    assert error.name == "Ismail Haniyeh"


def test_correcting_a_leader_to_an_ambiguous_name_lists_the_candidates(
    directory: Directory,
) -> None:
    # The faction corrected too: Fatah gives no clue between the two Meshals.
    stream = given(
        meetings, *HEADED, Stored("m4", invited("fatah")), Stored("m5", leader("fatah", "bogdanov"))
    )
    error = stream.when(_correct(MEETING, "m5", person_id="Khalid Meshal"), directory).then_raises(
        AmbiguousActorError, match="could be any of", field="changes.person_id"
    )
    assert {c.actor_id for c in error.candidates} == {"mashal", "mishaal"}


@pytest.mark.parametrize("person", ["Islamic Jihad", "russia"])
def test_correcting_a_leader_to_an_organisation_is_refused(
    directory: Directory, person: str
) -> None:
    given(meetings, *HEADED).when(_correct(MEETING, "m3", person_id=person), directory).then_raises(
        RuleViolationError, match="not a person", field="changes.person_id"
    )


def test_a_corrected_faction_and_signatory_are_resolved(directory: Directory) -> None:
    given(meetings, *HEADED).when(
        _correct(MEETING, "m2", faction_id="Islamic Jihad"), directory
    ).then(_corrected("m2", faction_id="pij"))
    signed = DeclarationSigned(
        declaration_id="moscow_declaration_2019", signatory_id="hamas", coding=SIGNED
    )
    given(declarations, Stored("d1", DRAFTED), Stored("d2", signed)).when(
        _correct("declaration-moscow_declaration_2019", "d2", signatory_id="the PFLP"), directory
    ).then(_corrected("d2", signatory_id="pflp"))


def test_corrected_participants_are_resolved_keeping_the_spelling(directory: Directory) -> None:
    participants = [
        {"actor_id": "Azzam Ahmed", "role": "initiator"},
        {"actor_id": "lavrov", "role": "recipient", "name_as_reported": "Lavrov"},
    ]
    given(interactions, Stored("f1", CALL)).when(
        _correct("interaction-call_bogdanov_al_ahmad_2024", "f1", participants=participants),
        directory,
    ).then(
        _corrected(
            "f1",
            participants=[
                {
                    "actor_id": "azzam_al_ahmad",
                    "role": "initiator",
                    "name_as_reported": "Azzam Ahmed",
                },
                {"actor_id": "lavrov", "role": "recipient", "name_as_reported": "Lavrov"},
            ],
        )
    )


def test_a_corrected_participant_of_nobody_is_refused(directory: Directory) -> None:
    participants = [
        {"actor_id": "bogdanov", "role": "initiator"},
        {"actor_id": "X", "role": "host"},
    ]
    given(interactions, Stored("f1", CALL)).when(
        _correct("interaction-call_bogdanov_al_ahmad_2024", "f1", participants=participants),
        directory,
    ).then_raises(UnknownActorError, field="changes.participants[1].actor_id")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": ["a", "list"]}, "changes.title"),
        ({"modality": "rumoured"}, "changes.modality"),
        ({"place": {"name": "Moscow", "town": "x"}}, "changes.place"),
        ({"host_id": 7}, "changes.host_id"),
        ({"title": "two\nlines"}, "changes.title"),
        ({"sources": [{"qoute": "a typo"}]}, "changes.sources"),
    ],
)
def test_a_change_of_the_wrong_shape_is_refused_by_its_field(
    directory: Directory, changes: dict[str, Any], field: str
) -> None:
    given(meetings, *HEADED).when(
        CorrectEvent(stream=MEETING, target_event_id="m1", changes=changes, reason="r"), directory
    ).then_raises(InvalidCommandError, match="would be invalid", field=field)
