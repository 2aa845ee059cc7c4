"""The bounds of what a command carries: documented in the OpenAPI document for every string,
list, number and map of every request body; checked on every path into the log (the HTTP API,
the seed and loader decoder); never applied to events already stored. And the checks in front
of the decoders: JSON nesting, feed filters, names the actor index cannot hold."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from events.domain import actors
from events.domain.amendments import Stored
from events.domain.catalogue import CATALOGUE, ActorRegistered
from events.domain.commands import COMMAND_DECODER, CorrectEvent, RegisterActor
from events.domain.errors import InvalidCommandError
from events.domain.vocabulary import Source
from events.errors import InvalidReadError
from events.records import FeedFilter
from service.app import create_app
from service.bodies import MAX_JSON_DEPTH, excess_depth
from service.problems import field_error
from service.settings import Settings
from tests.domain_bdd import given


def _openapi() -> dict[str, Any]:
    document: dict[str, Any] = create_app(
        Settings(run_projections=False)
    ).openapi_schema.to_schema()
    return document


_MAXIMUM = {"string": "maxLength", "array": "maxItems", "integer": "maximum"}


def _missing_maximum(schema: dict[str, Any]) -> str | None:
    """What kind of unbounded value ``schema`` itself describes, if any."""
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]: the non-null one
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object":
        maps = isinstance(schema.get("additionalProperties"), dict)
        return "map" if maps and "maxProperties" not in schema else None
    if kind not in _MAXIMUM or _MAXIMUM[kind] in schema:
        return None
    # Closed sets, formats and fixed tuples bound themselves.
    if {"enum", "const", "format", "prefixItems"} & schema.keys():
        return None
    return str(kind)


def _unbounded(schema: Any, components: dict[str, Any], where: str, seen: set[str]) -> list[str]:
    """Every string, array, integer or map in ``schema`` without a documented maximum."""
    if not isinstance(schema, dict):
        return []
    ref = schema.get("$ref")
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return []
        seen.add(name)
        return _unbounded(components[name], components, name, seen)
    missing = _missing_maximum(schema)
    found = [f"{where}: {missing}"] if missing else []
    for key in ("oneOf", "anyOf", "allOf", "prefixItems"):
        for n, part in enumerate(schema.get(key) or []):
            # A union member inherits the bounds written beside the union.
            merged = {**{k: v for k, v in schema.items() if k != key}, **part}
            found += _unbounded(merged, components, f"{where}|{n}", seen)
    parts = [(f".{name}", part) for name, part in (schema.get("properties") or {}).items()]
    parts += [
        (f".{key}", schema[key]) for key in ("items", "additionalProperties") if key in schema
    ]
    for suffix, part in parts:
        found += _unbounded(part, components, f"{where}{suffix}", seen)
    return found


def test_every_request_body_documents_a_maximum_for_everything_it_carries() -> None:
    document = _openapi()
    components = document["components"]["schemas"]
    bodies = 0
    unbounded: list[str] = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody")
            if body is None:
                continue
            bodies += 1
            schema = body["content"]["application/json"]["schema"]
            unbounded += _unbounded(schema, components, f"{method.upper()} {path}", set())
    assert bodies >= 21  # every command route, and POST /keys
    assert unbounded == []


def test_the_documented_bounds_are_the_checked_ones() -> None:
    components = _openapi()["components"]["schemas"]
    interaction = components["RecordInteractionBody"]["properties"]
    assert interaction["topics"]["maxItems"] == 50
    assert interaction["topics"]["items"]["maxLength"] == 500
    assert interaction["participants"]["maxItems"] == 200
    assert interaction["min_count"]["maximum"] == 1_000_000_000
    assert components["SourceInput"]["properties"]["publisher"]["maxLength"] == 500
    assert components["SourceInput"]["properties"]["quote"]["maxLength"] == 5000
    assert components["SourceInput"]["properties"]["url"]["maxLength"] == 2000
    assert components["CorrectEventBody"]["properties"]["changes"]["maxProperties"] == 30
    assert components["CreateKeyRequest"]["properties"]["scopes"]["maxItems"] == 3


def _seed_line(**changes: Any) -> str:
    command = {
        "type": "register_actor",
        "actor_id": "a1",
        "kind": "person",
        "canonical_name": "A One",
        "sources": [{"publisher": "Example", "quote": "A line.\nAnother."}],
    }
    command.update(changes)
    return json.dumps(command)


def test_the_seed_and_loader_decoder_checks_the_same_bounds() -> None:
    assert isinstance(COMMAND_DECODER.decode(_seed_line()), RegisterActor)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"sources": [{"publisher": "Ex\u0000ample"}]}, "$.sources[0].publisher"),
        ({"sources": [{"publisher": "x" * 501}]}, "$.sources[0].publisher"),
        ({"sources": [{"quote": "a\u0000"}]}, "$.sources[0].quote"),
        ({"aliases": [{"text": "A\nOne"}]}, "$.aliases[0].text"),
        ({"canonical_name": "A One\n"}, "$.canonical_name"),
        ({"sources": [{}] * 51}, "$.sources"),
    ]
    for changes, path in cases:
        with pytest.raises(msgspec.ValidationError) as caught:
            COMMAND_DECODER.decode(_seed_line(**changes))
        assert field_error(str(caught.value))["field"] == path, caught.value


def test_events_already_stored_decode_whatever_their_sizes() -> None:
    # Bounds are for what comes in: a log written before them must still be read.
    stored = ActorRegistered(
        actor_id="a1",
        kind="person",
        canonical_name="A One",
        sources=(Source(publisher="p" * 1_000_000, title="t\u0001"),),
    )
    data = msgspec.json.encode(stored)
    assert CATALOGUE.decode_data("actor.registered.v1", 1, data) == stored


def test_a_pattern_failure_is_explained_not_quoted() -> None:
    with pytest.raises(msgspec.ValidationError) as caught:
        COMMAND_DECODER.decode(_seed_line(canonical_name="A\u0007"))
    error = field_error(str(caught.value))
    assert error == {
        "field": "$.canonical_name",
        "reason": "must be one line of text: no control characters, line breaks or tabs",
    }


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        (b'{"a": [1, 2, {"b": [3]}]}', False),
        (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, False),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), True),
        (b'{"a": "' + b"[" * 1_000 + b'"}', False),  # brackets in a string do not nest
        (b'{"a": "\\"' + b"[" * 1_000 + b'"}', False),  # nor after an escaped quote
        (b'{"a": "\\\\", "b": ' + b"{" * 40 + b"}" * 40 + b"}", True),
        (b"[" * 1_000, True),  # never closed, still too deep
        (b"]" * 1_000, False),
    ],
)
def test_nesting_is_measured_outside_strings(text: bytes, deep: bool) -> None:
    assert excess_depth(text) is deep


@pytest.mark.parametrize(
    "flt",
    [
        {"type_prefix": "actor.\u0000"},
        {"type_prefix": "actor registered"},
        {"category": "act\u0000or"},
        {"categories": ("actor", "meet ing")},
        {"stream_id": "actor-a\u0000"},
        {"stream_id": "a" * 201},
    ],
)
def test_a_feed_filter_no_stored_event_could_match_is_refused(flt: dict[str, Any]) -> None:
    with pytest.raises(InvalidReadError):
        FeedFilter(**flt)


def test_a_name_the_actor_index_cannot_hold_is_refused() -> None:
    for name in ("$\u00ae", "--", "'"):
        given(actors).when(
            RegisterActor(actor_id="a1", kind="person", canonical_name=name)
        ).then_raises(InvalidCommandError, match="no letters or digits", field="canonical_name")
    registered = ActorRegistered(actor_id="a1", kind="person", canonical_name="A One")
    given(actors, Stored("e1", registered)).when(
        CorrectEvent(
            stream="actor-a1", target_event_id="e1", changes={"canonical_name": "!"}, reason="r"
        )
    ).then_raises(InvalidCommandError, match="no letters", field="changes.canonical_name")
