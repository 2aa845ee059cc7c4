"""Actor names: normalisation, skeleton keys, and resolving the seed's spellings to actors."""

from __future__ import annotations

from datetime import date

import msgspec
import pytest

from events.domain.errors import AmbiguousActorError, UnknownActorError
from events.domain.names import (
    ACCEPT_SCORE,
    ActorRecord,
    Match,
    NameIndex,
    RoleSpan,
    normalise,
    skeleton,
)

# Look-alike characters are written as escapes so the source stays unambiguous.
AYN = "\u02bf"
HAMZA = "\u02be"
RIGHT_QUOTE = "\u2019"
LEFT_QUOTE = "\u2018"


def person(
    actor_id: str, name: str, *aliases: str, roles: tuple[RoleSpan, ...] = ()
) -> ActorRecord:
    """A person record; ``organisations`` follows from ``roles``."""
    return ActorRecord(
        actor_id=actor_id,
        canonical_name=name,
        kind="person",
        aliases=aliases,
        organisations=tuple(dict.fromkeys(r.organisation_id for r in roles)),
        roles=roles,
    )


def organisation(actor_id: str, name: str, *aliases: str) -> ActorRecord:
    """An organisation record."""
    return ActorRecord(actor_id=actor_id, canonical_name=name, kind="organisation", aliases=aliases)


def index_of(*records: ActorRecord) -> NameIndex:
    """An index holding ``records``."""
    index = NameIndex()
    for record in records:
        index.add(record)
    return index


MASHAL = person(
    "khaled-mashal",
    "Khaled Mashal",
    roles=(RoleSpan("hamas", "Head of the Hamas Politburo", date(1996, 1, 1), date(2017, 5, 6)),),
)
SAYED_MESHAL = person(
    "sayed-meshal",
    "Sayed Meshal",
    roles=(RoleSpan("egypt-military", "Minister of Military Production", date(2004, 1, 1), None),),
)
# Hypothetical: a different person whose name has the same skeleton as Mashal's.
JOURNALIST = person(
    "khalid-mishal-journalist",
    "Khalid Mishal",
    roles=(RoleSpan("al-quds-tv", "Correspondent", None, None),),
)


# --- normalise ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Khalid Meshal", "khalid meshal"),
        ("Khaled Mashal", "khaled mashal"),
        ("Khaled Meshaal", "khaled meshaal"),
        ("Khalid Mish'al", "khalid mishal"),
        (f"Khalid Mish{AYN}al", "khalid mishal"),
        (f"Khalid Mish{HAMZA}al", "khalid mishal"),
        (f"Khalid Mish{RIGHT_QUOTE}al", "khalid mishal"),
        (f"Khalid Mish{LEFT_QUOTE}al", "khalid mishal"),
        ("Khalid Mish`al", "khalid mishal"),
        ("Azzam Ahmed", "azzam ahmed"),
        ("Azzam al-Ahmad", "azzam ahmad"),
        ("al-Ahmad", "ahmad"),
        ("AZZAM AL-AHMAD", "azzam ahmad"),
        ("Azzam Al Ahmad", "azzam ahmad"),
        ("Abd al-Rahman", "abd rahman"),
        ("Abdel Fattah el-Sisi", "abdel fattah sisi"),
        ("Abdel Fattah as-Sisi", "abdel fattah sisi"),
        ("Abdel Fattah as Sisi", "abdel fattah sisi"),
        ("ash-Shaykh", "shaykh"),
        ("Mousa Abu Marzook", "mousa abu marzook"),
        ("Moussa  Abou\tMarzouk ", "moussa abou marzouk"),
        ("Sérgéï Lávrov", "sergei lavrov"),
        ("the PFLP", "pflp"),
        (
            "The Popular Front for the Liberation of Palestine",
            "popular front for liberation of palestine",
        ),
        ("Fatah's Executive Committee", "fatahs executive committee"),
        ("Institute of Oriental Studies (RAS)", "institute of oriental studies ras"),
        ("Hamas\u2014Politburo", "hamas politburo"),
    ],
)
def test_normalise(name: str, expected: str) -> None:
    assert normalise(name) == expected


def test_normalise_keeps_english_words_that_are_not_assimilated_articles() -> None:
    """ "as"/"an"/"at" standing alone are articles only before their own consonant."""
    assert normalise("Known as Abu Walid") == "known as abu walid"
    assert normalise("An Najah University") == "najah university"


def test_normalise_never_empties_a_name() -> None:
    assert normalise("Al") == "al"
    assert normalise("The") == "the"
    assert normalise("  ---  ") == ""
    assert normalise("") == ""


# --- skeleton -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "key"),
    [
        (("Khalid Meshal", "Khaled Mashal", "Khaled Meshaal", "Khalid Mish'al"), "kld m$l"),
        (
            ("Mousa Abu Marzook", "Musa Abu Marzouk", "Mousa Abu Marzuq", "Moussa Abou Marzouk"),
            "ms b mrzk",
        ),
        (("Azzam Ahmed", "Azzam al-Ahmad"), "zm hmd"),
        (("Ismail Haniyeh", "Ismail Haniya"), "sml hn"),
        (("Sergei Lavrov", "Sergey Lavrov"), "srg lvrv"),
        (("Fatah", "Fateh"), "ft"),
    ],
)
def test_spelling_variants_share_a_skeleton(names: tuple[str, ...], key: str) -> None:
    assert {skeleton(n) for n in names} == {key}


@pytest.mark.parametrize(
    ("names", "key"),
    [
        (("Thabet", "Tabet"), "tbt"),  # th/t
        (("Othman", "Otman"), "tmn"),
        (("Khalil", "Kalil"), "kl"),  # kh/k
        (("Qassem", "Kassem", "Qasim"), "ksm"),  # q/k, doubled letters
        (("Moussa", "Mousa", "Musa", "Mossa"), "ms"),  # ou/u, doubled letters
        (("Naeem", "Naim", "Na'im"), "nm"),  # ee/i
        (("Sheikh", "Cheikh", "Shaykh", "Sheik"), "$k"),  # sh/ch, kh/k
        (("Sharif", "Cherif", "Chérif"), "$rf"),
        (("Abbas", "Abas"), "bs"),
        (("Ramadhan", "Ramadan"), "rmdn"),  # dh/d
        (("al-Zahar", "el-Zahar", "Zahar", "ez-Zahar", "az-Zahar"), "zhr"),  # the article
        (("ash-Shaykh", "al-Shaykh", "esh-Sheikh", "ech-Cheikh", "Ash Shaykh"), "$k"),
        (("Abdel Salam Haniyeh", "Abdul Salam Hanieh", "Abd al-Salam Haniya"), "bd slm hn"),
        (("Abdelsalam Haniyeh", "Abd el-Salam Haniyyeh", "Abdoul Salam Haniye"), "bd slm hn"),
        (("Abdessalam", "Abd es-Salam", "Abdel-Salam", "Abdoussalam"), "bd slm"),
        (("Abdurrahman", "Abdul Rahman", "Abd ar-Rahman", "Abderrahmane"), "bd rhmn"),
        (("Abdullah", "Abd Allah", "Abdallah"), "bd l"),
    ],
)
def test_transliteration_pairs_share_a_skeleton(names: tuple[str, ...], key: str) -> None:
    assert {skeleton(n) for n in names} == {key}


def test_the_abd_rule_leaves_other_words_alone() -> None:
    assert skeleton("Abd") == "bd"
    assert skeleton("Abdo Hamdan") == "bd hmdn"
    assert normalise("Abdel Fattah el-Sisi") == "abdel fattah sisi"  # normalised forms keep it


def test_haniyeh_needs_the_final_h_rule() -> None:
    """Without dropping a word-final h after a vowel, Haniyeh and Haniya would differ."""
    assert skeleton("Haniyeh") == skeleton("Haniya") == "hn"


def test_different_first_names_keep_different_skeletons() -> None:
    assert skeleton("Sayed Meshal") == "sd m$l"
    assert skeleton("Sayed Meshal") != skeleton("Khaled Meshal")
    # ... but the surname alone is a token of both, which is what blocks them together.
    assert skeleton("Meshal") in skeleton("Sayed Meshal").split()
    assert skeleton("Meshal") in skeleton("Khaled Meshal").split()


def test_skeleton_keeps_initial_y_and_token_order() -> None:
    assert skeleton("Yahya Sinwar") == "yh snwr"
    assert skeleton("Mashal Khaled") == "m$l kld"
    assert skeleton("") == ""


# --- records --------------------------------------------------------------------------------


def test_records_validate_kind_and_name() -> None:
    with pytest.raises(ValueError, match="kind"):
        ActorRecord(actor_id="x", canonical_name="X", kind="org")
    with pytest.raises(ValueError, match="no letters"):
        ActorRecord(actor_id="x", canonical_name=" - ", kind="person")


def test_role_span_bounds() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        RoleSpan("hamas", None, date(2020, 1, 1), date(2019, 1, 1))
    span = RoleSpan("hamas", "Head", date(2006, 3, 29), date(2007, 6, 14))
    assert span.active_on(date(2006, 3, 29))
    assert span.active_on(date(2007, 6, 14))
    assert not span.active_on(date(2007, 6, 15))
    assert span.active_on(None)
    assert RoleSpan("hamas").active_on(date(1900, 1, 1))


def test_records_round_trip_through_json() -> None:
    decoded = msgspec.json.decode(msgspec.json.encode(MASHAL), type=ActorRecord)
    assert decoded == MASHAL
    with pytest.raises(msgspec.ValidationError, match="kind"):
        msgspec.json.decode(
            b'{"actor_id": "x", "canonical_name": "X", "kind": "club"}', type=ActorRecord
        )


# --- the index ------------------------------------------------------------------------------


def test_add_get_len_contains_remove() -> None:
    index = NameIndex()
    assert len(index) == 0
    index.add(MASHAL)
    assert len(index) == 1
    assert "khaled-mashal" in index
    assert "nobody" not in index
    assert index.get("khaled-mashal") == MASHAL
    assert index.get("nobody") is None
    index.remove("khaled-mashal")
    index.remove("khaled-mashal")  # removing twice is harmless
    assert len(index) == 0
    assert index.candidates("Khaled Mashal") == []


def test_add_replaces_the_record_with_the_same_id() -> None:
    index = index_of(person("p1", "Mikhail Bogdanov", "Bogdanov"))
    index.add(person("p1", "Mikhail Bogdanov"))
    assert len(index) == 1
    assert index.candidates("Mikhail Bogdanov")[0].matched == "Mikhail Bogdanov"
    index.add(person("p1", "Sergei Lavrov"))
    assert index.candidates("Mikhail Bogdanov") == []
    assert index.resolve("Sergei Lavrov").actor_id == "p1"


def test_remove_leaves_other_actors_indexed() -> None:
    index = index_of(MASHAL, JOURNALIST)
    index.remove(JOURNALIST.actor_id)
    assert index.resolve("Khaled Meshal").actor_id == MASHAL.actor_id


@pytest.mark.parametrize(
    ("registered", "query"),
    [
        ("Khaled Mashal", "Khalid Meshal"),
        ("Khaled Mashal", "Khaled Meshaal"),
        ("Khaled Mashal", "Khalid Mish'al"),
        ("Khaled Mashal", f"Khalid Mish{AYN}al"),
        ("Mousa Abu Marzook", "Musa Abu Marzouk"),
        ("Mousa Abu Marzook", "Mousa Abu Marzuq"),
        ("Mousa Abu Marzook", "Moussa Abou Marzouk"),
        ("Azzam al-Ahmad", "Azzam Ahmed"),
        ("Ismail Haniyeh", "Ismail Haniya"),
    ],
)
def test_spelling_variants_resolve_to_the_registered_actor(registered: str, query: str) -> None:
    index = index_of(person("them", registered), person("other", "Mikhail Bogdanov"))
    match = index.resolve(query)
    assert match == Match("them", registered, registered, match.score)
    assert match.score >= 90  # a whole-name skeleton match


def test_candidates_are_best_first_one_per_actor() -> None:
    index = index_of(MASHAL, SAYED_MESHAL, JOURNALIST, person("x", "Khaled Mashal Abu Walid"))
    found = index.candidates("Khaled Mashal", limit=10)
    assert [m.actor_id for m in found][:2] == ["khaled-mashal", "khalid-mishal-journalist"]
    assert found[0].score == 100
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)
    assert len({m.actor_id for m in found}) == len(found) == 4
    assert len(index.candidates("Khaled Mashal", limit=2)) == 2
    assert index.candidates("Khaled Mashal", limit=0) == []
    assert index.candidates("") == []
    with pytest.raises(ValueError, match="limit"):
        index.candidates("Khaled Mashal", limit=-1)


def test_a_candidate_reports_the_alias_that_matched() -> None:
    index = index_of(organisation("pij", "Palestinian Islamic Jihad", "Islamic Jihad"))
    assert index.candidates("Islamic Jihad") == [
        Match("pij", "Palestinian Islamic Jihad", "Islamic Jihad", 100.0)
    ]


# --- same skeleton, different people --------------------------------------------------------

# Two people sharing a family name, each registered with a bare-surname alias.
HANIYEH_ROLES = {
    "ismail_haniyeh": RoleSpan(
        "hamas", "Head of the Politburo", date(2017, 5, 6), date(2024, 7, 31)
    ),
    "abdel_salam_haniyeh": RoleSpan("hamas_youth", "Member"),
}
ISMAIL, ABDEL_SALAM = (
    person(actor_id, *names, roles=(HANIYEH_ROLES[actor_id],))
    for actor_id, *names in (
        ("ismail_haniyeh", "Ismail Haniyeh", "Haniyeh", "Ismail Haniya"),
        ("abdel_salam_haniyeh", "Abdel Salam Haniyeh", "Abdul Salam Hanieh", "Hanieh"),
    )
)


@pytest.mark.parametrize(
    ("name", "literal"),
    [
        ("Haniyeh", "ismail_haniyeh"),  # Ismail's alias, Abdel Salam's by variant
        ("Hanieh", "abdel_salam_haniyeh"),  # Abdel Salam's alias, Ismail's by variant
        ("Haniya", None),  # a variant of both
        ("haniyyeh", None),
        ("HANIYE", None),
    ],
)
def test_a_shared_family_name_is_ambiguous_in_any_spelling(name: str, literal: str | None) -> None:
    index = index_of(ISMAIL, ABDEL_SALAM, MASHAL)
    with pytest.raises(AmbiguousActorError) as caught:
        index.resolve(name, field="person")
    candidates = caught.value.candidates
    assert {c.actor_id for c in candidates} == {"ismail_haniyeh", "abdel_salam_haniyeh"}
    if literal is not None:
        # The actor whose alias it is comes first, but it is not taken for the other.
        assert candidates[0].actor_id == literal
        assert candidates[0].matched == name
    assert "(ismail_haniyeh)" in str(caught.value)
    assert "(abdel_salam_haniyeh)" in str(caught.value)
    assert [m.actor_id for m in index.spelled(name)] == [c.actor_id for c in candidates]


def test_a_shared_family_name_resolves_with_context_or_a_first_name() -> None:
    index = index_of(ISMAIL, ABDEL_SALAM, MASHAL)
    assert index.resolve("Haniyeh", organisation="hamas_youth").actor_id == "abdel_salam_haniyeh"
    assert index.resolve("Hanieh", organisation="hamas").actor_id == "ismail_haniyeh"
    assert index.resolve("Hanieh", role="politburo", on=date(2020, 1, 1)).actor_id == (
        "ismail_haniyeh"
    )
    for name in ("Ismail Haniya", "Isma'il Hanieh", "Ismael Haniyyeh"):
        assert index.resolve(name).actor_id == "ismail_haniyeh"
    for name in ("Abd al-Salam Haniya", "Abdessalam Haniyeh", "Abdul Salam Haniyeh"):
        assert index.resolve(name).actor_id == "abdel_salam_haniyeh", name


def test_two_actors_with_the_same_name_are_told_apart_by_id() -> None:
    index = index_of(person("p1", "Ahmad Yousef"), person("p2", "Ahmed Youssef"))
    with pytest.raises(AmbiguousActorError) as caught:
        index.resolve("Ahmad Yusuf")
    assert [(c.actor_id, c.canonical_name) for c in caught.value.candidates] == [
        ("p1", "Ahmad Yousef"),
        ("p2", "Ahmed Youssef"),
    ]


def test_people_sharing_a_skeleton_are_not_merged() -> None:
    index = index_of(MASHAL, SAYED_MESHAL, JOURNALIST)
    with pytest.raises(AmbiguousActorError) as caught:
        index.resolve("Khaled Meshal", field="participants[0]")
    assert sorted(c.canonical_name for c in caught.value.candidates) == [
        "Khaled Mashal",
        "Khalid Mishal",
    ]
    assert caught.value.field == "participants[0]"
    assert caught.value.name == "Khaled Meshal"


def test_organisation_context_breaks_the_tie() -> None:
    index = index_of(MASHAL, SAYED_MESHAL, JOURNALIST)
    assert index.resolve("Khaled Meshal", organisation="hamas").actor_id == MASHAL.actor_id
    assert index.resolve("Khalid Mishal", organisation="hamas").actor_id == MASHAL.actor_id
    # Context never turns a different first name into a match.
    with pytest.raises(AmbiguousActorError):
        index.resolve("Khaled Meshal", organisation="egypt-military")


def test_a_surname_alone_is_ambiguous_without_context() -> None:
    index = index_of(MASHAL, SAYED_MESHAL, JOURNALIST)
    with pytest.raises(AmbiguousActorError) as caught:
        index.resolve("Meshal")
    assert sorted(c.actor_id for c in caught.value.candidates) == [
        "khaled-mashal",
        "khalid-mishal-journalist",
        "sayed-meshal",
    ]
    assert index.resolve("Meshal", organisation="hamas").actor_id == MASHAL.actor_id
    assert index.resolve("Meshal", organisation="egypt-military").actor_id == "sayed-meshal"


def test_the_same_name_and_surname_resolve_when_only_one_actor_has_it() -> None:
    index = index_of(MASHAL, SAYED_MESHAL)
    assert index.resolve("Sayed Mashal").actor_id == "sayed-meshal"
    assert index.resolve("Khalid Meshal").actor_id == MASHAL.actor_id


def test_role_title_context_breaks_the_tie() -> None:
    index = index_of(MASHAL, SAYED_MESHAL, JOURNALIST)
    assert index.resolve("Khaled Meshal", role="politburo").actor_id == MASHAL.actor_id
    assert index.resolve("Khaled Meshal", role="Correspondent").actor_id == JOURNALIST.actor_id
    with pytest.raises(AmbiguousActorError):
        index.resolve("Khaled Meshal", role="minister")  # Sayed Meshal's title, wrong name


def test_date_bounded_roles_break_the_tie() -> None:
    spokesman = person(
        "khalid-mishal-spokesman",
        "Khalid Mishal",
        roles=(RoleSpan("hamas", "Spokesman", date(2019, 1, 1), None),),
    )
    index = index_of(MASHAL, spokesman)
    with pytest.raises(AmbiguousActorError):
        index.resolve("Khaled Meshal", organisation="hamas")  # both held Hamas roles
    when_mashal_led = index.resolve("Khaled Meshal", organisation="hamas", on=date(2008, 3, 1))
    assert when_mashal_led.actor_id == MASHAL.actor_id
    later = index.resolve("Khaled Meshal", organisation="hamas", on=date(2021, 6, 1))
    assert later.actor_id == spokesman.actor_id
    assert index.resolve("Meshal", role="head", on=date(2010, 2, 1)).actor_id == MASHAL.actor_id
    with pytest.raises(AmbiguousActorError):
        index.resolve("Meshal", role="head", on=date(2018, 1, 1))  # Mashal's role had ended
    with pytest.raises(AmbiguousActorError):
        index.resolve("Meshal", organisation="hamas", on=date(2018, 1, 1))  # nobody then


def test_undated_membership_counts_on_any_day() -> None:
    member = ActorRecord(
        actor_id="m", canonical_name="Khalid Mishal", kind="person", organisations=("hamas",)
    )
    index = index_of(member, JOURNALIST)
    assert index.resolve("Khaled Meshal", organisation="hamas", on=date(1990, 1, 1)).actor_id == "m"


# --- unknown names --------------------------------------------------------------------------


def test_a_close_misspelling_is_only_a_suggestion() -> None:
    """A name no registered name's skeleton matches is never resolved, however close."""
    index = index_of(person("lavrov", "Sergei Lavrov", "Lavrov"), person("b", "Mikhail Bogdanov"))
    with pytest.raises(UnknownActorError) as caught:
        index.resolve("Sergey Lavrof")
    assert caught.value.suggestions == ["Sergei Lavrov"]
    assert index.resolve("Sergey Lavrov").actor_id == "lavrov"
    assert index.resolve("Lavrov").actor_id == "lavrov"


def test_a_name_longer_than_the_one_registered_is_only_a_suggestion() -> None:
    """A name holding Ismail Haniyeh's alias "Haniyeh" may name his relative."""
    index = index_of(person("ismail", "Ismail Haniyeh", "Haniyeh"))
    with pytest.raises(UnknownActorError) as caught:
        index.resolve("Abdel Salam Haniyeh")
    assert caught.value.suggestions == ["Ismail Haniyeh"]


def test_unknown_names_come_with_suggestions() -> None:
    index = index_of(person("lavrov", "Sergei Lavrov", "Lavrov"), person("b", "Mikhail Bogdanov"))
    with pytest.raises(UnknownActorError) as caught:
        index.resolve("Lavrovich Petrov", field="speaker")
    assert caught.value.suggestions == ["Sergei Lavrov"]
    assert caught.value.field == "speaker"
    assert caught.value.name == "Lavrovich Petrov"
    # A typo that breaks the skeleton still gets suggestions from the fallback search.
    with pytest.raises(UnknownActorError) as caught:
        index.resolve("Lavrof")
    assert caught.value.suggestions == ["Sergei Lavrov"]
    with pytest.raises(UnknownActorError) as caught:
        index.resolve("Vladimir Putin")
    assert caught.value.suggestions == []


def test_suggestions_are_at_most_three() -> None:
    index = index_of(
        *(person(f"p{i}", f"Khaled Mashal Abu Walid {s}") for i, s in enumerate("abcde"))
    )
    with pytest.raises(UnknownActorError) as caught:
        index.resolve("Khaled")  # a first name alone covers too little of any name
    assert len(caught.value.suggestions) == 3


def test_a_fragment_covering_little_of_the_name_is_not_accepted() -> None:
    index = index_of(person("amz", "Mousa Abu Marzook"))
    assert index.candidates("Abu")[0].score < ACCEPT_SCORE
    with pytest.raises(UnknownActorError):
        index.resolve("Abu")
    assert index.resolve("Abu Marzook").actor_id == "amz"
    assert index.resolve("Marzouk").actor_id == "amz"


# --- ids and kinds --------------------------------------------------------------------------


def test_an_exact_id_wins() -> None:
    index = index_of(MASHAL, SAYED_MESHAL, JOURNALIST)
    assert index.resolve("khalid-mishal-journalist") == Match(
        "khalid-mishal-journalist", "Khalid Mishal", "khalid-mishal-journalist", 100.0
    )


def test_kind_filters_candidates() -> None:
    index = index_of(organisation("hamas", "Hamas"), person("hamas-person", "Hamas Hamas"), MASHAL)
    assert index.resolve("Hamas", kind="organisation").actor_id == "hamas"
    assert index.resolve("hamas", kind="organisation").actor_id == "hamas"  # the id
    with pytest.raises(UnknownActorError) as caught:
        index.resolve("Khaled Mashal", kind="organisation")
    assert caught.value.suggestions == []
    assert index.resolve("khaled-mashal", kind="person").actor_id == MASHAL.actor_id
    with pytest.raises(UnknownActorError):
        index.resolve("khaled-mashal", kind="state")  # an id of the wrong kind is no match


# --- the seed article -----------------------------------------------------------------------


def seed_index() -> NameIndex:
    """The actors of the seed article, registered under one spelling each (few aliases)."""
    return index_of(
        organisation("fatah", "Fatah"),
        organisation("hamas", "Hamas"),
        organisation("pij", "Palestinian Islamic Jihad", "Islamic Jihad"),
        organisation("pflp", "Popular Front for the Liberation of Palestine", "PFLP"),
        organisation("dflp", "Democratic Front for the Liberation of Palestine", "DFLP"),
        ActorRecord(
            actor_id="ios-ras",
            canonical_name="Institute of Oriental Studies of the Russian Academy of Sciences",
            kind="institution",
        ),
        ActorRecord(actor_id="russia", canonical_name="Russian Federation", kind="state"),
        person(
            "azzam-al-ahmad",
            "Azzam al-Ahmad",
            roles=(RoleSpan("fatah", "Member of the Fatah Executive Committee"),),
        ),
        person(
            "abu-marzook",
            "Mousa Abu Marzook",
            roles=(RoleSpan("hamas", "Deputy Chairman of the Hamas Politburo"),),
        ),
        MASHAL,
        person(
            "haniyeh",
            "Ismail Haniyeh",
            roles=(RoleSpan("hamas", "Prime Minister", date(2006, 3, 29), date(2007, 6, 14)),),
        ),
        person("hamdan", "Osama Hamdan", roles=(RoleSpan("hamas", "Representative"),)),
        person("bogdanov", "Mikhail Bogdanov", roles=(RoleSpan("russia", "Deputy Minister"),)),
        person("lavrov", "Sergei Lavrov", roles=(RoleSpan("russia", "Foreign Minister"),)),
        person("medvedev", "Dmitry Medvedev", roles=(RoleSpan("russia", "President"),)),
        person("putin", "Vladimir Putin", roles=(RoleSpan("russia", "President"),)),
    )


@pytest.mark.parametrize(
    ("name", "actor_id"),
    [
        ("Fatah", "fatah"),
        ("Hamas", "hamas"),
        ("Islamic Jihad", "pij"),
        ("Palestinian Islamic Jihad", "pij"),
        ("PFLP", "pflp"),
        ("the PFLP", "pflp"),
        ("Popular Front for the Liberation of Palestine", "pflp"),
        ("DFLP", "dflp"),
        ("the Democratic Front for the Liberation of Palestine", "dflp"),
        ("Institute of Oriental Studies of the Russian Academy of Sciences", "ios-ras"),
        ("Azzam Ahmed", "azzam-al-ahmad"),
        ("Azzam al-Ahmad", "azzam-al-ahmad"),
        ("Mousa Abu Marzook", "abu-marzook"),
        ("Khalid Meshal", "khaled-mashal"),
        ("Khaled Mashal", "khaled-mashal"),
        ("Ismail Haniyeh", "haniyeh"),
        ("Haniyeh", "haniyeh"),
        ("Osama Hamdan", "hamdan"),
        ("Mikhail Bogdanov", "bogdanov"),
        ("Bogdanov", "bogdanov"),
        ("Sergei Lavrov", "lavrov"),
        ("Lavrov", "lavrov"),
        ("Dmitry Medvedev", "medvedev"),
        ("Vladimir Putin", "putin"),
    ],
)
def test_every_spelling_in_the_seed_resolves(name: str, actor_id: str) -> None:
    assert seed_index().resolve(name).actor_id == actor_id


def test_the_two_fronts_are_told_apart_but_not_guessed() -> None:
    index = seed_index()
    with pytest.raises(AmbiguousActorError) as caught:
        index.resolve("Front for the Liberation of Palestine", kind="organisation")
    assert sorted(c.canonical_name for c in caught.value.candidates) == [
        "Democratic Front for the Liberation of Palestine",
        "Popular Front for the Liberation of Palestine",
    ]
