"""Every fact of the seed article, entered over HTTP into a database of its own and asserted
through the API's views, each backed by a source that quotes its sentence of the article; and
every sentence of the article is the source of some fact, or said here why not."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

from events.domain.seed import article_text, seed_commands
from tests.api_server import request_for, running_api
from tests.database import scratch_database
from tests.seed_views import SENTENCES, Backing, Views, normalised, quotes, sentence

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable


class Fact(NamedTuple):
    name: str
    sentence: str
    check: Callable[[Views], Awaitable[Backing]]


FACTS: list[Fact] = []

NOT_DIPLOMATIC: dict[str, str] = {
    sentence("The upcoming meeting in Moscow occurs amidst"): "the war itself: no kind of "
    "interaction or statement records fighting",
    sentence("The Israeli Defense Forces (IDF)"): "military operations and casualties: outside "
    "the diplomatic record",
}
"""Sentences no fact quotes, and why."""


def fact(name: str, start: str) -> Callable[[Callable[[Views], Awaitable[Backing]]], None]:
    """Register a check of the fact ``name``, whose source quotes the sentence beginning
    ``start``; it asserts the fact through the views and returns what backs it."""

    def register(check: Callable[[Views], Awaitable[Backing]]) -> None:
        FACTS.append(Fact(name, sentence(start), check))

    return register


# -- actors ----------------------------------------------------------------------------------------

ACTORS = {
    "russia": ("state", "Russia", "Moscow maintains regular contact"),
    "rus_mfa": ("institution", "Russian Ministry of Foreign Affairs", "The Russian Ministry"),
    "ios_ras": ("institution", "Institute of Oriental Studies of the Russian Academy of Sciences",
                "Additionally, they exchanged views"),
    "plo": ("organisation", "Palestine Liberation Organization", "The Russian side reiterated"),
    "fatah": ("organisation", "Fatah", "Representatives from Fatah"),
    "hamas": ("organisation", "Hamas", "Representatives from Fatah"),
    "pij": ("organisation", "Palestinian Islamic Jihad", "Representatives from Fatah"),
    "pflp": ("organisation", "Popular Front for the Liberation of Palestine",
             "Representatives from Fatah"),
    "dflp": ("organisation", "Democratic Front for the Liberation of Palestine",
             "Representatives from Fatah"),
    "bogdanov": ("person", "Mikhail Bogdanov", "The Russian Ministry"),
    "azzam_al_ahmad": ("person", "Azzam al-Ahmad", "The Hamas delegation in Moscow"),
    "abu_marzook": ("person", "Mousa Abu Marzook", "They involved Bogdanov"),
    "mashal": ("person", "Khaled Mashal", "Russian Foreign Minister Sergei Lavrov"),
    "lavrov": ("person", "Sergei Lavrov", "Russian Foreign Minister Sergei Lavrov"),
    "hamdan": ("person", "Osama Hamdan", "From 2007 to 2011"),
    "haniyeh": ("person", "Ismail Haniyeh", "Ismail Haniyeh first met"),
    "medvedev": ("person", "Dmitry Medvedev", "Former Russian President"),
    "putin": ("person", "Vladimir Putin", "Former Russian President"),
}  # fmt: skip


def _registered(actor_id: str, kind: str, name: str) -> Callable[[Views], Awaitable[Backing]]:
    async def check(v: Views) -> Backing:
        actor = await v.actor(actor_id)
        assert (actor["kind"], actor["canonical_name"]) == (kind, name)
        assert actor_id in await v.search(name)
        return [quotes(actor)]

    return check


for _id, (_kind, _name, _start) in ACTORS.items():
    FACTS.append(Fact(f"actor_{_id}", sentence(_start), _registered(_id, _kind, _name)))


def _alias(name: str, actor_id: str, start: str, event_type: str = "actor.alias_added.v1") -> None:
    """``name`` finds ``actor_id`` alone; an event of ``event_type`` recorded the alias."""

    async def check(v: Views) -> Backing:
        assert name in (await v.actor(actor_id))["aliases"]
        assert await v.search(name) == [actor_id]
        return await v.backing(f"actor-{actor_id}", event_type)

    FACTS.append(Fact(f"alias_{actor_id}", sentence(start), check))


_alias("Azzam Ahmed", "azzam_al_ahmad", "They involved")
_alias("Khalid Meshal", "mashal", "Khalid Meshal")
_alias("Islamic Jihad", "pij", "Representatives from Fatah", "actor.registered.v1")


# -- roles -----------------------------------------------------------------------------------------


def _role(actor_id: str, organisation: str, title: str, edtf: str, start: str) -> None:
    async def check(v: Views) -> Backing:
        role = await v.role(actor_id, organisation, title)
        assert role["valid_time"]["edtf"] == edtf
        return await v.backing(
            f"actor-{actor_id}",
            "actor.role_assigned.v1",
            organisation_id=organisation,
            title_as_reported=title,
        )

    slug = "_".join(re.findall(r"\w+", title.lower())[:4])
    FACTS.append(Fact(f"role_{actor_id}_{slug}", sentence(start), check))


# who, in what, the title as reported, the valid time, the sentence's start.
ROLES = (
    ("bogdanov", "rus_mfa", "Special Representative for the Middle East and African Countries, "
     "and Deputy Minister of Foreign Affairs", "2024-02", "The Russian Ministry"),
    ("azzam_al_ahmad", "fatah", "a member of Fatah's Executive Committee", "2024-02",
     "They involved"),
    ("abu_marzook", "hamas", "the Deputy Chairman of Hamas's Politburo", "2024-02",
     "They involved"),
    ("mashal", "hamas", "led the Hamas politburo for many years", "2006/2010", "Khalid Meshal"),
    ("lavrov", "rus_mfa", "Russian Foreign Minister", "2008-03/2024-02",
     "Russian Foreign Minister"),
    ("hamdan", "hamas", "a representative of the Hamas leadership", "2007/2011",
     "From 2007 to 2011"),
    ("putin", "russia", "the current President of the Russian Federation", "2024-02",
     "Former Russian President"),
    ("abu_marzook", "hamas", "Haniyeh\u2019s deputy", "2024-02", "Lavrov had previously met"),
)  # fmt: skip

for _role_row in ROLES:
    _role(*_role_row)


@fact("medvedev_a_former_president", "Former Russian President")
async def _medvedev_former(v: Views) -> Backing:
    role = await v.role("medvedev", "russia", "Former Russian President")
    # Former: his term ended long before the article, not at it.
    assert (role["valid_time"]["lower"], role["valid_time"]["upper"]) == (
        "2008-05-07",
        "2012-05-07",
    )
    return await v.backing("actor-medvedev", "actor.role_assigned.v1", organisation_id="russia")


@fact("haniyeh_leads_hamas_with_abu_marzook_his_deputy", "Lavrov had previously met")
async def _haniyeh_leads(v: Views) -> Backing:
    role = await v.role("haniyeh", "hamas", "head of Hamas's Politburo")
    assert (
        role["valid_time"]["lower"] <= "2020-03-01" and role["valid_time"]["upper"] >= "2024-02-01"
    )
    # Through the member rule, Hamas's history holds his two meetings with Lavrov.
    history = await v.history("hamas")
    for meeting in ("meeting_haniyeh_lavrov_2020_03", "meeting_haniyeh_lavrov_2022_09"):
        assert history[meeting]["via"] == "haniyeh"
    assert "meeting_haniyeh_lavrov_2020_03" not in await v.history("hamas", members="false")
    return await v.backing("actor-haniyeh", "actor.role_assigned.v1", organisation_id="hamas")


# -- interactions ----------------------------------------------------------------------------------


def _counterparts(entry: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["actor_id"], c["role"]) for c in entry["counterparts"]}


def _interaction(
    name: str, start: str, actor: str, interaction_id: str, expected: dict[str, Any]
) -> None:
    """A fact shown as ``interaction_id`` in ``actor``'s history: the entry's fields have the
    ``expected`` values (``edtf``: its valid time's; ``counterparts``: some of its counterparts,
    as (actor, role) pairs)."""

    async def check(v: Views) -> Backing:
        entry = await v.entry(actor, interaction_id)
        for key, value in expected.items():
            if key == "edtf":
                assert entry["valid_time"]["edtf"] == value
            elif key == "counterparts":
                assert value <= _counterparts(entry), _counterparts(entry)
            else:
                assert entry[key] == value, (key, entry[key])
        return [quotes(entry)]

    FACTS.append(Fact(name, sentence(start), check))


# name, the sentence's start, whose history, the interaction, what its entry shows there.
INTERACTIONS: tuple[tuple[str, str, str, str, dict[str, Any]], ...] = (
    ("call_al_ahmad_initiated_by_the_palestinian_side", "According to an official",
     "azzam_al_ahmad", "call_bogdanov_al_ahmad_2024",
     {"kind": "phone_call", "roles": ["initiator"], "counterparts": {("bogdanov", "recipient")},
      "attributed_to": "Russian Ministry of Foreign Affairs"}),
    ("call_abu_marzook_in_hamas_history", "They involved", "hamas",
     "call_bogdanov_abu_marzook_2024",
     {"kind": "phone_call", "via": "abu_marzook", "roles": ["initiator"],
      "counterparts": {("bogdanov", "recipient")}}),
    ("the_calls_discussed_gaza_and_the_meeting", "The discussions focused", "bogdanov",
     "call_bogdanov_abu_marzook_2024",
     {"topics": ["Palestinian-Israeli conflict", "humanitarian situation in the Gaza Strip",
                 "inter-Palestinian meeting in Moscow",
                 "Palestinian unity under the PLO platform"]}),
    ("russia_supports_unity_under_the_plo", "The Russian side reiterated", "russia",
     "statement_russia_palestinian_unity_plo",
     {"kind": "statement", "negated": False, "counterparts": {("plo", "mentioned")}}),
    ("meeting_2019_in_the_mfa_history", "The last inter-Palestinian meeting", "rus_mfa",
     "meeting_moscow_2019",
     {"kind": "meeting", "edtf": "2019-02", "counterparts": {
         ("fatah", "participant"), ("hamas", "participant"), ("pij", "participant")}}),
    ("fatah_apologised_to_russia", "However, Hamas and Islamic Jihad", "fatah",
     "apology_fatah_russia_2019",
     {"kind": "apology", "roles": ["apologiser"],
      "counterparts": {("russia", "apology_recipient")}}),
    ("russia_does_not_deem_hamas_terrorist", "Despite designations", "hamas",
     "statement_russia_hamas_pij_not_terrorist",
     {"kind": "statement", "negated": True, "roles": ["mentioned"],
      "counterparts": {("russia", "subject")}}),
    ("russia_does_not_deem_pij_terrorist", "Despite designations", "pij",
     "statement_russia_hamas_pij_not_terrorist",
     {"kind": "statement", "negated": True, "counterparts": {("russia", "subject")}}),
    ("mfa_regular_contacts_with_hamas_leadership", "Moscow maintains", "hamas",
     "contacts_mfa_hamas_leadership",
     {"kind": "contacts", "cardinality_text": "regular", "min_count": None,
      "edtf": "../2024-02", "counterparts": {("rus_mfa", "participant")}}),
    ("mfa_regular_contacts_with_pij_leadership", "Moscow maintains", "pij",
     "contacts_mfa_pij_leadership",
     {"kind": "contacts", "cardinality_text": "regular", "edtf": "../2024-02",
      "counterparts": {("rus_mfa", "participant")}}),
    ("medvedev_met_hamas_leaders", "Former Russian President", "hamas", "meeting_medvedev_hamas",
     {"kind": "meeting", "counterparts": {("medvedev", "participant")}}),
    ("putin_avoids_hamas", "Former Russian President", "hamas", "pattern_putin_avoids_hamas",
     {"kind": "statement", "negated": True, "counterparts": {("putin", "subject")}}),
    ("hamdan_visited_moscow_frequently", "From 2007 to 2011", "hamas",
     "contacts_hamdan_moscow_2007_2011",
     {"kind": "contacts", "via": "hamdan", "cardinality_text": "frequently",
      "edtf": "2007/2011"}),
    ("lavrov_met_abu_marzook_in_moscow_several_times", "Lavrov had previously met", "hamas",
     "contacts_lavrov_abu_marzook_moscow",
     {"kind": "contacts", "via": "abu_marzook", "cardinality_text": "on several occasions",
      "min_count": 2, "place": {"name": "Moscow", "country": "RUS"}}),
    ("mfa_hosted_hamas_delegations_since_october_7", "Since the tragic events", "hamas",
     "contacts_mfa_hamas_delegations_2023",
     {"kind": "contacts", "cardinality_text": "several Hamas delegations", "min_count": 2,
      "edtf": "2023-10-07/2024-02"}),
    ("the_contacts_helped_free_russian_hostages", "These interactions", "rus_mfa",
     "statement_mfa_hamas_contacts_release",
     {"kind": "statement", "negated": False, "counterparts": {("hamas", "mentioned")}}),
    ("analysts_say_russia_gains_from_the_war", "Many analysts", "russia",
     "statement_analysts_russia_benefits",
     {"kind": "statement", "attributed_to": "many analysts", "counterparts": set()}),
)  # fmt: skip

for _row in INTERACTIONS:
    _interaction(*_row)


def _visits_and_meetings(name: str, start: str, actor: str, expected: dict[str, str]) -> None:
    """Dated interactions of ``actor`` (id to EDTF) shown one entry each, and counted as
    certain in their year by the contact graph."""

    async def check(v: Views) -> Backing:
        history = await v.history(actor)
        edges = await v.graph(actor)
        backing = []
        for interaction_id, edtf in expected.items():
            entry = history[interaction_id]
            assert entry["valid_time"]["edtf"] == edtf
            year = int(edtf[:4])
            assert any(e["year"] == year and e["certain"] >= 1 for e in edges), (year, edges)
            backing.append(quotes(entry))
        return backing

    FACTS.append(Fact(name, sentence(start), check))


_visits_and_meetings("meshal_visited_moscow_three_times", "Khalid Meshal", "mashal", {
    "visit_mashal_moscow_2006_03": "2006-03",
    "visit_mashal_moscow_2007_02": "2007-02",
    "visit_mashal_moscow_2010_02": "2010-02",
})  # fmt: skip
_visits_and_meetings("lavrov_met_mashal_twice_in_damascus", "Russian Foreign Minister", "lavrov", {
    "meeting_lavrov_mashal_2008_03": "2008-03",
    "meeting_lavrov_mashal_2009_05": "2009-05",
})  # fmt: skip
_visits_and_meetings("haniyeh_met_lavrov_twice", "Ismail Haniyeh first met", "haniyeh", {
    "meeting_haniyeh_lavrov_2020_03": "2020-03",
    "meeting_haniyeh_lavrov_2022_09": "2022-09",
})  # fmt: skip


@fact("lavrov_addressed_three_factions", "In January 2017")
async def _address(v: Views) -> Backing:
    entry = await v.entry("lavrov", "address_lavrov_factions_2017_01")
    assert (entry["kind"], entry["valid_time"]["edtf"], entry["roles"]) == (
        "address", "2017-01", ["speaker"]
    )  # fmt: skip
    audience = {("fatah", "audience"), ("hamas", "audience"), ("pij", "audience")}
    assert _counterparts(entry) == audience
    [event] = await v.events(
        "interaction-address_lavrov_factions_2017_01", "interaction.address_delivered.v1"
    )
    assert event["quote"] == "Dear guests, dear friends..."
    return [quotes(entry)]


@fact("negations_are_no_contacts_in_the_graph", "Despite designations")
async def _negations_left_out(v: Views) -> Backing:
    assert not [e for e in await v.graph("putin") if "hamas" in (e["a"], e["b"])]
    statements = [
        e for e in await v.graph("russia", kind="statement") if "hamas" in (e["a"], e["b"])
    ]
    assert statements == []
    return [quotes(await v.entry("russia", "statement_russia_hamas_pij_not_terrorist"))]


# -- meetings --------------------------------------------------------------------------------------


@fact("moscow_meeting_announced_at_the_institute", "Additionally, they exchanged views")
async def _announced(v: Views) -> Backing:
    roster = await v.roster("moscow_2024")
    assert (roster["host_id"], roster["place"]["name"]) == ("ios_ras", "Moscow")
    first = roster["date_history"][0]
    assert (first["kind"], first["valid_time"]["edtf"]) == ("scheduled", "[2024-02-20..2024-03-10]")
    assert first["valid_time"]["raw"] == "the end of February or early March"
    return await v.backing("meeting-moscow_2024", "meeting.scheduled.v1")


@fact("moscow_meeting_on_february_28_29", "As previously reported")
async def _dated(v: Views) -> Backing:
    roster = await v.roster("moscow_2024")
    assert roster["date"]["edtf"] == "2024-02-28/2024-02-29"
    assert [h["kind"] for h in roster["date_history"]] == ["scheduled", "revised"]
    return await v.backing("meeting-moscow_2024", "meeting.date_revised.v1")


@fact("five_factions_invited", "Representatives from Fatah")
async def _invited(v: Views) -> Backing:
    roster = await v.roster("moscow_2024")
    assert [(f["faction_id"], f["invited"]) for f in roster["factions"]] == [
        (faction, True) for faction in ("fatah", "hamas", "pij", "pflp", "dflp")
    ]
    return await v.backing("meeting-moscow_2024", "meeting.faction_invited.v1")


@fact("moscow_meeting_purpose", "The meeting aims")
async def _purpose_2024(v: Views) -> Backing:
    purpose = "to overcome internal divisions among Palestinian factions"
    assert (await v.roster("moscow_2024"))["purpose"] == purpose
    listed = {m["meeting_id"]: m for m in await v.get("/meetings", limit=1000)}
    assert listed["moscow_2024"]["purpose"] == purpose
    return await v.backing("meeting-moscow_2024", "meeting.purpose_stated.v1")


@fact("meeting_2019_held_with_its_purpose", "The last inter-Palestinian meeting")
async def _meeting_2019(v: Views) -> Backing:
    roster = await v.roster("moscow_2019")
    assert (roster["held"], roster["organiser_id"], roster["date"]["edtf"]) == (
        True, "rus_mfa", "2019-02"
    )  # fmt: skip
    assert roster["purpose"].startswith('to adopt a "Moscow Declaration"')
    took_part = [(f["faction_id"], f["took_part"]) for f in roster["factions"]]
    assert took_part == [("fatah", True), ("hamas", True), ("pij", True)]
    assert roster["declarations"] == [
        {"declaration_id": "moscow_declaration_2019", "title": "Moscow Declaration"}
    ]
    return [
        *await v.backing("meeting-moscow_2019", "meeting.scheduled.v1"),
        *await v.backing("meeting-moscow_2019", "meeting.purpose_stated.v1"),
        *await v.backing("declaration-moscow_declaration_2019", "declaration.drafted.v1"),
    ]


@fact("hamas_and_pij_refused_to_sign", "However, Hamas and Islamic Jihad")
async def _refused(v: Views) -> Backing:
    outcomes = {}
    for faction in ("fatah", "hamas", "pij"):
        row = await v.faction("moscow_2019", faction)
        outcomes[faction] = [d["outcome"] for d in row["declarations"]]
    assert outcomes == {"fatah": [None], "hamas": ["refused"], "pij": ["refused"]}
    return await v.backing(
        "declaration-moscow_declaration_2019", "declaration.signature_refused.v1"
    )


@fact("hamas_and_fatah_delegations_and_their_heads", "The Hamas delegation in Moscow")
async def _heads(v: Views) -> Backing:
    heads = {}
    for faction in ("hamas", "fatah"):
        row = await v.faction("moscow_2024", faction)
        assert row["attendance"] == "confirmed"
        heads[faction] = row["head"]["person_id"]
    assert heads == {"hamas": "abu_marzook", "fatah": "azzam_al_ahmad"}
    stream = "meeting-moscow_2024"
    return [
        *await v.backing(stream, "meeting.delegation_leader_named.v1"),
        *await v.backing(stream, "meeting.attendance_confirmed.v1", faction_id="hamas"),
        *await v.backing(stream, "meeting.attendance_confirmed.v1", faction_id="fatah"),
    ]


@fact("pij_pflp_dflp_confirmed_without_named_heads", "Islamic Jihad, the PFLP")
async def _confirmed(v: Views) -> Backing:
    backing = []
    for faction in ("pij", "pflp", "dflp"):
        row = await v.faction("moscow_2024", faction)
        assert (row["attendance"], row["head"], row["members"]) == ("confirmed", None, [])
        backing += await v.backing(
            "meeting-moscow_2024", "meeting.attendance_confirmed.v1", faction_id=faction
        )
    return backing


# -- the tests ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def views(server_url: str) -> AsyncIterator[Views]:
    """The seed entered command by command over HTTP, in a database of its own (the shared
    API's holds other tests' actors, and names must resolve as the article's alone)."""
    async with scratch_database(server_url, migrated=True) as dsn, running_api(dsn) as api:
        async with api.client("write") as writer:
            cursors = []
            for command in seed_commands():
                path, body = request_for(command)
                response = await writer.post(path, json=body)
                assert response.status_code == 201, (path, response.text)
                cursors.append(response.headers["Diplofeed-Cursor"])
        async with api.client("read") as reader:
            yield Views(reader, cursors[-1])


@pytest.mark.parametrize("case", FACTS, ids=[f.name for f in FACTS])
async def test_the_fact_is_in_the_views_and_quotes_its_sentence(views: Views, case: Fact) -> None:
    backing = await case.check(views)
    assert backing, "no record backs the fact"
    for record in backing:
        assert any(case.sentence in quote for quote in record), (case.sentence, record)


def test_every_sentence_is_the_source_of_a_fact_or_said_why_not() -> None:
    assert " ".join(SENTENCES) == normalised(article_text())  # the split loses nothing
    quoted = {f.sentence for f in FACTS}
    assert [s for s in SENTENCES if s not in quoted and s not in NOT_DIPLOMATIC] == []
    assert not quoted & set(NOT_DIPLOMATIC)


async def test_no_record_quotes_a_sentence_said_to_be_outside_the_record(views: Views) -> None:
    recorded = [quote for event in await views.feed() for quote in quotes(event["data"])]
    assert len(recorded) >= len(seed_commands())
    for text in NOT_DIPLOMATIC:
        assert [q for q in recorded if text in q] == []
