"""The registry of interaction kinds is the single source: a kind registered there, and nowhere
else, is taken by the commands, recorded by the rules, known to the catalogue and the coding
table, shown by the contact views and offered by the OpenAPI document; a kind whose field the
command or the view lacks is refused at import, not in the projection runner."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from events.domain.codes import table_coding
from events.domain.coding import CODINGS, code_for
from events.domain.commands import COMMAND_DECODER, RecordInteraction
from events.domain.kinds import INTERACTION_KINDS, InteractionEvent, KindRegistry
from projections.contacts import InteractionView
from projections.contacts.views import KINDS
from service.app import create_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

# Registers one more kind, then imports what derives from the registry and reports what each
# part makes of it. The kind borrows ``subject`` (a field the command and the view have) and
# requires it, to show that a kind's fields and rules come from its event type.
_NEW_KIND = """
import json

import msgspec

from events.domain.codes import table_coding
from events.domain.kinds import INTERACTION_KINDS, InteractionEvent


@INTERACTION_KINDS.kind("mediation", table_coding("039", 5.0, "AGREE", "mediate"))
class MediationOffered(
    InteractionEvent, frozen=True, kw_only=True, tag="interaction.mediation_offered.v1"
):
    subject: str
"""

_REPORT = """
from events.domain import interactions
from events.domain.amendments import Stored
from events.domain.catalogue import CATALOGUE, EVENT_DECODER, ActorRegistered
from events.domain.coding import KINDS as CODED, code_for
from events.domain.commands import COMMAND_DECODER
from events.domain.directory import Directory
from events.domain.errors import InvalidCommandError
from projections.contacts.fold import interaction_from
from projections.contacts.views import KINDS
from projections.contacts.writer import _SINGLE_FACT
from service.app import create_app
from service.settings import Settings

directory = Directory()
for actor in ("qatar", "hamas"):
    directory.apply(ActorRegistered(actor_id=actor, kind="state", canonical_name=actor), actor)
command = {
    "type": "record_interaction", "kind": "mediation", "interaction_id": "m1",
    "participants": [{"actor": "qatar", "role": "initiator"},
                     {"actor": "hamas", "role": "recipient"}],
    "valid_time": "2024-02", "subject": "a ceasefire",
}
(event,) = interactions.decide(
    interactions.InteractionState(), COMMAND_DECODER.decode(json.dumps(command)), directory
)
refusals = {}
for name, value in (("subject", None), ("claim", "said so")):
    try:
        interactions.decide(
            interactions.InteractionState(),
            COMMAND_DECODER.decode(json.dumps({**command, name: value})),
            directory,
        )
    except InvalidCommandError as exc:
        refusals[name] = exc.field
view = interaction_from([Stored("e1", event)])
schema = create_app(Settings(run_projections=False)).openapi_schema.to_schema()
(kind_parameter,) = [
    p for p in schema["paths"]["/actors/{actor}/contacts"]["get"]["parameters"]
    if p["name"] == "kind"
]
print(json.dumps({
    "event": type(event).__name__,
    "cameo": event.coding.cameo,
    "stored_type": CATALOGUE.new_event(event).type,
    "decoded": type(EVENT_DECODER.decode(msgspec.json.encode(event))).__name__,
    "coded": "mediation" in CODED and code_for("mediation").plover_mode,
    "refusals": refusals,
    "view_kind": KINDS[type(event)],
    "view": [view.kind, view.subject],
    "single_fact": "interaction.mediation_offered.v1" in _SINGLE_FACT.types,
    "query_enum": kind_parameter["schema"]["enum"],
    "body_enum": schema["components"]["schemas"]["RecordInteractionBody"]["properties"]["kind"],
}))
"""


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # a fresh interpreter: the registry is read once, at import
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_kind_registered_in_one_place_reaches_every_derivation() -> None:
    done = _python(_NEW_KIND + _REPORT)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert report["event"] == "MediationOffered" and report["cameo"] == "039"
    assert report["stored_type"] == "interaction.mediation_offered.v1"
    assert report["decoded"] == "MediationOffered"
    assert report["coded"] == "mediate"
    # Its own field is required (the event type requires it); another kind's is refused.
    assert report["refusals"] == {"subject": "subject", "claim": "claim"}
    assert report["view_kind"] == "mediation"
    assert report["view"] == ["mediation", "a ceasefire"]
    assert report["single_fact"] is True
    assert "mediation" in report["query_enum"]
    assert "mediation" in report["body_enum"]["enum"]


def test_a_kind_field_the_command_cannot_carry_is_refused_at_import() -> None:
    code = _NEW_KIND.replace("subject: str", "mood: str") + "import projections.contacts\n"
    done = _python(code)
    assert done.returncode != 0
    assert "TypeError" in done.stderr and "RecordInteraction has no field for ['mood']" in (
        done.stderr
    )


def test_a_kind_registered_after_the_registry_was_read_is_refused() -> None:
    with pytest.raises(RuntimeError, match="registered after the registry was read"):
        INTERACTION_KINDS.register("late", InteractionEvent, table_coding("040", 1.0, "CONSULT"))
    fresh = KindRegistry()
    fresh.register("one", InteractionEvent, table_coding("040", 1.0, "CONSULT"))
    with pytest.raises(ValueError, match="registered already"):
        fresh.register("one", InteractionEvent, table_coding("040", 1.0, "CONSULT"))


@pytest.mark.parametrize("kind", list(INTERACTION_KINDS), ids=lambda kind: kind.name)
def test_every_registered_kind_is_everywhere(kind: Any) -> None:
    assert code_for(kind.name) == kind.coding == CODINGS[kind.name]
    assert KINDS[kind.event] == kind.name
    assert set(kind.fields) <= set(InteractionView.__struct_fields__)
    assert set(kind.fields) <= set(RecordInteraction.__struct_fields__)
    command = {"type": "record_interaction", "kind": kind.name, "interaction_id": "i",
               "participants": [], "valid_time": "2024"}  # fmt: skip
    decoded = COMMAND_DECODER.decode(json.dumps(command))
    assert isinstance(decoded, RecordInteraction) and decoded.kind == kind.name


def test_the_openapi_document_offers_exactly_the_registered_kinds() -> None:
    schema = create_app(Settings(run_projections=False)).openapi_schema.to_schema()
    body = schema["components"]["schemas"]["RecordInteractionBody"]["properties"]["kind"]
    assert body["enum"] == list(INTERACTION_KINDS.names())
