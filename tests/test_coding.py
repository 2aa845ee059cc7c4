"""The coding table: every kind's codes, overrides and their validation, the apology's two
PLOVER mappings, and the mapping version."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest

from events.domain.coding import (
    CODINGS,
    KINDS,
    MAPPING_VERSION,
    Coding,
    CodingOverride,
    code_for,
    quad_class_of,
)
from events.domain.errors import InvalidCommandError

# kind: (CAMEO, Goldstein, quad class, PLOVER type, PLOVER mode, PLOVER contexts), from the
# domain notes, section 1.1.
EXPECTED: dict[str, tuple[str, float, int, str | None, str | None, tuple[str, ...]]] = {
    "phone_call": ("041", 1.0, 1, "CONSULT", "phone", ()),
    "contacts": ("040", 1.0, 1, "CONSULT", None, ()),
    "meeting": ("044", 2.5, 1, "CONSULT", "third-party", ()),
    "visit": ("042", 1.9, 1, "CONSULT", "visit", ()),
    "host_visit": ("043", 2.8, 1, "CONSULT", "visit", ()),
    "negotiation": ("046", 7.0, 1, "CONSULT", None, ("diplomatic",)),
    "address": ("010", 0.0, 1, None, None, ()),
    "statement": ("010", 0.0, 1, None, None, ()),
    "meeting_scheduled": ("036", 4.0, 1, "AGREE", None, ()),
    "faction_invited": ("036", 4.0, 1, "AGREE", None, ()),
    "attendance_confirmed": ("036", 4.0, 1, "AGREE", None, ()),
    "attendance_declined": ("125", -5.0, 3, "REJECT", "meet", ()),
    "declaration_signed": ("057", 8.0, 1, "SUPPORT", None, ()),
    "signature_refused": ("127", -5.0, 3, "REJECT", "meet", ()),
    "rejection": ("120", -4.0, 3, "REJECT", None, ()),
    "apology": ("055", 7.0, 1, "CONCEDE", None, ()),
}


def test_kinds_are_the_table() -> None:
    assert frozenset(EXPECTED) == KINDS == frozenset(CODINGS)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_every_kind(kind: str) -> None:
    cameo, goldstein, quad, plover_type, plover_mode, contexts = EXPECTED[kind]
    coding = code_for(kind)
    assert coding.cameo == cameo
    assert isinstance(coding.cameo, str)
    assert coding.goldstein == goldstein
    assert coding.quad_class == quad == quad_class_of(cameo)
    assert coding.plover_type == plover_type
    assert coding.plover_mode == plover_mode
    assert coding.plover_contexts == contexts
    assert coding.mapping_version == MAPPING_VERSION
    assert not coding.overridden
    assert coding.alternatives == ({"cameo2plover_2021": "SUPPORT"} if kind == "apology" else {})


def test_mapping_version() -> None:
    assert MAPPING_VERSION == "diplofeed-2026.1"
    assert {c.mapping_version for c in CODINGS.values()} == {MAPPING_VERSION}


def test_apology_records_both_plover_mappings() -> None:
    coding = code_for("apology")
    # The PLOVER manual (regret or remorse is CONCEDE) is primary; CAMEO2PLOVER-2021 is kept.
    assert coding.plover_type == "CONCEDE"
    assert coding.alternatives == {"cameo2plover_2021": "SUPPORT"}
    decoded = msgspec.json.decode(msgspec.json.encode(coding), type=Coding)
    assert decoded == coding


def test_leading_zeros_survive_json() -> None:
    encoded = msgspec.json.encode(code_for("phone_call"))
    assert b'"cameo":"041"' in encoded
    # Defaults are omitted: not overridden, no alternatives, no contexts.
    assert b"overridden" not in encoded
    assert b"alternatives" not in encoded
    assert b"plover_contexts" not in encoded


def test_codings_are_fresh_copies() -> None:
    first = code_for("apology")
    first.alternatives["tampered"] = "ASSAULT"
    assert code_for("apology").alternatives == {"cameo2plover_2021": "SUPPORT"}
    assert CODINGS["apology"].alternatives == {"cameo2plover_2021": "SUPPORT"}
    with pytest.raises(TypeError):
        CODINGS["apology"] = first  # type: ignore[index]


def test_unknown_kind_names_the_known_kinds() -> None:
    with pytest.raises(InvalidCommandError, match="unknown interaction kind 'telegram'") as caught:
        code_for("telegram")
    assert caught.value.field == "coding.kind"
    for kind in KINDS:
        assert kind in str(caught.value)


def test_contexts_are_added_without_duplicates() -> None:
    coding = code_for("phone_call", contexts=("human_security", "political_institutions"))
    assert coding.plover_contexts == ("human_security", "political_institutions")
    assert not coding.overridden
    coding = code_for("negotiation", contexts=("human_security", "diplomatic"))
    assert coding.plover_contexts == ("diplomatic", "human_security")


def test_override_replaces_given_fields() -> None:
    coding = code_for("meeting", override=CodingOverride(plover_mode="multilateral"))
    assert coding.overridden
    assert coding.plover_mode == "multilateral"
    assert (coding.cameo, coding.goldstein, coding.quad_class) == ("044", 2.5, 1)
    assert coding.plover_type == "CONSULT"
    assert coding.mapping_version == MAPPING_VERSION


def test_override_of_all_fields() -> None:
    override = CodingOverride(
        cameo="046",
        goldstein=6.5,
        quad_class=1,
        plover_type="CONSULT",
        plover_mode="third-party",
        plover_contexts=("diplomatic", "political_institutions"),
    )
    coding = code_for("meeting", override=override, contexts=("human_security",))
    assert coding == Coding(
        cameo="046",
        goldstein=6.5,
        quad_class=1,
        plover_type="CONSULT",
        plover_mode="third-party",
        plover_contexts=("diplomatic", "political_institutions", "human_security"),
        mapping_version=MAPPING_VERSION,
        overridden=True,
    )


def test_override_contexts_replace_the_tables() -> None:
    coding = code_for("negotiation", override=CodingOverride(plover_contexts=("human_security",)))
    assert coding.plover_contexts == ("human_security",)
    assert coding.overridden


def test_override_can_drop_plover_type_and_mode() -> None:
    coding = code_for("phone_call", override=CodingOverride(plover_type=None, plover_mode=None))
    assert coding.overridden
    assert (coding.plover_type, coding.plover_mode) == (None, None)


def test_override_can_give_a_statement_a_plover_type() -> None:
    coding = code_for("statement", override=CodingOverride(plover_type="SUPPORT"))
    assert (coding.cameo, coding.plover_type, coding.overridden) == ("010", "SUPPORT", True)


def test_empty_override_changes_nothing() -> None:
    assert code_for("visit", override=CodingOverride()) == code_for("visit")


def test_new_cameo_brings_its_quad_class_and_known_goldstein() -> None:
    coding = code_for("meeting", override=CodingOverride(cameo="127"))
    assert (coding.cameo, coding.goldstein, coding.quad_class) == ("127", -5.0, 3)
    coding = code_for("meeting", override=CodingOverride(cameo="0211", goldstein=3.4))
    assert (coding.cameo, coding.goldstein, coding.quad_class) == ("0211", 3.4, 1)
    coding = code_for("statement", override=CodingOverride(cameo="190", goldstein=-10))
    assert (coding.goldstein, coding.quad_class) == (-10.0, 4)
    assert isinstance(coding.goldstein, float)


def test_new_cameo_with_unknown_goldstein_must_give_it() -> None:
    with pytest.raises(InvalidCommandError, match="Goldstein score of CAMEO 0211") as caught:
        code_for("meeting", override=CodingOverride(cameo="0211"))
    assert caught.value.field == "coding.goldstein"


def test_explicit_quad_class_wins() -> None:
    coding = code_for("meeting", override=CodingOverride(cameo="0211", goldstein=3.4, quad_class=2))
    assert coding.quad_class == 2


def test_override_decodes_from_json() -> None:
    override = msgspec.json.decode(b'{"plover_type": null, "cameo": "042"}', type=CodingOverride)
    coding = code_for("meeting", override=override)
    assert (coding.cameo, coding.goldstein, coding.plover_type) == ("042", 1.9, None)
    assert coding.plover_mode == "third-party"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cameo": "41"}, "coding.cameo"),  # a root 41 does not exist
        ({"cameo": "4"}, "coding.cameo"),
        ({"cameo": "04111"}, "coding.cameo"),
        ({"cameo": "00"}, "coding.cameo"),
        ({"cameo": "21"}, "coding.cameo"),
        ({"cameo": "04a"}, "coding.cameo"),
        ({"cameo": 41}, "coding.cameo"),
        ({"cameo": ""}, "coding.cameo"),
        ({"quad_class": 0}, "coding.quad_class"),
        ({"quad_class": 5}, "coding.quad_class"),
        ({"quad_class": True}, "coding.quad_class"),
        ({"goldstein": 10.5}, "coding.goldstein"),
        ({"goldstein": -11}, "coding.goldstein"),
        ({"goldstein": math.nan}, "coding.goldstein"),
        ({"goldstein": math.inf}, "coding.goldstein"),
        ({"goldstein": "7"}, "coding.goldstein"),
        ({"plover_type": "consult"}, "coding.plover_type"),
        ({"plover_type": ""}, "coding.plover_type"),
        ({"plover_mode": "Third Party"}, "coding.plover_mode"),
        ({"plover_contexts": ("diplomatic", "")}, "coding.plover_contexts"),
    ],
)
def test_override_validation(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidCommandError) as caught:
        code_for("meeting", override=CodingOverride(**changes))
    assert caught.value.field == field


@pytest.mark.parametrize("goldstein", [-10, -10.0, 0, 10.0])
def test_goldstein_limits_are_inclusive(goldstein: float) -> None:
    coding = code_for("meeting", override=CodingOverride(goldstein=goldstein))
    assert coding.goldstein == float(goldstein)


def test_contexts_are_validated() -> None:
    with pytest.raises(InvalidCommandError) as caught:
        code_for("phone_call", contexts=("Human Security",))
    assert caught.value.field == "coding.contexts"


@pytest.mark.parametrize(
    ("cameo", "quad"),
    [
        ("010", 1),
        ("057", 1),
        ("061", 2),
        ("0874", 2),
        ("090", 3),
        ("1125", 3),
        ("150", 4),
        ("20", 4),
    ],
)
def test_quad_class_of(cameo: str, quad: int) -> None:
    assert quad_class_of(cameo) == quad
