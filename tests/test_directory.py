"""The actor directory honours corrections and retractions of actor events."""

from __future__ import annotations

from datetime import date

import msgspec
import pytest

from events.domain.catalogue import (
    ActorRegistered,
    ActorsMerged,
    AliasAdded,
    EventCorrected,
    EventRetracted,
    RoleAssigned,
)
from events.domain.directory import Directory
from events.domain.errors import UnknownActorError
from events.domain.valid_time import valid_time
from events.domain.vocabulary import Alias


@pytest.fixture
def directory() -> Directory:
    directory = Directory()
    directory.apply(
        ActorRegistered(actor_id="hamas", kind="organisation", canonical_name="Hamas"), "e1"
    )
    directory.apply(
        ActorRegistered(actor_id="mashal", kind="person", canonical_name="Khaled Mashal"), "e2"
    )
    directory.apply(
        RoleAssigned(
            actor_id="mashal",
            organisation_id="hamas",
            title_as_reported="politburo chief",
            valid_time=valid_time("1996/2017"),
        ),
        "e3",
    )
    directory.apply(AliasAdded(actor_id="mashal", alias=Alias(text="Abu al-Walid")), "e4")
    return directory


def test_a_retracted_role_no_longer_counts(directory: Directory) -> None:
    assert [r.organisation_id for r in directory.memberships("mashal", date(2008, 3, 1))] == [
        "hamas"
    ]
    directory.apply(EventRetracted(target_event_id="e3", reason="misreported"), "e5")
    assert directory.memberships("mashal", date(2008, 3, 1)) == []


def test_a_corrected_role_period_replaces_the_old_one(directory: Directory) -> None:
    changes = {"valid_time": msgspec.to_builtins(valid_time("2010/2017"))}
    directory.apply(EventCorrected(target_event_id="e3", changes=changes, reason="r"), "e5")
    assert directory.memberships("mashal", date(2008, 3, 1)) == []
    assert len(directory.memberships("mashal", date(2012, 1, 1))) == 1


def test_a_retracted_alias_no_longer_resolves(directory: Directory) -> None:
    assert directory.resolve("Abu al-Walid", field="actor") == "mashal"
    directory.apply(EventRetracted(target_event_id="e4", reason="not his kunya"), "e5")
    with pytest.raises(UnknownActorError):
        directory.resolve("Abu al-Walid", field="actor")
    assert directory.resolve("Khalid Meshal", field="actor") == "mashal"


def test_a_retracted_merge_frees_the_merged_actor(directory: Directory) -> None:
    directory.apply(
        ActorRegistered(actor_id="meshaal2", kind="person", canonical_name="Khalid Meshaal"), "e5"
    )
    directory.apply(ActorsMerged(actor_id="mashal", merged_actor_id="meshaal2"), "e6")
    assert directory.resolve("meshaal2", field="actor") == "mashal"
    directory.apply(EventRetracted(target_event_id="e6", reason="two people after all"), "e7")
    assert directory.resolve("meshaal2", field="actor") == "meshaal2"
    assert directory.resolve("mashal", field="actor") == "mashal"


def test_the_same_event_twice_is_folded_once(directory: Directory) -> None:
    role = RoleAssigned(actor_id="mashal", organisation_id="hamas", valid_time=valid_time("2020"))
    directory.apply(role, "e9")
    directory.apply(role, "e9")
    assert len(directory.memberships("mashal", date(2020, 6, 1))) == 1
