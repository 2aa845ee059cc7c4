"""The domain rules, pure: every ``decide`` rule and error of the four aggregates, the shared
amendment rules, and what ``evolve`` keeps. No database: given a history, when a command, then
the exact events (or a typed error and nothing appended).

The directory holds the seed article's actors (``events/domain/seed_article.jsonl``), plus a
second, Hamas-less "Khalid Mishaal" so that a Meshal spelling is ambiguous without context.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from events.domain import actors, declarations, interactions, meetings
from events.domain.amendments import Stored
from events.domain.catalogue import (
    ActorRegistered,
    ActorsMerged,
    AddressDelivered,
    AliasAdded,
    ApologyIssued,
    AttendanceConfirmed,
    AttendanceDeclined,
    ContactsReported,
    DeclarationDrafted,
    DeclarationSigned,
    DelegationLeaderNamed,
    DelegationMemberNamed,
    EventCorrected,
    EventRetracted,
    FactionInvited,
    MeetingCancelled,
    MeetingDateRevised,
    MeetingHeld,
    MeetingPostponed,
    MeetingScheduled,
    PhoneCallHeld,
    RoleAssigned,
    SignatureRefused,
    SourceAdded,
    StatementReported,
    VisitMade,
)
from events.domain.coding import MAPPING_VERSION, Coding, CodingOverride
from events.domain.commands import (
    AddAlias,
    AddSource,
    AssignRole,
    CancelMeeting,
    ConfirmAttendance,
    CorrectEvent,
    DeclineAttendance,
    DraftDeclaration,
    InviteFaction,
    MergeActors,
    NameDelegationLeader,
    NameDelegationMember,
    ParticipantRef,
    PostponeMeeting,
    RecordInteraction,
    RefuseSignature,
    RegisterActor,
    RetractEvent,
    ReviseMeetingDate,
    ScheduleMeeting,
    SignDeclaration,
)
from events.domain.directory import Directory
from events.domain.errors import (
    AmbiguousActorError,
    InvalidCommandError,
    InvalidValidTimeError,
    RuleViolationError,
    UnknownActorError,
    UnknownTargetError,
)
from events.domain.valid_time import ValidTime, valid_time
from events.domain.vocabulary import Alias, Participant, Place, Source
from tests.domain_bdd import Aggregate, given

if TYPE_CHECKING:
    from events.domain.catalogue import DomainEvent

SOURCE = Source(
    url="https://example.org/russia-palestinian-factions",
    publisher="Example News",
    language="en",
    quote="Representatives from Fatah, Hamas, Islamic Jihad ... have been invited.",
)
LATER_SOURCE = Source(publisher="Another Wire", language="en", quote="The meeting was put off.")


def vt(edtf: str, raw: str | None = None) -> ValidTime:
    return valid_time(edtf, raw)


def coding(
    cameo: str,
    goldstein: float,
    quad_class: int,
    plover_type: str | None,
    plover_mode: str | None = None,
    **extra: Any,
) -> Coding:
    """A coding written out by hand, so a test fails if the rules pick the wrong table row."""
    return Coding(
        cameo=cameo,
        goldstein=goldstein,
        quad_class=quad_class,
        plover_type=plover_type,
        plover_mode=plover_mode,
        mapping_version=MAPPING_VERSION,
        **extra,
    )


PHONE = coding("041", 1.0, 1, "CONSULT", "phone")
CONTACTS = coding("040", 1.0, 1, "CONSULT")
MEETING = coding("044", 2.5, 1, "CONSULT", "third-party")
VISIT = coding("042", 1.9, 1, "CONSULT", "visit")
ADDRESS = coding("010", 0.0, 1, None)
STATEMENT = coding("010", 0.0, 1, None)
APOLOGY = coding("055", 7.0, 1, "CONCEDE", alternatives={"cameo2plover_2021": "SUPPORT"})
AGREE = coding("036", 4.0, 1, "AGREE")
DECLINED = coding("125", -5.0, 3, "REJECT", "meet")
SIGNED = coding("057", 8.0, 1, "SUPPORT")
REFUSED = coding("127", -5.0, 3, "REJECT", "meet")


# -- the directory ------------------------------------------------------------------------------


def _registered(actor_id: str, kind: Any, name: str, *aliases: str) -> ActorRegistered:
    return ActorRegistered(
        actor_id=actor_id,
        kind=kind,
        canonical_name=name,
        aliases=tuple(Alias(text=a, lang="en") for a in aliases),
    )


def _role(actor_id: str, organisation_id: str, edtf: str, title: str | None = None) -> RoleAssigned:
    return RoleAssigned(
        actor_id=actor_id,
        organisation_id=organisation_id,
        title_as_reported=title,
        valid_time=vt(edtf),
    )


SEED_ACTORS: tuple[DomainEvent, ...] = (
    _registered("russia", "state", "Russia"),
    _registered(
        "rus_mfa", "institution", "Russian Ministry of Foreign Affairs", "Russian Foreign Ministry"
    ),
    _registered(
        "ios_ras", "institution", "Institute of Oriental Studies of the Russian Academy of Sciences"
    ),
    _registered("fatah", "organisation", "Fatah"),
    _registered("hamas", "organisation", "Hamas"),
    _registered("pij", "organisation", "Palestinian Islamic Jihad", "Islamic Jihad"),
    _registered("pflp", "organisation", "Popular Front for the Liberation of Palestine", "PFLP"),
    _registered("dflp", "organisation", "Democratic Front for the Liberation of Palestine", "DFLP"),
    _registered("bogdanov", "person", "Mikhail Bogdanov"),
    _registered("azzam_al_ahmad", "person", "Azzam al-Ahmad"),
    _registered("abu_marzook", "person", "Mousa Abu Marzook"),
    _registered("mashal", "person", "Khaled Mashal"),
    _registered("lavrov", "person", "Sergei Lavrov"),
    # Not in the article: a namesake with no Hamas role, so "Khalid Meshal" needs context.
    _registered("mishaal", "person", "Khalid Mishaal"),
    AliasAdded(actor_id="azzam_al_ahmad", alias=Alias(text="Azzam Ahmed", lang="en")),
    AliasAdded(actor_id="mashal", alias=Alias(text="Khalid Meshal", lang="en")),
    _role("bogdanov", "rus_mfa", "2024-02", "Special Representative for the Middle East"),
    _role("azzam_al_ahmad", "fatah", "2024-02", "a member of Fatah's Executive Committee"),
    _role("abu_marzook", "hamas", "2024-02", "the Deputy Chairman of Hamas's Politburo"),
    _role("mashal", "hamas", "2006/2010", "led the Hamas politburo for many years"),
    _role("lavrov", "rus_mfa", "2008-03/2024-02", "Russian Foreign Minister"),
)


def directory_of(*events: DomainEvent) -> Directory:
    directory = Directory()
    for n, event in enumerate(events):
        directory.apply(event, f"actor-event-{n}")
    return directory


@pytest.fixture
def directory() -> Directory:
    return directory_of(*SEED_ACTORS)


def test_the_fixture_directory_resolves_the_seed_spellings(directory: Directory) -> None:
    assert len(directory) == 14
    assert directory.resolve("Islamic Jihad", field="f") == "pij"
    assert directory.resolve("Azzam Ahmed", field="f") == "azzam_al_ahmad"
    on = vt("2006-03").lower
    assert directory.resolve("Khalid Meshal", field="f", organisation="hamas", on=on) == "mashal"


# == actors ======================================================================================

MASHAL_REGISTERED = ActorRegistered(
    actor_id="mashal",
    kind="person",
    canonical_name="Khaled Mashal",
    aliases=(Alias(text="Khaled Meshaal", lang="en"),),
)
HAMAS_REGISTERED = ActorRegistered(actor_id="hamas", kind="organisation", canonical_name="Hamas")


def test_register_actor_records_every_field() -> None:
    given(actors).when(
        RegisterActor(
            actor_id="rus_mfa",
            kind="institution",
            canonical_name="Russian Ministry of Foreign Affairs",
            aliases=(Alias(text="Russian Foreign Ministry", lang="en", scheme="press"),),
            cameo_code="RUSGOV",
            wikidata_qid="Q1752567",
            country="RUS",
            sources=(SOURCE,),
        )
    ).then(
        ActorRegistered(
            actor_id="rus_mfa",
            kind="institution",
            canonical_name="Russian Ministry of Foreign Affairs",
            aliases=(Alias(text="Russian Foreign Ministry", lang="en", scheme="press"),),
            cameo_code="RUSGOV",
            wikidata_qid="Q1752567",
            country="RUS",
            sources=(SOURCE,),
        )
    )


def test_registering_an_actor_twice_is_refused() -> None:
    given(actors, Stored("a1", MASHAL_REGISTERED)).when(
        RegisterActor(actor_id="mashal", kind="person", canonical_name="Khalid Meshal")
    ).then_raises(
        RuleViolationError, match="already registered as 'Khaled Mashal'", field="actor_id"
    )


def test_a_new_alias_is_added() -> None:
    alias = Alias(text="Khalid Meshal", lang="en", scheme="press")
    given(actors, Stored("a1", MASHAL_REGISTERED)).when(
        AddAlias(actor="mashal", alias=alias, sources=(SOURCE,))
    ).then(AliasAdded(actor_id="mashal", alias=alias, sources=(SOURCE,)))


@pytest.mark.parametrize(
    "spelling",
    [
        "Khaled Mashal",  # the canonical name itself
        "khaled  MASHAL",  # case and spacing
        "Khaléd Mashal",  # an accent
        "Khaled Meshaal",  # a registered alias
        "Khalid Meshal",  # an alias added later
        "Khalid Mesh'al",  # the same, with an ayn apostrophe
    ],
)
def test_an_alias_that_normalises_to_a_known_name_records_nothing(spelling: str) -> None:
    added = AliasAdded(actor_id="mashal", alias=Alias(text="Khalid Meshal"))
    given(actors, Stored("a1", MASHAL_REGISTERED), Stored("a2", added)).when(
        AddAlias(actor="mashal", alias=Alias(text=spelling))
    ).then()


def test_an_alias_with_the_arabic_article_dropped_is_already_known() -> None:
    azzam = ActorRegistered(
        actor_id="azzam_al_ahmad", kind="person", canonical_name="Azzam al-Ahmad"
    )
    given(actors, Stored("a1", azzam)).when(
        AddAlias(actor="azzam_al_ahmad", alias=Alias(text="Azzam Ahmad"))
    ).then()


def test_assign_role_resolves_the_organisation_by_name(directory: Directory) -> None:
    nakhalah = ActorRegistered(
        actor_id="nakhalah", kind="person", canonical_name="Ziyad al-Nakhalah"
    )
    given(actors, Stored("a1", nakhalah)).when(
        AssignRole(
            actor="nakhalah",
            organisation="Islamic Jihad",
            title_as_reported="Secretary-General",
            role_code="leader",
            valid_time="2018/2024-02",
            valid_time_raw="since 2018",
            sources=(SOURCE,),
        ),
        directory,
    ).then(
        RoleAssigned(
            actor_id="nakhalah",
            organisation_id="pij",
            title_as_reported="Secretary-General",
            role_code="leader",
            valid_time=vt("2018/2024-02", "since 2018"),
            sources=(SOURCE,),
        )
    )


@pytest.mark.parametrize("organisation", ["bogdanov", "Mikhail Bogdanov"])
def test_a_role_in_a_person_is_refused(directory: Directory, organisation: str) -> None:
    given(actors, Stored("a1", MASHAL_REGISTERED)).when(
        AssignRole(actor="mashal", organisation=organisation, valid_time="2024"), directory
    ).then_raises(RuleViolationError, match=r"\(bogdanov\) is a person", field="organisation")


def test_a_role_in_an_unknown_organisation_is_refused(directory: Directory) -> None:
    error = (
        given(actors, Stored("a1", MASHAL_REGISTERED))
        .when(AssignRole(actor="mashal", organisation="Fatehh", valid_time="2024"), directory)
        .then_raises(UnknownActorError, match="unknown actor 'Fatehh'", field="organisation")
    )
    assert error.suggestions == ["Fatah"]


@pytest.mark.parametrize("organisation", ["hamas", "Hamas"])
def test_an_organisation_cannot_hold_a_role_in_itself(
    directory: Directory, organisation: str
) -> None:
    given(actors, Stored("a1", HAMAS_REGISTERED)).when(
        AssignRole(actor="hamas", organisation=organisation, valid_time="2024"), directory
    ).then_raises(RuleViolationError, match="role in itself", field="organisation")


def test_a_role_with_a_valid_time_that_is_not_edtf_is_refused(directory: Directory) -> None:
    given(actors, Stored("a1", MASHAL_REGISTERED)).when(
        AssignRole(actor="mashal", organisation="hamas", valid_time="for many years"), directory
    ).then_raises(InvalidValidTimeError, match="not an EDTF", field="valid_time")


def test_a_role_whose_interval_ends_before_it_starts_is_refused(directory: Directory) -> None:
    given(actors, Stored("a1", MASHAL_REGISTERED)).when(
        AssignRole(actor="mashal", organisation="hamas", valid_time="2010/2006"), directory
    ).then_raises(InvalidValidTimeError, match="before it starts", field="valid_time")


def test_merge_two_actors_of_the_same_kind(directory: Directory) -> None:
    given(actors, Stored("a1", MASHAL_REGISTERED)).when(
        MergeActors(actor="mashal", merged_actor="mishaal", reason="same person"),
        directory,
    ).then(ActorsMerged(actor_id="mashal", merged_actor_id="mishaal", reason="same person"))


@pytest.mark.parametrize("merged_actor", ["lavrov", "Sergei Lavrov", "Sergey Lavrov"])
def test_an_actor_cannot_be_merged_into_itself(directory: Directory, merged_actor: str) -> None:
    lavrov = ActorRegistered(actor_id="lavrov", kind="person", canonical_name="Sergei Lavrov")
    given(actors, Stored("a1", lavrov)).when(
        MergeActors(actor="lavrov", merged_actor=merged_actor), directory
    ).then_raises(RuleViolationError, match="merged into itself", field="merged_actor")


def test_merging_an_actor_already_merged_records_nothing(directory: Directory) -> None:
    merged = ActorsMerged(actor_id="mashal", merged_actor_id="mishaal")
    history = given(actors, Stored("a1", MASHAL_REGISTERED), Stored("a2", merged))
    # Before the directory has seen the merge...
    history.when(MergeActors(actor="mashal", merged_actor="mishaal"), directory).then()
    # ...and after, when it resolves the merged id to the surviving actor (as the handler's
    # directory does once the merge is appended).
    directory.apply(merged)
    history.when(MergeActors(actor="mashal", merged_actor="mishaal"), directory).then()


def test_merging_an_actor_already_merged_named_by_name_records_nothing(
    directory: Directory,
) -> None:
    rus_mfa = ActorRegistered(
        actor_id="rus_mfa", kind="institution", canonical_name="Russian Ministry of Foreign Affairs"
    )
    directory.apply(_registered("mid_rf", "institution", "MID Rossii"))
    given(
        actors,
        Stored("a1", rus_mfa),
        Stored("a2", ActorsMerged(actor_id="rus_mfa", merged_actor_id="mid_rf")),
    ).when(MergeActors(actor="rus_mfa", merged_actor="MID Rossii"), directory).then()


def test_actors_of_different_kinds_cannot_be_merged(directory: Directory) -> None:
    given(actors, Stored("a1", MASHAL_REGISTERED)).when(
        MergeActors(actor="mashal", merged_actor="Hamas"), directory
    ).then_raises(
        RuleViolationError,
        match="cannot merge organisation 'hamas' into person 'mashal'",
        field="merged_actor",
    )


def test_merging_an_unknown_actor_is_refused(directory: Directory) -> None:
    given(actors, Stored("a1", MASHAL_REGISTERED)).when(
        MergeActors(actor="mashal", merged_actor="Ismail Haniyeh"), directory
    ).then_raises(UnknownActorError, match="Ismail Haniyeh", field="merged_actor")


@pytest.mark.parametrize(
    "command",
    [
        AddAlias(actor="mashal", alias=Alias(text="Khalid Meshal")),
        AssignRole(actor="mashal", organisation="hamas", valid_time="2006/2010"),
        MergeActors(actor="mashal", merged_actor="mishaal"),
        AddSource(stream="actor-mashal", target_event_id="a1", source=SOURCE),
        CorrectEvent(
            stream="actor-mashal",
            target_event_id="a1",
            changes={"canonical_name": "Khalid Meshal"},
            reason="spelling",
        ),
        RetractEvent(stream="actor-mashal", target_event_id="a1", reason="never happened"),
    ],
    ids=lambda c: type(c).__name__,
)
def test_commands_against_an_unregistered_actor_are_refused(
    directory: Directory, command: Any
) -> None:
    given(actors).when(command, directory).then_raises(
        UnknownTargetError, match="not registered", field="actor"
    )


def test_actor_state_keeps_names_and_merges() -> None:
    state = given(
        actors,
        Stored("a1", MASHAL_REGISTERED),
        Stored("a2", AliasAdded(actor_id="mashal", alias=Alias(text="Khalid Mish'al"))),
        Stored("a3", ActorsMerged(actor_id="mashal", merged_actor_id="mishaal")),
    ).state
    assert state.actor_id == "mashal"
    assert state.kind == "person"
    assert state.canonical_name == "Khaled Mashal"
    assert state.names == {"khaled mashal", "khaled meshaal", "khalid mishal"}
    assert state.merged == {"mishaal"}


# == meetings ====================================================================================

MOSCOW = Place(name="Moscow", country="RUS", venue="Institute of Oriental Studies")
SCHEDULED = MeetingScheduled(
    meeting_id="moscow_2024",
    title="Inter-Palestinian meeting in Moscow",
    host_id="ios_ras",
    place=MOSCOW,
    valid_time=vt("[2024-02-20..2024-03-10]", "the end of February or early March"),
    coding=AGREE,
)
CANCELLED = MeetingCancelled(meeting_id="moscow_2024")


def invited(faction_id: str) -> FactionInvited:
    return FactionInvited(meeting_id="moscow_2024", faction_id=faction_id, coding=AGREE)


def confirmed(faction_id: str) -> AttendanceConfirmed:
    return AttendanceConfirmed(meeting_id="moscow_2024", faction_id=faction_id, coding=AGREE)


def declined(faction_id: str) -> AttendanceDeclined:
    return AttendanceDeclined(meeting_id="moscow_2024", faction_id=faction_id, coding=DECLINED)


def leader(
    faction_id: str, person_id: str, name_as_reported: str | None = None
) -> DelegationLeaderNamed:
    return DelegationLeaderNamed(
        meeting_id="moscow_2024",
        faction_id=faction_id,
        person_id=person_id,
        name_as_reported=name_as_reported,
    )


def test_schedule_a_meeting_resolving_host_and_organiser_by_name(directory: Directory) -> None:
    given(meetings).when(
        ScheduleMeeting(
            meeting_id="moscow_2024",
            title="Inter-Palestinian meeting in Moscow",
            host="Institute of Oriental Studies of the Russian Academy of Sciences",
            organiser="Russian Foreign Ministry",
            place=MOSCOW,
            valid_time="[2024-02-20..2024-03-10]",
            valid_time_raw="the end of February or early March",
            attributed_to="Russian Ministry of Foreign Affairs",
            sources=(SOURCE,),
        ),
        directory,
    ).then(
        MeetingScheduled(
            meeting_id="moscow_2024",
            title="Inter-Palestinian meeting in Moscow",
            host_id="ios_ras",
            organiser_id="rus_mfa",
            place=MOSCOW,
            valid_time=vt("[2024-02-20..2024-03-10]", "the end of February or early March"),
            modality="announced",
            attributed_to="Russian Ministry of Foreign Affairs",
            coding=AGREE,
            sources=(SOURCE,),
        )
    )


def test_scheduling_a_meeting_twice_is_refused(directory: Directory) -> None:
    given(meetings, Stored("m1", SCHEDULED)).when(
        ScheduleMeeting(meeting_id="moscow_2024", title="Again", valid_time="2024-02"), directory
    ).then_raises(RuleViolationError, match="already scheduled", field="meeting_id")


@pytest.mark.parametrize("field", ["host", "organiser"])
def test_scheduling_with_an_unknown_host_or_organiser_is_refused(
    directory: Directory, field: str
) -> None:
    names: dict[str, Any] = {field: "Kremlin Palace"}
    command = ScheduleMeeting(meeting_id="moscow_2024", title="t", valid_time="2024-02", **names)
    given(meetings).when(command, directory).then_raises(
        UnknownActorError, match="Kremlin Palace", field=field
    )


def test_scheduling_with_a_bad_valid_time_is_refused(directory: Directory) -> None:
    given(meetings).when(
        ScheduleMeeting(meeting_id="m", title="t", valid_time="late February"), directory
    ).then_raises(InvalidValidTimeError, match="not an EDTF", field="valid_time")


def test_revise_a_meeting_date(directory: Directory) -> None:
    given(meetings, Stored("m1", SCHEDULED)).when(
        ReviseMeetingDate(
            meeting_id="moscow_2024",
            valid_time="2024-02-28/2024-02-29",
            valid_time_raw="February 28-29",
            reason="dates given in an earlier report",
            sources=(SOURCE,),
        ),
        directory,
    ).then(
        MeetingDateRevised(
            meeting_id="moscow_2024",
            valid_time=vt("2024-02-28/2024-02-29", "February 28-29"),
            reason="dates given in an earlier report",
            sources=(SOURCE,),
        )
    )


def test_revising_the_date_of_a_cancelled_meeting_is_refused(directory: Directory) -> None:
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", CANCELLED)).when(
        ReviseMeetingDate(meeting_id="moscow_2024", valid_time="2024-03"), directory
    ).then_raises(
        RuleViolationError,
        match="cannot revise its date: meeting 'moscow_2024' was cancelled",
        field="meeting_id",
    )


def test_revising_with_an_interval_ending_before_it_starts_is_refused(
    directory: Directory,
) -> None:
    given(meetings, Stored("m1", SCHEDULED)).when(
        ReviseMeetingDate(meeting_id="moscow_2024", valid_time="2024-02-29/2024-02-28"), directory
    ).then_raises(InvalidValidTimeError, match="before it starts", field="valid_time")


@pytest.mark.parametrize(
    "command",
    [
        ReviseMeetingDate(meeting_id="moscow_2025", valid_time="2025-03"),
        PostponeMeeting(meeting_id="moscow_2025"),
        CancelMeeting(meeting_id="moscow_2025"),
        InviteFaction(meeting_id="moscow_2025", faction="hamas"),
        ConfirmAttendance(meeting_id="moscow_2025", faction="hamas"),
        DeclineAttendance(meeting_id="moscow_2025", faction="hamas"),
        NameDelegationLeader(meeting_id="moscow_2025", faction="hamas", person="abu_marzook"),
        NameDelegationMember(meeting_id="moscow_2025", faction="hamas", person="abu_marzook"),
    ],
    ids=lambda c: type(c).__name__,
)
def test_commands_against_an_unknown_meeting_are_refused(
    directory: Directory, command: Any
) -> None:
    given(meetings).when(command, directory).then_raises(
        UnknownTargetError, match="'moscow_2025' was never scheduled", field="meeting_id"
    )


@pytest.mark.parametrize(
    "command",
    [
        PostponeMeeting(meeting_id="moscow_2024"),
        CancelMeeting(meeting_id="moscow_2024"),
        InviteFaction(meeting_id="moscow_2024", faction="pflp"),
        ConfirmAttendance(meeting_id="moscow_2024", faction="hamas"),
        DeclineAttendance(meeting_id="moscow_2024", faction="hamas"),
        NameDelegationLeader(meeting_id="moscow_2024", faction="hamas", person="abu_marzook"),
        NameDelegationMember(meeting_id="moscow_2024", faction="hamas", person="abu_marzook"),
    ],
    ids=lambda c: type(c).__name__,
)
def test_a_cancelled_meeting_takes_no_further_commands(directory: Directory, command: Any) -> None:
    given(
        meetings, Stored("m1", SCHEDULED), Stored("m2", invited("hamas")), Stored("m3", CANCELLED)
    ).when(command, directory).then_raises(
        RuleViolationError, match="was cancelled", field="meeting_id"
    )


def test_postpone_a_meeting_to_a_new_window(directory: Directory) -> None:
    given(meetings, Stored("m1", SCHEDULED)).when(
        PostponeMeeting(
            meeting_id="moscow_2024",
            valid_time="2024-03",
            valid_time_raw="March",
            reason="the parties asked for time",
            sources=(LATER_SOURCE,),
        ),
        directory,
    ).then(
        MeetingPostponed(
            meeting_id="moscow_2024",
            valid_time=vt("2024-03", "March"),
            reason="the parties asked for time",
            sources=(LATER_SOURCE,),
        )
    )


def test_postpone_a_meeting_with_no_new_date(directory: Directory) -> None:
    given(meetings, Stored("m1", SCHEDULED)).when(
        PostponeMeeting(meeting_id="moscow_2024"), directory
    ).then(MeetingPostponed(meeting_id="moscow_2024"))


def test_cancel_a_meeting(directory: Directory) -> None:
    given(meetings, Stored("m1", SCHEDULED)).when(
        CancelMeeting(meeting_id="moscow_2024", reason="war", sources=(LATER_SOURCE,)), directory
    ).then(MeetingCancelled(meeting_id="moscow_2024", reason="war", sources=(LATER_SOURCE,)))


def test_cancelling_a_meeting_twice_is_refused(directory: Directory) -> None:
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", CANCELLED)).when(
        CancelMeeting(meeting_id="moscow_2024"), directory
    ).then_raises(RuleViolationError, match="cannot cancel it again", field="meeting_id")


def test_invite_a_faction_named_as_the_press_names_it(directory: Directory) -> None:
    given(meetings, Stored("m1", SCHEDULED)).when(
        InviteFaction(
            meeting_id="moscow_2024",
            faction="Islamic Jihad",
            name_as_reported="Islamic Jihad",
            inviter="Russian Foreign Ministry",
            sources=(SOURCE,),
        ),
        directory,
    ).then(
        FactionInvited(
            meeting_id="moscow_2024",
            faction_id="pij",
            name_as_reported="Islamic Jihad",
            inviter_id="rus_mfa",
            coding=AGREE,
            sources=(SOURCE,),
        )
    )


def test_inviting_an_unknown_faction_suggests_the_closest_names(directory: Directory) -> None:
    error = (
        given(meetings, Stored("m1", SCHEDULED))
        .when(InviteFaction(meeting_id="moscow_2024", faction="Popular Front"), directory)
        .then_raises(UnknownActorError, match="unknown actor 'Popular Front'", field="faction")
    )
    assert error.suggestions == [
        "Popular Front for the Liberation of Palestine",
        "Democratic Front for the Liberation of Palestine",
    ]


@pytest.mark.parametrize("faction", ["abu_marzook", "Mousa Abu Marzook"])
def test_a_person_cannot_be_invited_as_a_faction(directory: Directory, faction: str) -> None:
    given(meetings, Stored("m1", SCHEDULED)).when(
        InviteFaction(meeting_id="moscow_2024", faction=faction), directory
    ).then_raises(RuleViolationError, match=r"\(abu_marzook\) is a person", field="faction")


@pytest.mark.parametrize("faction", ["pij", "Islamic Jihad", "Palestinian Islamic Jihad"])
def test_inviting_a_faction_twice_is_refused(directory: Directory, faction: str) -> None:
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", invited("pij"))).when(
        InviteFaction(meeting_id="moscow_2024", faction=faction), directory
    ).then_raises(RuleViolationError, match="'pij' is already invited", field="faction")


def test_an_unknown_inviter_is_refused(directory: Directory) -> None:
    given(meetings, Stored("m1", SCHEDULED)).when(
        InviteFaction(meeting_id="moscow_2024", faction="hamas", inviter="Kremlin Palace"),
        directory,
    ).then_raises(UnknownActorError, match="Kremlin Palace", field="inviter")


def test_an_invited_faction_confirms(directory: Directory) -> None:
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", invited("hamas"))).when(
        ConfirmAttendance(meeting_id="moscow_2024", faction="Hamas", sources=(SOURCE,)),
        directory,
    ).then(
        AttendanceConfirmed(
            meeting_id="moscow_2024", faction_id="hamas", coding=AGREE, sources=(SOURCE,)
        )
    )


def test_an_invited_faction_declines(directory: Directory) -> None:
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", invited("pflp"))).when(
        DeclineAttendance(meeting_id="moscow_2024", faction="PFLP", reason="boycott"), directory
    ).then(
        AttendanceDeclined(
            meeting_id="moscow_2024", faction_id="pflp", reason="boycott", coding=DECLINED
        )
    )


@pytest.mark.parametrize(
    "command",
    [
        ConfirmAttendance(meeting_id="moscow_2024", faction="dflp"),
        DeclineAttendance(meeting_id="moscow_2024", faction="dflp"),
        NameDelegationLeader(meeting_id="moscow_2024", faction="dflp", person="bogdanov"),
        NameDelegationMember(meeting_id="moscow_2024", faction="dflp", person="bogdanov"),
    ],
    ids=lambda c: type(c).__name__,
)
def test_a_faction_that_was_not_invited_is_refused(directory: Directory, command: Any) -> None:
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", invited("hamas"))).when(
        command, directory
    ).then_raises(
        RuleViolationError, match="'dflp' was not invited to meeting 'moscow_2024'", field="faction"
    )


def test_confirming_twice_records_nothing(directory: Directory) -> None:
    given(
        meetings,
        Stored("m1", SCHEDULED),
        Stored("m2", invited("hamas")),
        Stored("m3", confirmed("hamas")),
    ).when(ConfirmAttendance(meeting_id="moscow_2024", faction="hamas"), directory).then()


def test_declining_twice_records_nothing(directory: Directory) -> None:
    given(
        meetings,
        Stored("m1", SCHEDULED),
        Stored("m2", invited("hamas")),
        Stored("m3", declined("hamas")),
    ).when(DeclineAttendance(meeting_id="moscow_2024", faction="hamas"), directory).then()


def test_a_faction_that_declined_may_still_confirm(directory: Directory) -> None:
    given(
        meetings,
        Stored("m1", SCHEDULED),
        Stored("m2", invited("hamas")),
        Stored("m3", declined("hamas")),
    ).when(ConfirmAttendance(meeting_id="moscow_2024", faction="hamas"), directory).then(
        confirmed("hamas")
    )


@pytest.mark.parametrize(
    ("faction", "person", "person_id"),
    [
        ("hamas", "Mousa Abu Marzook", "abu_marzook"),
        ("Fatah", "Azzam al-Ahmad", "azzam_al_ahmad"),
        ("fatah", "Azzam Ahmed", "azzam_al_ahmad"),
        ("hamas", "abu_marzook", "abu_marzook"),
    ],
)
def test_name_a_delegation_leader(
    directory: Directory, faction: str, person: str, person_id: str
) -> None:
    faction_id = faction.lower()
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", invited(faction_id))).when(
        NameDelegationLeader(
            meeting_id="moscow_2024",
            faction=faction,
            person=person,
            name_as_reported=person,
            title_as_reported="head of the delegation",
            sources=(SOURCE,),
        ),
        directory,
    ).then(
        DelegationLeaderNamed(
            meeting_id="moscow_2024",
            faction_id=faction_id,
            person_id=person_id,
            name_as_reported=person,
            title_as_reported="head of the delegation",
            sources=(SOURCE,),
        )
    )


def test_the_faction_breaks_a_tie_between_namesakes_when_naming_a_leader(
    directory: Directory,
) -> None:
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", invited("hamas"))).when(
        NameDelegationLeader(meeting_id="moscow_2024", faction="hamas", person="Khalid Meshal"),
        directory,
    ).then(leader("hamas", "mashal", "Khalid Meshal"))


@pytest.mark.parametrize(
    ("command", "event"),
    [(NameDelegationLeader, DelegationLeaderNamed), (NameDelegationMember, DelegationMemberNamed)],
)
@pytest.mark.parametrize(
    ("person", "reported"), [("Azzam Ahmed", "Azzam Ahmed"), ("azzam_al_ahmad", None)]
)
def test_a_delegate_named_by_a_spelling_keeps_it_as_reported(
    directory: Directory, command: Any, event: Any, person: str, reported: str | None
) -> None:
    """Like an interaction's participants: the name a source used, when no other is given."""
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", invited("fatah"))).when(
        command(meeting_id="moscow_2024", faction="fatah", person=person), directory
    ).then(
        event(
            meeting_id="moscow_2024",
            faction_id="fatah",
            person_id="azzam_al_ahmad",
            name_as_reported=reported,
        )
    )


@pytest.mark.parametrize("person", ["pij", "Islamic Jihad", "Russia"])
def test_naming_a_delegation_leader_who_is_not_a_person_is_refused(
    directory: Directory, person: str
) -> None:
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", invited("hamas"))).when(
        NameDelegationLeader(meeting_id="moscow_2024", faction="hamas", person=person), directory
    ).then_raises(
        RuleViolationError, match=r"is an? (organisation|state), not a person", field="person"
    )


def test_naming_an_unregistered_delegation_leader_is_refused(directory: Directory) -> None:
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", invited("hamas"))).when(
        NameDelegationLeader(meeting_id="moscow_2024", faction="hamas", person="Ismail Haniyeh"),
        directory,
    ).then_raises(UnknownActorError, match="unknown actor 'Ismail Haniyeh'", field="person")


def test_naming_the_same_leader_twice_records_nothing(directory: Directory) -> None:
    given(
        meetings,
        Stored("m1", SCHEDULED),
        Stored("m2", invited("hamas")),
        Stored("m3", leader("hamas", "abu_marzook")),
    ).when(
        NameDelegationLeader(meeting_id="moscow_2024", faction="hamas", person="Mousa Abu Marzook"),
        directory,
    ).then()


def test_naming_another_leader_replaces_the_first(directory: Directory) -> None:
    history = given(
        meetings,
        Stored("m1", SCHEDULED),
        Stored("m2", invited("hamas")),
        Stored("m3", leader("hamas", "abu_marzook")),
    )
    history.when(
        NameDelegationLeader(meeting_id="moscow_2024", faction="hamas", person="mashal"), directory
    ).then(leader("hamas", "mashal"))


def test_name_a_delegation_member(directory: Directory) -> None:
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", invited("hamas"))).when(
        NameDelegationMember(
            meeting_id="moscow_2024",
            faction="hamas",
            person="Khalid Meshal",
            name_as_reported="Khalid Meshal",
        ),
        directory,
    ).then(
        DelegationMemberNamed(
            meeting_id="moscow_2024",
            faction_id="hamas",
            person_id="mashal",
            name_as_reported="Khalid Meshal",
        )
    )


def test_naming_the_same_member_twice_records_nothing(directory: Directory) -> None:
    member = DelegationMemberNamed(meeting_id="moscow_2024", faction_id="hamas", person_id="mashal")
    given(
        meetings, Stored("m1", SCHEDULED), Stored("m2", invited("hamas")), Stored("m3", member)
    ).when(
        NameDelegationMember(meeting_id="moscow_2024", faction="hamas", person="mashal"), directory
    ).then()


def test_an_organisation_cannot_be_a_delegation_member(directory: Directory) -> None:
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", invited("hamas"))).when(
        NameDelegationMember(meeting_id="moscow_2024", faction="hamas", person="Islamic Jihad"),
        directory,
    ).then_raises(RuleViolationError, match="not a person", field="person")


def test_meeting_status_follows_postponement_revision_and_cancellation() -> None:
    postponed = MeetingPostponed(meeting_id="moscow_2024")
    revised = MeetingDateRevised(meeting_id="moscow_2024", valid_time=vt("2024-02-28/2024-02-29"))
    history = [Stored("m1", SCHEDULED)]
    assert given(meetings, *history).state.status == "scheduled"
    assert given(meetings, *history).state.meeting_id == "moscow_2024"
    history.append(Stored("m2", postponed))
    assert given(meetings, *history).state.status == "postponed"
    history.append(Stored("m3", revised))
    assert given(meetings, *history).state.status == "scheduled"
    history.append(Stored("m4", revised))  # a revision of a scheduled meeting keeps it scheduled
    assert given(meetings, *history).state.status == "scheduled"
    history.append(Stored("m5", CANCELLED))
    assert given(meetings, *history).state.status == "cancelled"


def test_meeting_state_keeps_invitations_attendance_and_delegations() -> None:
    member = DelegationMemberNamed(meeting_id="moscow_2024", faction_id="hamas", person_id="mashal")
    state = given(
        meetings,
        Stored("m1", SCHEDULED),
        *(Stored(f"i-{f}", invited(f)) for f in ("hamas", "fatah", "pij")),
        Stored("c1", confirmed("hamas")),
        Stored("c2", declined("fatah")),
        Stored("c3", confirmed("fatah")),  # changed its mind: no longer declined
        Stored("c4", declined("pij")),
        Stored("l1", leader("hamas", "abu_marzook")),
        Stored("l2", leader("fatah", "azzam_al_ahmad")),
        Stored("l3", leader("hamas", "mashal")),  # a later report names another leader
        Stored("d1", member),
    ).state
    assert state.invited == {"hamas", "fatah", "pij"}
    assert state.confirmed == {"hamas", "fatah"}
    assert state.declined == {"pij"}
    assert state.leaders == {"hamas": "mashal", "fatah": "azzam_al_ahmad"}
    assert state.members == {("hamas", "mashal")}


def test_a_confirmed_faction_that_declines_leaves_the_confirmed_set() -> None:
    state = given(
        meetings,
        Stored("m1", SCHEDULED),
        Stored("m2", invited("hamas")),
        Stored("m3", confirmed("hamas")),
        Stored("m4", declined("hamas")),
    ).state
    assert state.confirmed == frozenset()
    assert state.declined == {"hamas"}


# == declarations ================================================================================

DRAFTED = DeclarationDrafted(
    declaration_id="moscow_declaration_2019",
    title="Moscow Declaration",
    meeting_id="moscow_2019",
    valid_time=vt("2019-02", "February 2019"),
)


def test_draft_a_declaration() -> None:
    given(declarations).when(
        DraftDeclaration(
            declaration_id="moscow_declaration_2019",
            title="Moscow Declaration",
            meeting_id="moscow_2019",
            valid_time="2019-02",
            valid_time_raw="February 2019",
            sources=(SOURCE,),
        )
    ).then(
        DeclarationDrafted(
            declaration_id="moscow_declaration_2019",
            title="Moscow Declaration",
            meeting_id="moscow_2019",
            valid_time=vt("2019-02", "February 2019"),
            sources=(SOURCE,),
        )
    )


def test_draft_a_declaration_with_no_date() -> None:
    given(declarations).when(DraftDeclaration(declaration_id="d", title="Draft")).then(
        DeclarationDrafted(declaration_id="d", title="Draft")
    )


def test_drafting_a_declaration_twice_is_refused() -> None:
    given(declarations, Stored("d1", DRAFTED)).when(
        DraftDeclaration(declaration_id="moscow_declaration_2019", title="Moscow Declaration")
    ).then_raises(RuleViolationError, match="already drafted", field="declaration_id")


def test_a_party_signs(directory: Directory) -> None:
    given(declarations, Stored("d1", DRAFTED)).when(
        SignDeclaration(
            declaration_id="moscow_declaration_2019",
            signatory="Fatah",
            name_as_reported="Fatah",
            valid_time="2019-02",
            sources=(SOURCE,),
        ),
        directory,
    ).then(
        DeclarationSigned(
            declaration_id="moscow_declaration_2019",
            signatory_id="fatah",
            name_as_reported="Fatah",
            valid_time=vt("2019-02"),
            coding=SIGNED,
            sources=(SOURCE,),
        )
    )


@pytest.mark.parametrize(
    "command",
    [
        SignDeclaration(declaration_id="moscow_declaration_2020", signatory="fatah"),
        RefuseSignature(declaration_id="moscow_declaration_2020", refuser="hamas"),
    ],
    ids=lambda c: type(c).__name__,
)
def test_signing_or_refusing_an_unknown_declaration_is_refused(
    directory: Directory, command: Any
) -> None:
    given(declarations).when(command, directory).then_raises(
        UnknownTargetError,
        match="'moscow_declaration_2020' was never drafted",
        field="declaration_id",
    )


def test_signing_twice_is_refused(directory: Directory) -> None:
    signed = DeclarationSigned(
        declaration_id="moscow_declaration_2019", signatory_id="fatah", coding=SIGNED
    )
    given(declarations, Stored("d1", DRAFTED), Stored("d2", signed)).when(
        SignDeclaration(declaration_id="moscow_declaration_2019", signatory="Fatah"), directory
    ).then_raises(RuleViolationError, match="'fatah' already signed", field="signatory")


def test_an_unknown_signatory_is_refused(directory: Directory) -> None:
    given(declarations, Stored("d1", DRAFTED)).when(
        SignDeclaration(declaration_id="moscow_declaration_2019", signatory="Fatehh"), directory
    ).then_raises(UnknownActorError, match="Fatehh", field="signatory")


def test_a_party_refuses_to_sign(directory: Directory) -> None:
    given(declarations, Stored("d1", DRAFTED)).when(
        RefuseSignature(
            declaration_id="moscow_declaration_2019",
            refuser="Islamic Jihad",
            name_as_reported="Islamic Jihad",
            reason="the wording on the PLO",
            valid_time="2019-02",
            valid_time_raw="February 2019",
        ),
        directory,
    ).then(
        SignatureRefused(
            declaration_id="moscow_declaration_2019",
            refuser_id="pij",
            name_as_reported="Islamic Jihad",
            reason="the wording on the PLO",
            valid_time=vt("2019-02", "February 2019"),
            coding=REFUSED,
        )
    )


def test_refusing_after_signing_is_refused(directory: Directory) -> None:
    signed = DeclarationSigned(
        declaration_id="moscow_declaration_2019", signatory_id="hamas", coding=SIGNED
    )
    given(declarations, Stored("d1", DRAFTED), Stored("d2", signed)).when(
        RefuseSignature(declaration_id="moscow_declaration_2019", refuser="Hamas"), directory
    ).then_raises(RuleViolationError, match="'hamas' signed", field="refuser")


def test_refusing_twice_is_refused(directory: Directory) -> None:
    refused = SignatureRefused(
        declaration_id="moscow_declaration_2019", refuser_id="hamas", coding=REFUSED
    )
    given(declarations, Stored("d1", DRAFTED), Stored("d2", refused)).when(
        RefuseSignature(declaration_id="moscow_declaration_2019", refuser="hamas"), directory
    ).then_raises(RuleViolationError, match="'hamas' already refused", field="refuser")


def test_an_unknown_refuser_is_refused(directory: Directory) -> None:
    given(declarations, Stored("d1", DRAFTED)).when(
        RefuseSignature(declaration_id="moscow_declaration_2019", refuser="Islamic Resistance"),
        directory,
    ).then_raises(UnknownActorError, match="Islamic Resistance", field="refuser")


def test_declaration_state_keeps_signatories_and_refusers() -> None:
    state = given(
        declarations,
        Stored("d1", DRAFTED),
        Stored("d2", DeclarationSigned(declaration_id="x", signatory_id="fatah", coding=SIGNED)),
        Stored("d3", SignatureRefused(declaration_id="x", refuser_id="hamas", coding=REFUSED)),
        Stored("d4", SignatureRefused(declaration_id="x", refuser_id="pij", coding=REFUSED)),
    ).state
    assert state.declaration_id == "moscow_declaration_2019"
    assert state.title == "Moscow Declaration"
    assert state.signed == {"fatah"}
    assert state.refused == {"hamas", "pij"}


# == interactions ================================================================================

CALL_PARTICIPANTS = (
    ParticipantRef(
        actor="Azzam Ahmed",
        role="initiator",
        organisation="fatah",
        name_as_reported="Azzam Ahmed",
        title_as_reported="a member of Fatah's Executive Committee",
    ),
    ParticipantRef(actor="bogdanov", role="recipient", name_as_reported="Mikhail Bogdanov"),
)
RESOLVED_CALL_PARTICIPANTS = (
    Participant(
        actor_id="azzam_al_ahmad",
        role="initiator",
        name_as_reported="Azzam Ahmed",
        title_as_reported="a member of Fatah's Executive Committee",
    ),
    Participant(actor_id="bogdanov", role="recipient", name_as_reported="Mikhail Bogdanov"),
)


def record(kind: Any, **fields: Any) -> RecordInteraction:
    """A command recording the Bogdanov call, as ``kind``, with ``fields`` on top."""
    base: dict[str, Any] = {
        "kind": kind,
        "interaction_id": "call_bogdanov_al_ahmad_2024",
        "participants": CALL_PARTICIPANTS,
        "valid_time": "../2024-02",
        "valid_time_raw": "undated; before the article",
    }
    return RecordInteraction(**{**base, **fields})


WHEN = vt("../2024-02", "undated; before the article")


@pytest.mark.parametrize(
    ("kind", "fields", "event_type", "expected_coding"),
    [
        ("phone_call", {}, PhoneCallHeld, PHONE),
        ("meeting", {"format": "bilateral"}, MeetingHeld, MEETING),
        ("visit", {}, VisitMade, VISIT),
        ("address", {"quote": "Dear guests, dear friends..."}, AddressDelivered, ADDRESS),
        (
            "contacts",
            {"cardinality_text": "on several occasions", "min_count": 2},
            ContactsReported,
            CONTACTS,
        ),
        (
            "statement",
            {"claim": "avoids public contact", "negated": True},
            StatementReported,
            STATEMENT,
        ),
        ("apology", {"subject": "the refusals to sign"}, ApologyIssued, APOLOGY),
    ],
)
def test_each_kind_records_its_event_with_its_coding(
    directory: Directory,
    kind: str,
    fields: dict[str, Any],
    event_type: type[Any],
    expected_coding: Coding,
) -> None:
    given(interactions).when(
        record(
            kind,
            place=Place(name="Moscow", country="RUS"),
            topics=("Gaza", "inter-Palestinian meeting"),
            modality="reported",
            attributed_to="Russian Ministry of Foreign Affairs",
            meeting_id="moscow_2024",
            sources=(SOURCE,),
            **fields,
        ),
        directory,
    ).then(
        event_type(
            interaction_id="call_bogdanov_al_ahmad_2024",
            participants=RESOLVED_CALL_PARTICIPANTS,
            valid_time=WHEN,
            place=Place(name="Moscow", country="RUS"),
            topics=("Gaza", "inter-Palestinian meeting"),
            modality="reported",
            attributed_to="Russian Ministry of Foreign Affairs",
            coding=expected_coding,
            sources=(SOURCE,),
            meeting_id="moscow_2024",
            **fields,
        )
    )


def test_a_participant_named_by_name_keeps_the_name_as_reported(directory: Directory) -> None:
    command = RecordInteraction(
        kind="visit",
        interaction_id="visit_mashal_moscow_2006_03",
        participants=(
            ParticipantRef(actor="Khalid Meshal", role="visitor", organisation="hamas"),
            ParticipantRef(actor="russia", role="host", name_as_reported="Moscow"),
            ParticipantRef(actor="Russian Foreign Ministry", role="host"),
        ),
        valid_time="2006-03",
        valid_time_raw="March 2006",
        contexts=("diplomatic",),
    )
    given(interactions).when(command, directory).then(
        VisitMade(
            interaction_id="visit_mashal_moscow_2006_03",
            participants=(
                Participant(actor_id="mashal", role="visitor", name_as_reported="Khalid Meshal"),
                Participant(actor_id="russia", role="host", name_as_reported="Moscow"),
                Participant(
                    actor_id="rus_mfa", role="host", name_as_reported="Russian Foreign Ministry"
                ),
            ),
            valid_time=vt("2006-03", "March 2006"),
            coding=coding("042", 1.9, 1, "CONSULT", "visit", plover_contexts=("diplomatic",)),
        )
    )


def test_an_analyst_overrides_the_coding(directory: Directory) -> None:
    event = (
        given(interactions)
        .when(
            record(
                "meeting",
                coding=CodingOverride(plover_mode="multilateral"),
                contexts=("diplomatic",),
            ),
            directory,
        )
        .events[0]
    )
    assert isinstance(event, MeetingHeld)
    assert event.coding == coding(
        "044", 2.5, 1, "CONSULT", "multilateral", plover_contexts=("diplomatic",), overridden=True
    )


def test_a_malformed_coding_override_is_refused(directory: Directory) -> None:
    given(interactions).when(
        record("meeting", coding=CodingOverride(cameo="41")), directory
    ).then_raises(InvalidCommandError, match="not a CAMEO code", field="coding.cameo")


@pytest.mark.parametrize(
    ("kind", "fields", "missing"),
    [
        ("contacts", {"min_count": 3}, "cardinality_text"),
        ("statement", {"negated": True}, "claim"),
    ],
)
def test_a_kind_without_its_required_field_is_refused(
    directory: Directory, kind: str, fields: dict[str, Any], missing: str
) -> None:
    given(interactions).when(record(kind, **fields), directory).then_raises(
        InvalidCommandError, match=f"a {kind} interaction needs '{missing}'", field=missing
    )


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("phone_call", "quote", "Hello"),
        ("phone_call", "negated", True),
        ("meeting", "claim", "they met"),
        ("visit", "format", "bilateral"),
        ("address", "subject", "an apology"),
        ("contacts", "quote", "Hello"),
        ("statement", "min_count", 2),
        ("apology", "cardinality_text", "twice"),
    ],
)
def test_a_field_of_another_kind_is_refused(
    directory: Directory, kind: str, field: str, value: Any
) -> None:
    required = {"contacts": {"cardinality_text": "often"}, "statement": {"claim": "c"}}
    fields = {**required.get(kind, {}), field: value}
    given(interactions).when(record(kind, **fields), directory).then_raises(
        InvalidCommandError, match=f"'{field}' does not apply to a {kind}", field=field
    )


def test_an_interaction_needs_participants(directory: Directory) -> None:
    given(interactions).when(record("phone_call", participants=()), directory).then_raises(
        InvalidCommandError, match="at least one participant", field="participants"
    )


def test_recording_an_interaction_twice_is_refused(directory: Directory) -> None:
    call = PhoneCallHeld(
        interaction_id="call_bogdanov_al_ahmad_2024",
        participants=RESOLVED_CALL_PARTICIPANTS,
        valid_time=WHEN,
        coding=PHONE,
    )
    given(interactions, Stored("i1", call)).when(record("phone_call"), directory).then_raises(
        RuleViolationError, match="already recorded; correct it instead", field="interaction_id"
    )


def test_an_interaction_with_a_bad_valid_time_is_refused(directory: Directory) -> None:
    given(interactions).when(record("phone_call", valid_time="last week"), directory).then_raises(
        InvalidValidTimeError, match="not an EDTF", field="valid_time"
    )


def test_an_ambiguous_participant_name_is_refused_with_the_candidates(
    directory: Directory,
) -> None:
    participants = (ParticipantRef(actor="Khalid Meshal", role="visitor"),)
    error = (
        given(interactions)
        .when(record("visit", participants=participants, valid_time="2006-03"), directory)
        .then_raises(AmbiguousActorError, match="could be any of", field="participants[0].actor")
    )
    assert [(c.actor_id, c.canonical_name) for c in error.candidates] == [
        ("mashal", "Khaled Mashal"),
        ("mishaal", "Khalid Mishaal"),
    ]


def test_an_organisation_outside_its_dates_does_not_settle_an_ambiguity(
    directory: Directory,
) -> None:
    # Mashal's Hamas role is dated 2006/2010: in 2012 "Hamas" is no evidence for him.
    participants = (ParticipantRef(actor="Khalid Meshal", role="visitor", organisation="hamas"),)
    given(interactions).when(
        record("visit", participants=participants, valid_time="2012-03"), directory
    ).then_raises(AmbiguousActorError, match="Khalid Meshal", field="participants[0].actor")


def test_an_unknown_participant_is_refused_with_the_closest_names(directory: Directory) -> None:
    participants = (
        CALL_PARTICIPANTS[1],
        ParticipantRef(actor="Sergei Lavrenko", role="recipient"),
    )
    error = (
        given(interactions)
        .when(record("phone_call", participants=participants), directory)
        .then_raises(
            UnknownActorError, match="did you mean 'Sergei Lavrov'", field="participants[1].actor"
        )
    )
    assert error.suggestions == ["Sergei Lavrov"]
    assert error.name == "Sergei Lavrenko"


def test_interaction_state_knows_its_id_and_kind() -> None:
    call = PhoneCallHeld(
        interaction_id="c", participants=RESOLVED_CALL_PARTICIPANTS, valid_time=WHEN, coding=PHONE
    )
    state = given(interactions, Stored("i1", call)).state
    assert state.interaction_id == "c"
    assert state.kind == "PhoneCallHeld"
    assert state.record.facts == {"i1": call}


# == amendments, on every aggregate ==============================================================

CALL = PhoneCallHeld(
    interaction_id="call_bogdanov_al_ahmad_2024",
    participants=RESOLVED_CALL_PARTICIPANTS,
    valid_time=WHEN,
    coding=PHONE,
)
MASHAL_ROLE = RoleAssigned(actor_id="mashal", organisation_id="hamas", valid_time=vt("2006/2010"))


class Amendable(msgspec.Struct, frozen=True, kw_only=True):
    """A stream whose first event, ``f1``, is a fact to amend, and what a correction of it may
    change; ``f2`` is a second event (for an interaction, an amendment: its only fact is f1)."""

    aggregate: Any
    stream: str
    history: tuple[Stored, ...]
    field: str
    value: Any
    identity: str
    empty_stream_field: str


AMENDABLE = {
    "actor": Amendable(
        aggregate=actors,
        stream="actor-mashal",
        history=(Stored("f1", MASHAL_REGISTERED), Stored("f2", MASHAL_ROLE)),
        field="canonical_name",
        value="Khalid Meshal",
        identity="actor_id",
        empty_stream_field="actor",
    ),
    "meeting": Amendable(
        aggregate=meetings,
        stream="meeting-moscow_2024",
        history=(Stored("f1", SCHEDULED), Stored("f2", invited("hamas"))),
        field="title",
        value="Inter-Palestinian talks in Moscow",
        identity="meeting_id",
        empty_stream_field="stream",
    ),
    "declaration": Amendable(
        aggregate=declarations,
        stream="declaration-moscow_declaration_2019",
        history=(
            Stored("f1", DRAFTED),
            Stored(
                "f2",
                SignatureRefused(
                    declaration_id="moscow_declaration_2019", refuser_id="hamas", coding=REFUSED
                ),
            ),
        ),
        field="title",
        value="The Moscow Declaration",
        identity="declaration_id",
        empty_stream_field="declaration_id",
    ),
    "interaction": Amendable(
        aggregate=interactions,
        stream="interaction-call_bogdanov_al_ahmad_2024",
        history=(
            Stored("f1", CALL),
            Stored("f2", SourceAdded(target_event_id="f1", source=LATER_SOURCE)),
        ),
        field="attributed_to",
        value="Russian Ministry of Foreign Affairs",
        identity="interaction_id",
        empty_stream_field="stream",
    ),
}
amendable = pytest.mark.parametrize("case", list(AMENDABLE.values()), ids=list(AMENDABLE))


def _aggregate(case: Amendable) -> Aggregate:
    aggregate: Aggregate = case.aggregate
    return aggregate


@amendable
def test_add_a_source(case: Amendable, directory: Directory) -> None:
    given(_aggregate(case), *case.history).when(
        AddSource(stream=case.stream, target_event_id="f1", source=LATER_SOURCE), directory
    ).then(SourceAdded(target_event_id="f1", source=LATER_SOURCE))


@amendable
def test_correct_a_fact(case: Amendable, directory: Directory) -> None:
    given(_aggregate(case), *case.history).when(
        CorrectEvent(
            stream=case.stream,
            target_event_id="f1",
            changes={case.field: case.value},
            reason="a later report",
            sources=(LATER_SOURCE,),
        ),
        directory,
    ).then(
        EventCorrected(
            target_event_id="f1",
            changes={case.field: case.value},
            reason="a later report",
            sources=(LATER_SOURCE,),
        )
    )


@amendable
def test_retract_a_fact(case: Amendable, directory: Directory) -> None:
    given(_aggregate(case), *case.history).when(
        RetractEvent(
            stream=case.stream, target_event_id="f1", reason="misreported", sources=(SOURCE,)
        ),
        directory,
    ).then(EventRetracted(target_event_id="f1", reason="misreported", sources=(SOURCE,)))


def _amendments(stream: str, target: str) -> list[AddSource | CorrectEvent | RetractEvent]:
    return [
        AddSource(stream=stream, target_event_id=target, source=LATER_SOURCE),
        CorrectEvent(stream=stream, target_event_id=target, changes={"reason": "x"}, reason="r"),
        RetractEvent(stream=stream, target_event_id=target, reason="r"),
    ]


ACTIONS = ("add a source to", "correct", "retract")


@amendable
@pytest.mark.parametrize("target", ["nope", "f2-amendment"])
def test_amending_an_event_this_stream_did_not_record_is_refused(
    case: Amendable, directory: Directory, target: str
) -> None:
    # "f2-amendment" is a real event id, but of an amendment, not of a fact.
    amendment = Stored("f2-amendment", SourceAdded(target_event_id="f1", source=LATER_SOURCE))
    stream = given(_aggregate(case), *case.history, amendment)
    for action, command in zip(ACTIONS, _amendments(case.stream, target), strict=True):
        stream.when(command, directory).then_raises(
            UnknownTargetError,
            match=f"cannot {action} event {target}: this stream recorded no such fact",
            field="target_event_id",
        )


@amendable
def test_amending_a_retracted_event_is_refused(case: Amendable, directory: Directory) -> None:
    retracted = Stored("r1", EventRetracted(target_event_id="f1", reason="misreported"))
    stream = given(_aggregate(case), *case.history, retracted)
    for action, command in zip(ACTIONS, _amendments(case.stream, "f1"), strict=True):
        stream.when(command, directory).then_raises(
            RuleViolationError,
            match=f"cannot {action} event f1: it was already retracted",
            field="target_event_id",
        )


@amendable
def test_amendments_on_an_empty_stream_are_refused(case: Amendable, directory: Directory) -> None:
    for command in _amendments(case.stream, "f1"):
        given(_aggregate(case)).when(command, directory).then_raises(
            UnknownTargetError, match=None, field=case.empty_stream_field
        )


@amendable
@pytest.mark.parametrize("name", ["nonsense", "type", "event_id"])
def test_correcting_a_field_the_event_does_not_have_is_refused(
    case: Amendable, directory: Directory, name: str
) -> None:
    given(_aggregate(case), *case.history).when(
        CorrectEvent(stream=case.stream, target_event_id="f1", changes={name: "x"}, reason="r"),
        directory,
    ).then_raises(InvalidCommandError, match=f"has no field '{name}'", field=f"changes.{name}")


@amendable
def test_correcting_the_identity_of_a_fact_is_refused(
    case: Amendable, directory: Directory
) -> None:
    given(_aggregate(case), *case.history).when(
        CorrectEvent(
            stream=case.stream,
            target_event_id="f1",
            changes={case.identity: "someone_else"},
            reason="r",
        ),
        directory,
    ).then_raises(
        InvalidCommandError, match="identifies the fact", field=f"changes.{case.identity}"
    )


@amendable
@pytest.mark.parametrize("value", [42, True, {"not": "text"}])
def test_a_correction_with_a_value_of_the_wrong_type_is_refused(
    case: Amendable, directory: Directory, value: Any
) -> None:
    given(_aggregate(case), *case.history).when(
        CorrectEvent(
            stream=case.stream, target_event_id="f1", changes={case.field: value}, reason="r"
        ),
        directory,
    ).then_raises(
        InvalidCommandError,
        match="the corrected event would be invalid",
        field=f"changes.{case.field}",
    )


@amendable
def test_evolve_applies_a_correction_to_the_fact(case: Amendable) -> None:
    original = case.history[0].event
    correction = EventCorrected(
        target_event_id="f1", changes={case.field: case.value}, reason="a later report"
    )
    state = given(_aggregate(case), *case.history, Stored("c1", correction)).state
    assert state.record.facts["f1"] == msgspec.structs.replace(original, **{case.field: case.value})
    assert getattr(state.record.facts["f1"], case.field) == case.value
    before = given(_aggregate(case), *case.history).state.record.facts
    assert state.record.facts.keys() == before.keys()
    assert {k: v for k, v in state.record.facts.items() if k != "f1"} == {
        k: v for k, v in before.items() if k != "f1"
    }
    assert state.record.retracted == frozenset()


@amendable
def test_evolve_marks_a_retraction(case: Amendable) -> None:
    retraction = EventRetracted(target_event_id="f1", reason="misreported")
    before = given(_aggregate(case), *case.history).state.record
    state = given(_aggregate(case), *case.history, Stored("r1", retraction)).state
    assert state.record.retracted == {"f1"}
    assert state.record.facts == before.facts  # the log keeps the fact; views drop it
    assert "r1" not in state.record.facts  # an amendment is not a fact


@amendable
def test_evolve_keeps_a_fact_unchanged_when_a_source_is_added(case: Amendable) -> None:
    added = SourceAdded(target_event_id="f1", source=LATER_SOURCE)
    before = given(_aggregate(case), *case.history).state.record
    after = given(_aggregate(case), *case.history, Stored("s1", added)).state.record
    assert after == before


def test_a_valid_time_correction_given_as_edtf_is_converted(directory: Directory) -> None:
    corrected = (
        given(interactions, Stored("f1", CALL))
        .when(
            CorrectEvent(
                stream="interaction-call_bogdanov_al_ahmad_2024",
                target_event_id="f1",
                changes={"valid_time": "2024-02-12"},
                reason="the ministry's own release is dated",
            ),
            directory,
        )
        .then(
            EventCorrected(
                target_event_id="f1",
                changes={"valid_time": msgspec.to_builtins(vt("2024-02-12"))},
                reason="the ministry's own release is dated",
            )
        )
    )
    state = given(interactions, Stored("f1", CALL), Stored("c1", corrected[0])).state
    fact = state.record.facts["f1"]
    assert isinstance(fact, PhoneCallHeld)
    assert fact.valid_time == vt("2024-02-12")
    assert fact.participants == CALL.participants


def test_a_role_valid_time_correction_given_as_edtf_is_converted(directory: Directory) -> None:
    stream = given(actors, Stored("f1", MASHAL_REGISTERED), Stored("f2", MASHAL_ROLE))
    [correction] = stream.when(
        CorrectEvent(
            stream="actor-mashal",
            target_event_id="f2",
            changes={"valid_time": "1996/2017"},
            reason="he led the politburo from 1996 to 2017",
        ),
        directory,
    ).events
    assert isinstance(correction, EventCorrected)
    assert correction.changes == {"valid_time": msgspec.to_builtins(vt("1996/2017"))}
    state = given(
        actors, Stored("f1", MASHAL_REGISTERED), Stored("f2", MASHAL_ROLE), Stored("c", correction)
    ).state
    assert state.record.facts["f2"] == msgspec.structs.replace(
        MASHAL_ROLE, valid_time=vt("1996/2017")
    )


def test_a_correction_that_empties_a_required_field_is_refused(directory: Directory) -> None:
    given(meetings, Stored("f1", SCHEDULED)).when(
        CorrectEvent(
            stream="meeting-moscow_2024", target_event_id="f1", changes={"title": None}, reason="r"
        ),
        directory,
    ).then_raises(InvalidCommandError, match="would be invalid", field="changes.title")


def test_a_valid_time_correction_that_is_not_edtf_is_refused(directory: Directory) -> None:
    given(interactions, Stored("f1", CALL)).when(
        CorrectEvent(
            stream="interaction-call_bogdanov_al_ahmad_2024",
            target_event_id="f1",
            changes={"valid_time": "mid-February"},
            reason="r",
        ),
        directory,
    ).then_raises(InvalidValidTimeError, match="not an EDTF", field="changes.valid_time")


def test_a_correction_of_a_nested_value_is_checked_in_full(directory: Directory) -> None:
    given(interactions, Stored("f1", CALL)).when(
        CorrectEvent(
            stream="interaction-call_bogdanov_al_ahmad_2024",
            target_event_id="f1",
            changes={"participants": [{"actor_id": "bogdanov", "role": "chairman"}]},
            reason="r",
        ),
        directory,
    ).then_raises(InvalidCommandError, match="would be invalid", field="changes.participants")


# -- retractions and corrections of the facts a rule depends on -----------------------------------
# The rules above read derived state (who signed, who was invited, whether the meeting was
# cancelled) that ``evolve`` builds from the events as recorded; a retraction or correction of
# one of those events does not reach it yet.


def test_refusing_after_the_signature_was_retracted_is_allowed(directory: Directory) -> None:
    signed = DeclarationSigned(
        declaration_id="moscow_declaration_2019", signatory_id="hamas", coding=SIGNED
    )
    retracted = EventRetracted(target_event_id="d2", reason="Hamas did not sign")
    given(declarations, Stored("d1", DRAFTED), Stored("d2", signed), Stored("d3", retracted)).when(
        RefuseSignature(declaration_id="moscow_declaration_2019", refuser="hamas"), directory
    ).then(
        SignatureRefused(
            declaration_id="moscow_declaration_2019", refuser_id="hamas", coding=REFUSED
        )
    )


def test_a_meeting_whose_cancellation_was_retracted_is_open_again(directory: Directory) -> None:
    retracted = EventRetracted(target_event_id="m2", reason="the cancellation was a rumour")
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", CANCELLED), Stored("m3", retracted)).when(
        PostponeMeeting(meeting_id="moscow_2024"), directory
    ).then(MeetingPostponed(meeting_id="moscow_2024"))
