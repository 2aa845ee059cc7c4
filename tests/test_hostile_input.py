"""Hostile input through the real API: malformed and deeply nested JSON, control characters in
every kind of string, oversized strings, lists, numbers and bodies, malformed and oversized
headers, bad cursors and query parameters on every read route, wrong content types, and
misused API keys.

Every case must be refused with a 4xx (never a 5xx), as ``application/problem+json`` when it
has a body, and must leave the log as it was. Each write case is built from a template that
the last test records as it is, so every case is one hostile part away from a valid write.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest

from events.domain.bounds import (
    MAX_ALIASES,
    MAX_CONTEXTS,
    MAX_PARTICIPANTS,
    MAX_SOURCES,
    MAX_TOPICS,
)
from service.bodies import MAX_JSON_DEPTH
from tests.api_server import running_api
from tests.database import scratch_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.api_server import ApiServer

PROBLEM = "application/problem+json"
EVENT = "{event}"  # the interaction's event id, known once the fixture has recorded it

_SOURCE = {
    "url": "https://example.org/report",
    "publisher": "Example News",
    "language": "en",
    "quote": "The ministers spoke by phone.\nThey agreed to meet.",
    "attributed_to": "The foreign ministry",
    "title": "Ministers speak",
}
_PLACE = {"name": "Moscow", "country": "RUS", "geonames_id": 524901, "venue": "The Kremlin"}
_PARTIES = [
    {
        "actor": "h_person",
        "role": "initiator",
        "name_as_reported": "Mr Person",
        "title_as_reported": "Minister",
        "organisation": "h_org",
    },
    {"actor": "h_state", "role": "recipient"},
]

# Valid writes, in an order in which each holds after the ones before it (the last test
# records them all). The hostile cases change one part of one of them.
TEMPLATES: dict[str, tuple[str, dict[str, Any]]] = {
    "register": (
        "/actors",
        {
            "actor_id": "h_new",
            "kind": "person",
            "canonical_name": "New Person",
            "aliases": [{"text": "Newbie", "lang": "en", "script": "Latn", "scheme": "press"}],
            "cameo_code": "RUS",
            "wikidata_qid": "Q42",
            "country": "RUS",
            "command_id": "register-h-new",
            "sources": [_SOURCE],
        },
    ),
    "alias": ("/actors/h_person/aliases", {"alias": {"text": "P. Person", "scheme": "BGN"}}),
    "role": (
        "/actors/h_person/roles",
        {
            "organisation": "h_org",
            "title_as_reported": "Minister",
            "role_code": "minister",
            "valid_time": "2024",
            "valid_time_raw": "in 2024",
        },
    ),
    "call": (
        "/interactions",
        {
            "kind": "phone_call",
            "interaction_id": "h_call2",
            "participants": _PARTIES,
            "valid_time": "2024-02-28",
            "valid_time_raw": "on Wednesday",
            "place": _PLACE,
            "topics": ["trade"],
            "attributed_to": "TASS",
            "contexts": ["diplomatic"],
            "coding": {"plover_mode": "phone"},
            "sources": [_SOURCE],
        },
    ),
    "address": (
        "/interactions",
        {
            "kind": "address",
            "interaction_id": "h_address",
            "participants": [{"actor": "h_person", "role": "speaker"}],
            "valid_time": "2024-03",
            "quote": "We\tremain open to talks.",
        },
    ),
    "contacts": (
        "/interactions",
        {
            "kind": "contacts",
            "interaction_id": "h_contacts",
            "participants": _PARTIES,
            "valid_time": "2007/2011",
            "cardinality_text": "more than twenty times",
            "min_count": 20,
        },
    ),
    "statement": (
        "/interactions",
        {
            "kind": "statement",
            "interaction_id": "h_statement",
            "participants": [{"actor": "h_person", "role": "speaker"}],
            "valid_time": "2024",
            "claim": "The talks went well.",
        },
    ),
    "apology": (
        "/apologies",
        {
            "interaction_id": "h_apology",
            "participants": [
                {"actor": "h_person", "role": "apologiser"},
                {"actor": "h_state", "role": "apology_recipient"},
            ],
            "valid_time": "2024",
            "subject": "the delay",
        },
    ),
    "meeting": (
        "/meetings",
        {
            "meeting_id": "h_meeting2",
            "title": "Talks",
            "host": "h_state",
            "organiser": "h_org",
            "place": _PLACE,
            "valid_time": "2024-05",
            "valid_time_raw": "in May",
            "attributed_to": "TASS",
        },
    ),
    "invite": (
        "/meetings/h_meeting/invitations",
        {"faction": "h_state", "name_as_reported": "Russia", "inviter": "h_org"},
    ),
    "leader": (
        "/meetings/h_meeting/leaders",
        {
            "faction": "h_state",
            "person": "h_person",
            "name_as_reported": "Mr Person",
            "title_as_reported": "Minister",
        },
    ),
    "revise": ("/meetings/h_meeting/date-revisions", {"valid_time": "2024-07", "reason": "Late"}),
    "declaration": (
        "/declarations",
        {"declaration_id": "h_decl2", "title": "Joint statement", "valid_time": "2024"},
    ),
    "sign": (
        "/declarations/h_decl/signatures",
        {"signatory": "h_state", "name_as_reported": "Russia", "valid_time": "2024-06"},
    ),
    "refuse": ("/declarations/h_decl/refusals", {"refuser": "h_org", "reason": "Not agreed"}),
    "source": (f"/streams/interaction-h_call/events/{EVENT}/sources", {"source": _SOURCE}),
    "correct": (
        f"/streams/interaction-h_call/events/{EVENT}/corrections",
        {"changes": {"topics": ["trade", "energy"]}, "reason": "A topic was left out"},
    ),
    "key": ("/keys", {"name": "a key", "scopes": ["read"]}),
    "cancel": ("/meetings/h_meeting/cancellation", {"reason": "Called off"}),
    "merge": ("/actors/h_person/merges", {"merged_actor": "h_twin", "reason": "The same man"}),
}
_IF_MATCH = {"correct": "*"}


@dataclass(frozen=True)
class Case:
    """One hostile request and what its refusal must say."""

    name: str
    method: str
    path: str
    body: Any = None
    """A JSON value, or bytes sent as they are."""
    headers: tuple[tuple[str, str], ...] = ()
    scope: str | None = "admin"
    status: int | None = None
    """The status expected exactly (any 4xx when None)."""
    field: str | None = None
    """A field the problem's ``errors`` must name."""
    says: str | None = None
    """Words the problem's ``detail`` must hold."""


def _put(body: Any, path: str, value: Any) -> Any:
    """``body`` with the member at the dotted ``path`` (list indexes as numbers) set."""
    changed = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = changed
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return changed


def _write(name: str, template: str, path: str, value: Any, **kwargs: Any) -> Case:
    """The ``template`` write with the member at ``path`` set to ``value``."""
    route, body = TEMPLATES[template]
    headers = kwargs.pop("headers", ())
    if template in _IF_MATCH:
        headers = (("If-Match", _IF_MATCH[template]), *headers)
    return Case(name, "POST", route, _put(body, path, value), headers=headers, **kwargs)


def _json_path(path: str) -> str:
    parts = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path.split("."))
    return f"${parts}"


# -- strings: each kind of string field, by template and path ------------------------------------

STRING_FIELDS: list[tuple[str, str]] = [
    ("register", "canonical_name"),
    ("register", "command_id"),
    ("register", "aliases.0.text"),
    ("register", "aliases.0.lang"),
    ("register", "aliases.0.script"),
    ("register", "aliases.0.scheme"),
    ("register", "sources.0.url"),
    ("register", "sources.0.publisher"),
    ("register", "sources.0.language"),
    ("register", "sources.0.quote"),
    ("register", "sources.0.attributed_to"),
    ("register", "sources.0.title"),
    ("alias", "alias.text"),
    ("role", "organisation"),
    ("role", "title_as_reported"),
    ("role", "role_code"),
    ("role", "valid_time"),
    ("role", "valid_time_raw"),
    ("call", "participants.0.actor"),
    ("call", "participants.0.name_as_reported"),
    ("call", "participants.0.title_as_reported"),
    ("call", "participants.0.organisation"),
    ("call", "place.name"),
    ("call", "place.venue"),
    ("call", "topics.0"),
    ("call", "contexts.0"),
    ("call", "attributed_to"),
    ("call", "coding.plover_mode"),
    ("address", "quote"),
    ("contacts", "cardinality_text"),
    ("statement", "claim"),
    ("apology", "subject"),
    ("meeting", "title"),
    ("meeting", "host"),
    ("invite", "faction"),
    ("invite", "name_as_reported"),
    ("leader", "person"),
    ("revise", "reason"),
    ("declaration", "title"),
    ("sign", "signatory"),
    ("refuse", "reason"),
    ("source", "source.publisher"),
    ("correct", "reason"),
    ("correct", "changes.topics"),
    ("key", "name"),
    ("cancel", "reason"),
]
"""Every kind of string a write takes: names, references, codes, dates, prose, URLs, nested in
sources, aliases, places, participants and corrections."""

_LINE_FIELDS = [
    ("register", "canonical_name"),
    ("register", "sources.0.publisher"),
    ("role", "valid_time"),
    ("call", "topics.0"),
    ("call", "participants.0.actor"),
    ("meeting", "title"),
    ("key", "name"),
    ("alias", "alias.text"),
]
"""One-line fields, which refuse line breaks and tabs too."""


def _poison(template: str, path: str, char: str) -> Any:
    """A value of the field's kind carrying ``char``."""
    value = TEMPLATES[template][1]
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    if isinstance(value, list):  # a correction's list: poison its first item
        return [f"{value[0]}{char}", *value[1:]]
    assert isinstance(value, str)
    return value[:1] + char + value[1:]


STRING_CASES = [
    *(
        _write(f"nul-{t}-{p}", t, p, _poison(t, p, "\u0000"), status=422, field=_json_path(p))
        for t, p in STRING_FIELDS
        if not p.startswith("changes.")
    ),
    _write("nul-correct-changes", "correct", "changes.topics", ["trade\u0000"], status=422),
    _write("nul-correct-key", "correct", "changes", {"top\u0000ics": ["x"]}, status=422),
    _write("nul-correct-reason-in-value", "correct", "changes", {"reason": "a\u0000"}, status=422),
    *(
        _write(f"esc-{t}-{p}", t, p, _poison(t, p, "\u001b[2J"), status=422, field=_json_path(p))
        for t, p in STRING_FIELDS[::3]
        if not p.startswith("changes.")
    ),
    *(
        _write(f"c1-{t}-{p}", t, p, _poison(t, p, "\u009b"), status=422, field=_json_path(p))
        for t, p in STRING_FIELDS[1::4]
        if not p.startswith("changes.")
    ),
    *(
        _write(f"del-{t}-{p}", t, p, _poison(t, p, "\u007f"), status=422, field=_json_path(p))
        for t, p in STRING_FIELDS[2::5]
        if not p.startswith("changes.")
    ),
    *(
        _write(f"newline-{t}-{p}", t, p, _poison(t, p, "\n"), status=422, field=_json_path(p))
        for t, p in _LINE_FIELDS
    ),
    *(
        _write(f"trailing-newline-{t}-{p}", t, p, _poison(t, p, "") + "\n", status=422)
        for t, p in _LINE_FIELDS[:3]
    ),
    _write("trailing-newline-id", "register", "actor_id", "h_new\n", status=422),
    _write("tab-in-name", "register", "canonical_name", "New\tPerson", status=422),
    _write("bell-in-prose", "address", "quote", "We\u0007remain", status=422, field="$.quote"),
    Case("nul-in-path", "POST", "/actors/h%00person/aliases", TEMPLATES["alias"][1], status=422,
         field="$.actor"),
    Case("newline-in-path", "POST", "/meetings/h_meeting%0A/invitations",
         TEMPLATES["invite"][1], status=422, field="$.meeting_id"),
    Case("nul-in-stream-path", "POST", f"/streams/interaction-h%00call/events/{EVENT}/sources",
         TEMPLATES["source"][1], status=422),
    Case("nul-in-event-path", "POST", "/streams/interaction-h_call/events/a%00b/sources",
         TEMPLATES["source"][1], status=422),
]  # fmt: skip

# -- JSON that does not parse, or nests too deeply -----------------------------------------------

_MALFORMED: list[tuple[str, bytes]] = [
    ("truncated", b'{"actor_id": "h_new"'),
    ("trailing-comma", b'{"actor_id": "h_new",}'),
    ("single-quotes", b"{'actor_id': 'h_new'}"),
    ("trailing-garbage", b'{"actor_id": "h_new"} x'),
    ("bare-word", b"nope"),
    ("empty", b""),
    ("null", b"null"),
    ("array", b"[]"),
    ("string", b'"actor"'),
    ("number", b"42"),
    ("invalid-utf8", b'{"actor_id": "\xff\xfe"}'),
    ("utf8-bom", b'\xef\xbb\xbf{"actor_id": "h_new"}'),
    ("lone-surrogate", b'{"actor_id": "h_new", "kind": "person", "canonical_name": "\\ud800"}'),
    ("bad-escape", b'{"canonical_name": "\\x41"}'),
    ("nan", b'{"min_count": NaN}'),
    ("duplicate-deep-key", b'{"sources": [{"url": 1, "url": 2}]}'),
    ("unterminated-string", b'{"canonical_name": "' + b"a" * 10_000),
    ("only-brackets", b"[" * 5_000),
    ("only-braces", b"{" * 5_000),
    ("mismatched", b"[" * 40 + b"}" * 40),
]


_TOO_DEEP = f"nested deeper than {MAX_JSON_DEPTH} levels"


def _nest(depth: int, *, arrays: bool, inner: str = "1") -> str:
    opening, closing = ("[", "]") if arrays else ('{"a":', "}")
    return opening * depth + inner + closing * depth


def _deep(
    name: str, route: str, depth: int, *, arrays: bool, where: str = "", field: str | None = None
) -> Case:
    nested = _nest(depth, arrays=arrays)
    text = nested if not where else where.replace("@", nested)
    return Case(name, "POST", route, text.encode(), status=400, field=field, says=_TOO_DEEP)


_CORRECT_ROUTE = TEMPLATES["correct"][0]
JSON_CASES = [
    *(Case(f"malformed-{n}", "POST", "/actors", raw) for n, raw in _MALFORMED),
    *(Case(f"malformed-key-{n}", "POST", "/keys", raw) for n, raw in _MALFORMED[:8]),
    Case("float-overflow", "POST", "/interactions",
         json.dumps(TEMPLATES["contacts"][1]).replace('"min_count": 20', '"min_count": 1e400')
         .encode(), status=400),
    _deep("deep-arrays-top", "/actors", 1_000, arrays=True),
    _deep("deep-objects-top", "/actors", 1_000, arrays=False, field="$" + ".a" * MAX_JSON_DEPTH),
    _deep("deep-arrays-100k", "/actors", 100_000, arrays=True),
    _deep("deep-objects-50k", "/interactions", 50_000, arrays=False),
    _deep("deep-just-past-limit", "/actors", MAX_JSON_DEPTH + 1, arrays=True),
    _deep("deep-in-changes", _CORRECT_ROUTE, 1_000, arrays=True,
          where='{"changes": {"topics": @}, "reason": "r"}'),
    _deep("deep-objects-in-changes", _CORRECT_ROUTE, 1_000, arrays=False,
          where='{"changes": @, "reason": "r"}'),
    _deep("deep-in-unknown-field", "/actors", 1_000, arrays=True,
          where='{"actor_id": "h_new", "zzz": @}'),
    _deep("deep-in-sources", "/actors", 1_000, arrays=True, where='{"sources": @}',
          field="$.sources" + "[0]" * (MAX_JSON_DEPTH - 1)),
    _deep("deep-in-key-name", "/keys", 1_000, arrays=True, where='{"name": @, "scopes": []}'),
    _deep("deep-in-unknown-key-field", "/keys", 1_000, arrays=False,
          where='{"name": "k", "scopes": ["read"], "zzz": @}'),
    _deep("deep-in-coding", "/interactions", 2_000, arrays=True, where='{"coding": @}'),
    _deep("deep-in-alias", "/actors/h_person/aliases", 1_000, arrays=False,
          where='{"alias": @}'),
    _deep("deep-mixed", "/meetings", 600, arrays=True,
          where='{"place": {"name": [{"a": @}]}}'),
    _write("correction-nested-five-deep", "correct", "changes.topics", [[[[["x"]]]]],
           status=422),
]  # fmt: skip

# -- sizes: strings, lists, numbers, bodies ------------------------------------------------------

_TOO_LONG: list[tuple[str, str, int]] = [
    ("register", "canonical_name", 501),
    ("register", "command_id", 201),
    ("register", "sources.0.publisher", 501),
    ("register", "sources.0.publisher", 600_000),
    ("register", "sources.0.quote", 5_001),
    ("register", "sources.0.url", 2_001),
    ("register", "sources.0.language", 36),
    ("register", "aliases.0.text", 501),
    ("register", "aliases.0.lang", 36),
    ("register", "aliases.0.scheme", 65),
    ("register", "cameo_code", 31),
    ("register", "wikidata_qid", 30),
    ("alias", "alias.text", 100_000),
    ("role", "role_code", 65),
    ("role", "role_code", 300_000),
    ("role", "organisation", 301),
    ("role", "valid_time", 201),
    ("call", "participants.0.actor", 301),
    ("call", "topics.0", 501),
    ("call", "contexts.0", 65),
    ("call", "contexts.0", 500_000),
    ("call", "place.name", 501),
    ("call", "coding.plover_mode", 65),
    ("address", "quote", 5_001),
    ("statement", "claim", 5_001),
    ("meeting", "title", 501),
    ("revise", "reason", 5_001),
    ("source", "source.title", 501),
    ("correct", "reason", 5_001),
    ("key", "name", 201),
]


def _long(template: str, path: str, length: int) -> Any:
    value = _poison(template, path, "")
    if path.endswith(("url",)):
        return "https://example.org/" + "a" * length
    if path.endswith(("language", "lang", "cameo_code")):
        return "a" * length if path.endswith(("language", "lang")) else "RUS" * (length // 3 + 1)
    if path.endswith("wikidata_qid"):
        return "Q" + "1" * length
    return (value * (length // max(len(value), 1) + 1))[:length]


def _many(template: str, field: str, count: int) -> list[Any]:
    """The first item of the template's list ``field``, ``count`` times."""
    items: list[Any] = TEMPLATES[template][1][field]
    return [items[0]] * count


SIZE_CASES = [
    *(
        _write(f"long-{t}-{p}-{n}", t, p, _long(t, p, n), status=422, field=_json_path(p))
        for t, p, n in _TOO_LONG
    ),
    _write("too-many-topics", "call", "topics", [f"t{i}" for i in range(MAX_TOPICS + 1)],
           status=422, field="$.topics"),
    _write("topics-100k", "call", "topics", ["t"] * 100_000, status=422, field="$.topics"),
    _write("too-many-contexts", "call", "contexts", ["diplomatic"] * (MAX_CONTEXTS + 1),
           status=422, field="$.contexts"),
    _write("too-many-sources", "register", "sources", _many("register", "sources",
           MAX_SOURCES + 1), status=422, field="$.sources"),
    _write("too-many-participants", "call", "participants",
           _many("call", "participants", MAX_PARTICIPANTS + 1), status=422,
           field="$.participants"),
    _write("too-many-aliases", "register", "aliases", _many("register", "aliases", MAX_ALIASES + 1),
           status=422, field="$.aliases"),
    _write("too-many-plover-contexts", "call", "coding", {"plover_contexts": ["x"] * 21},
           status=422),
    _write("too-many-changes", "correct", "changes", {f"f{i}": 1 for i in range(31)},
           status=422),
    _write("long-change-value", "correct", "changes", {"topics": ["t" * 5_001]}, status=422),
    _write("long-change-list", "correct", "changes", {"topics": ["t"] * 201}, status=422),
    _write("change-key-too-long", "correct", "changes", {"t" * 65: 1}, status=422),
    _write("too-many-scopes", "key", "scopes", ["read"] * 4, status=422, field="$.scopes"),
    _write("count-400-digits", "contacts", "min_count", 10**400, status=422,
           field="$.min_count"),
    _write("count-over-a-billion", "contacts", "min_count", 1_000_000_001, status=422,
           field="$.min_count"),
    _write("count-zero", "contacts", "min_count", 0, status=422, field="$.min_count"),
    _write("count-negative", "contacts", "min_count", -5, status=422, field="$.min_count"),
    _write("geonames-huge", "call", "place.geonames_id", 10**12, status=422,
           field="$.place.geonames_id"),
    _write("geonames-zero", "call", "place.geonames_id", 0, status=422,
           field="$.place.geonames_id"),
    _write("goldstein-past-ten", "call", "coding", {"goldstein": 10.5}, status=422),
    _write("quad-class-five", "call", "coding", {"quad_class": 5}, status=422),
    _write("change-int-400-digits", "correct", "changes", {"topics": 10**400}, status=422),
    Case("body-over-limit", "POST", "/actors", b'{"canonical_name": "' + b"a" * 1_100_000
         + b'"}', status=413),
    Case("key-body-over-limit", "POST", "/keys", b'{"name": "' + b"a" * 1_100_000 + b'"}',
         status=413),
]  # fmt: skip

# -- headers ---------------------------------------------------------------------------------

_TOKEN_LIKE = "dfk_000000000000_" + "x" * 43


def _register_with(name: str, headers: dict[str, str], **kwargs: Any) -> Case:
    route, body = TEMPLATES["register"]
    return Case(name, "POST", route, body, headers=tuple(headers.items()), **kwargs)


HEADER_CASES = [
    _register_with("idempotency-key-256", {"Idempotency-Key": "k" * 256}, status=400),
    _register_with("idempotency-key-10k", {"Idempotency-Key": "k" * 10_000}, status=400),
    _register_with("authorization-10k", {"Authorization": "Bearer " + "x" * 10_000},
                   scope=None, status=401),
    _register_with("authorization-bare-scheme", {"Authorization": "Bearer"}, scope=None,
                   status=401),
    _register_with("authorization-basic", {"Authorization": "Basic dXNlcjpwYXNz"}, scope=None,
                   status=401),
    _register_with("authorization-two-tokens", {"Authorization": f"Bearer a {_TOKEN_LIKE}"},
                   scope=None, status=401),
    _register_with("authorization-unknown-key", {"Authorization": f"Bearer {_TOKEN_LIKE}"},
                   scope=None, status=401),
    _register_with("x-api-key-garbage", {"X-API-Key": "\u00e9" * 300}, scope=None,
                   status=401),
    _register_with("content-type-10k", {"Content-Type": "application/" + "x" * 10_000},
                   status=415),
    _register_with("content-type-text-10k-params",
                   {"Content-Type": "text/plain; " + "a=b;" * 2_000}, status=415),
    _register_with("content-type-text", {"Content-Type": "text/plain"}, status=415),
    _register_with("content-type-xml", {"Content-Type": "application/xml"}, status=415),
    _register_with("content-type-form", {"Content-Type": "application/x-www-form-urlencoded"},
                   status=415),
    _register_with("content-type-multipart",
                   {"Content-Type": "multipart/form-data; boundary=x"}, status=415),
    _register_with("content-type-jsonx", {"Content-Type": "application/jsonx"}, status=415),
    _register_with("content-type-empty", {"Content-Type": ""}, status=415),
    _write("if-match-garbage", "correct", "reason", "Fix", headers=(("If-Match", "abc"),),
           status=400),
    _write("if-match-10k", "correct", "reason", "Fix", headers=(("If-Match", "9" * 10_000),),
           status=400),
    _write("if-match-negative", "correct", "reason", "Fix", headers=(("If-Match", '"-1"'),),
           status=400),
    Case("last-event-id-garbage", "GET", "/feed/stream?max_events=1",
         headers=(("Last-Event-ID", "not a cursor"),), status=400),
    Case("last-event-id-10k", "GET", "/feed/stream?max_events=1",
         headers=(("Last-Event-ID", "A" * 10_000),), status=400),
    Case("last-event-id-padding", "GET", "/feed/stream?max_events=1",
         headers=(("Last-Event-ID", "AAAAAAAAAAAAAAAAAAAAAA=="),), status=400),
]  # fmt: skip

# -- content types -------------------------------------------------------------------------------

CONTENT_TYPE_CASES = [
    Case(f"{name}-without-content-type", "POST", TEMPLATES[name][0],
         json.dumps(TEMPLATES[name][1]).encode(), headers=(("Content-Type", ""),), status=415)
    for name in ("alias", "call", "meeting", "sign")
]  # fmt: skip

# -- reads: bad cursors and query parameters -----------------------------------------------------

_BAD_CURSORS = ["garbage", "%00", "A" * 5_000, "AAAAAAAAAAAAAAAAAAAAAA==", "-_-_"]
_READ_ROUTES = [
    "/feed",
    "/actors?name=Hostile",
    "/actors/h_person/contacts",
    "/meetings",
    "/graph",
    "/audit/interaction-h_call",
    "/keys",
]


def _get(name: str, path: str, **kwargs: Any) -> Case:
    return Case(name, "GET", path, **kwargs)


def _q(route: str, query: str) -> str:
    return f"{route}{'&' if '?' in route else '?'}{query}"


_A = "a"
# Query strings each read route refuses: a 400 where the parameter is checked at the edge, any
# 4xx where it reaches the view (a NUL in a name: the database cannot compare it).
_READ_QUERIES: dict[str, list[tuple[str, int | None]]] = {
    "/feed": [
        ("limit=1001", 400), ("type=actor.%00", None), ("category=act%00or", None),
        ("actor=h%00person", None), ("stream=actor-h%00person", None),
        (f"actor={_A * 10_000}", None), (f"type={_A * 10_000}", None),
    ],
    "/feed/stream?max_events=1": [("category=act%00or", None), ("type=%01", None)],
    "/feed/stream": [
        ("max_events=0", 400), ("max_events=abc", 400), (f"max_events={'9' * 400}", 400),
    ],
    "/streams/actor-h_person": [
        ("from_version=0", 400), (f"from_version={'9' * 400}", 400), ("backward=maybe", 400),
    ],
    "/actors": [("name=", 400), (f"name={_A * 301}", 400), ("name=Host%00ile", None)],
    "/actors?name=Hostile": [
        ("as_of=2024-01-01T00:00:00", 400), ("as_of=yesterday", 400),
        ("as_of_cursor=nope", 400), ("reflect=nope", 400),
    ],
    "/actors/h_person": [("as_of=0000-01-01T00:00:00Z", 400), ("reflect=%00", 400)],
    "/actors/h_person/contacts": [
        ("kind=bogus", 400), ("from=notadate", 400), ("to=2024-13-45", 400),
        ("window=bogus", 400), (f"counterpart={_A * 301}", 400), ("counterpart=h%00state", None),
        ("members=maybe", 400),
    ],
    "/meetings": [("as_of=2024-01-01T00:00:00", 400), (f"as_of_cursor={'A' * 10_000}", 400)],
    "/meetings/h_meeting": [("reflect=garbage", 400)],
    "/graph": [
        (f"actor={_A * 301}", 400), ("actor=h%00person", None), (f"kind={_A * 51}", 400),
        ("kind=phone%00call", None), ("order=bogus", 400), ("reflect=garbage", 400),
    ],
    "/audit/interaction-h_call": [("reflect=garbage", 400)],
}  # fmt: skip
# Paths the routes refuse: ids no stored item can have.
_READ_PATHS: list[tuple[str, int | None]] = [
    ("/actors", 400), ("/streams/actor-h%00person", None), (f"/streams/actor-{_A * 10_000}", None),
    ("/actors/h%00person", None), (f"/actors/{_A * 10_000}", None),
    ("/actors/h%00person/contacts", None), ("/meetings/h%00meeting", None),
    ("/audit/interaction-h%00call", None), (f"/audit/{_A * 10_000}", None),
    ("/problems/%00", 404),
]  # fmt: skip

READ_CASES = [
    *(
        _get(f"cursor-{route.split('?')[0]}-{i}", _q(route, f"after={cursor}"), status=400)
        for route in _READ_ROUTES
        for i, cursor in enumerate(_BAD_CURSORS[:3])
    ),
    *(
        _get(f"cursor-stream-{i}", f"/feed/stream?max_events=1&after={cursor}", status=400)
        for i, cursor in enumerate(_BAD_CURSORS)
    ),
    *(
        _get(f"limit-{route.split('?')[0]}-{bad}", _q(route, f"limit={bad}"), status=400)
        for route in _READ_ROUTES
        for bad in ("0", "abc", "1" + "0" * 400)
    ),
    *(
        _get(f"{path.split('?')[0]}?{query[:40]}", f"{path}{'&' if '?' in path else '?'}{query}",
             status=status)
        for path, queries in _READ_QUERIES.items()
        for query, status in queries
    ),
    *(_get(f"path-{path[:40]}", path, status=status) for path, status in _READ_PATHS),
]  # fmt: skip

# -- keys and scopes -------------------------------------------------------------------------

AUTH_CASES = [
    *(_get(f"anonymous-{route.split('?')[0]}", route, scope=None, status=401)
      for route in (*_READ_ROUTES, "/feed/stream?max_events=1", "/streams/actor-h_person")),
    Case("anonymous-write", "POST", TEMPLATES["register"][0], TEMPLATES["register"][1],
         scope=None, status=401),
    Case("revoked-read", "GET", "/feed", scope="revoked", status=401),
    Case("revoked-write", "POST", TEMPLATES["register"][0], TEMPLATES["register"][1],
         scope="revoked", status=401),
    Case("read-key-writes", "POST", TEMPLATES["register"][0], TEMPLATES["register"][1],
         scope="read", status=403),
    Case("read-key-corrects", "POST", TEMPLATES["correct"][0], TEMPLATES["correct"][1],
         headers=(("If-Match", "*"),), scope="read", status=403),
    Case("write-key-lists-keys", "GET", "/keys", scope="write", status=403),
    Case("write-key-makes-keys", "POST", "/keys", TEMPLATES["key"][1], scope="write",
         status=403),
    Case("write-key-revokes-keys", "DELETE", "/keys/nosuchkey", scope="write", status=403),
    Case("read-key-revokes-keys", "DELETE", "/keys/nosuchkey", scope="read", status=403),
]  # fmt: skip

CASES = [
    *STRING_CASES,
    *JSON_CASES,
    *SIZE_CASES,
    *HEADER_CASES,
    *CONTENT_TYPE_CASES,
    *READ_CASES,
    *AUTH_CASES,
]


class Hostile:
    """The module's API, the ids it recorded and the keys to misuse."""

    def __init__(
        self, api: ApiServer, event_id: str, revoked: str, conn: asyncpg.Connection
    ) -> None:
        self.api = api
        self.event_id = event_id
        self.tokens = {**api.tokens, "revoked": revoked}
        self._conn = conn
        self._clients: dict[str | None, httpx.AsyncClient] = {}

    def client(self, scope: str | None) -> httpx.AsyncClient:
        """A client sending the key of ``scope`` (``None``: no key), one per scope."""
        if scope not in self._clients:
            headers = {"Authorization": f"Bearer {self.tokens[scope]}"} if scope else {}
            self._clients[scope] = httpx.AsyncClient(
                base_url=self.api.url, headers=headers, timeout=30.0
            )
        return self._clients[scope]

    async def events(self) -> int:
        """How many events the log holds."""
        count: int = await self._conn.fetchval("SELECT count(*) FROM events")
        return count

    async def metadata(self, event_id: str) -> str:
        """The metadata an event was recorded with, as JSON text."""
        text: str = await self._conn.fetchval(
            "SELECT metadata::text FROM events WHERE event_id = $1::uuid", event_id
        )
        return text

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()


async def _recorded(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> str:
    response = await client.post(path, json=body)
    assert response.status_code == 201, response.text
    event_id: str = response.json()["event_ids"][0]
    return event_id


@pytest.fixture(scope="module")
async def hostile(server_url: str) -> AsyncIterator[Hostile]:
    """An API of this module's own, with a few actors, a meeting, a declaration and an
    interaction to aim at, and a revoked key."""
    async with (
        scratch_database(server_url, migrated=True) as dsn,
        running_api(dsn, long_poll_max_s=0.2, read_your_writes_max_s=0.2) as api,
        api.client("admin") as admin,
    ):
        for actor_id, kind, name in (
            ("h_person", "person", "Hostile Person"),
            ("h_twin", "person", "Hostile Twin"),
            ("h_org", "organisation", "Hostile Ministry"),
            ("h_state", "state", "Hostile State"),
        ):
            await _recorded(
                admin, "/actors", {"actor_id": actor_id, "kind": kind, "canonical_name": name}
            )
        await _recorded(
            admin, "/meetings", {"meeting_id": "h_meeting", "title": "Talks", "valid_time": "2024"}
        )
        await _recorded(admin, "/declarations", {"declaration_id": "h_decl", "title": "Accord"})
        call = {**TEMPLATES["call"][1], "interaction_id": "h_call"}
        event_id = await _recorded(admin, "/interactions", call)
        made = await admin.post("/keys", json={"name": "to revoke", "scopes": ["write"]})
        assert made.status_code == 201, made.text
        revoked = await admin.delete(f"/keys/{made.json()['key']['id']}")
        assert revoked.status_code == 200, revoked.text
        conn = await asyncpg.connect(dsn)
        hostile = Hostile(api, event_id, made.json()["token"], conn)
        try:
            yield hostile
        finally:
            await hostile.close()
            await conn.close()


def _content(body: Any) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


async def _send(hostile: Hostile, case: Case) -> httpx.Response:
    headers = {"Content-Type": "application/json"} if case.body is not None else {}
    headers.update(case.headers)
    if headers.get("Content-Type") == "":
        del headers["Content-Type"]
    # As bytes: a header may carry any octet, not only ASCII.
    raw_headers = {name.encode(): value.encode("latin-1") for name, value in headers.items()}
    content = _content(case.body)
    if content is not None and EVENT in case.path:
        content = content.replace(EVENT.encode(), hostile.event_id.encode())
    # A live stream that were let through would never end on its own.
    async with asyncio.timeout(20):
        return await hostile.client(case.scope).request(
            case.method,
            case.path.replace(EVENT, hostile.event_id),
            content=content,
            headers=raw_headers,
        )


def _assert_refused(case: Case, response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (case.name, response.status_code, response.text)
    if case.status is not None:
        assert response.status_code == case.status, (case.name, response.text[:500])
    if response.content:
        assert response.headers["content-type"].startswith(PROBLEM), (case.name, response.text)
        problem = response.json()
        assert problem["status"] == response.status_code
        assert problem["type"].startswith("/problems/")
        if case.field is not None:
            fields = [e.get("field") for e in problem.get("errors") or []]
            assert case.field in fields, (case.name, problem)
        if case.says is not None:
            assert case.says in problem["detail"], (case.name, problem)


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 150
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_hostile_input_is_refused_and_records_nothing(hostile: Hostile, case: Case) -> None:
    before = await hostile.events()
    response = await _send(hostile, case)
    _assert_refused(case, response)
    assert await hostile.events() == before, case.name


async def test_a_chunked_body_over_the_limit_is_refused(hostile: Hostile) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"canonical_name": "'
        for _ in range(20):
            yield b"a" * 100_000
        yield b'"}'

    before = await hostile.events()
    response = await hostile.client("admin").post(
        "/actors", content=chunks(), headers={"Content-Type": "application/json"}
    )
    _assert_refused(Case("chunked", "POST", "/actors", status=413), response)
    assert await hostile.events() == before


_TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
_STATE_MEMBERS = [f"k{i}={'v' * 40}" for i in range(30)]
TRACE_CASES: list[tuple[str, dict[str, str], str | None, str | None]] = [
    ("valid", {"traceparent": _TRACE, "tracestate": "congo=t61rcWkgMzE"}, _TRACE,
     "congo=t61rcWkgMzE"),
    ("traceparent-60k", {"traceparent": "0" * 60_000, "tracestate": "congo=t61"}, None, None),
    ("traceparent-upper", {"traceparent": _TRACE.upper(), "tracestate": "a=b"}, None, None),
    ("traceparent-zero-trace", {"traceparent": "00-" + "0" * 32 + _TRACE[35:]}, None, None),
    ("traceparent-version-ff", {"traceparent": "ff" + _TRACE[2:]}, None, None),
    ("traceparent-extra", {"traceparent": _TRACE + "-x"}, None, None),
    ("traceparent-later-version", {"traceparent": "01" + _TRACE[2:] + "-x"}, _TRACE, None),
    ("tracestate-malformed", {"traceparent": _TRACE, "tracestate": "Bad Key=1"}, _TRACE, None),
    ("tracestate-long", {"traceparent": _TRACE, "tracestate": ",".join(_STATE_MEMBERS)}, _TRACE,
     ",".join(_STATE_MEMBERS[:11])),
    ("tracestate-60k", {"traceparent": _TRACE, "tracestate": "a=" + "b" * 60_000}, _TRACE, None),
    ("request-id-60k", {"X-Request-ID": "r" * 60_000}, None, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "traceparent", "tracestate"),
    [case[1:] for case in TRACE_CASES],
    ids=[case[0] for case in TRACE_CASES],
)
async def test_events_record_only_a_trace_context_that_parses(
    hostile: Hostile, headers: dict[str, str], traceparent: str | None, tracestate: str | None
) -> None:
    """A receiver that cannot parse ``traceparent`` ignores it (W3C Trace Context): the write
    goes through, and its events record no trace rather than the header's text."""
    actor_id = "h_trace_" + hashlib.sha256(repr(headers).encode()).hexdigest()[:12]
    response = await hostile.client("write").post(
        "/actors",
        json={"actor_id": actor_id, "kind": "person", "canonical_name": "Trace Person"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    metadata = json.loads(await hostile.metadata(response.json()["event_ids"][0]))
    assert metadata.get("traceparent") == traceparent
    assert metadata.get("tracestate") == tracestate
    assert len(metadata["correlation_id"]) <= 128
    assert len(json.dumps(metadata)) < 1_000


async def test_every_template_is_a_valid_write(hostile: Hostile) -> None:
    """Without its hostile part each case is a write the API records: the refusals above are
    the hostile parts' doing. (Last: it changes what the cases aim at.)"""
    client = hostile.client("admin")
    for name, (route, body) in TEMPLATES.items():
        headers = {"If-Match": _IF_MATCH[name]} if name in _IF_MATCH else {}
        response = await client.post(
            route.replace(EVENT, hostile.event_id), json=body, headers=headers
        )
        assert response.status_code == 201, (name, response.text)
