"""HTTP as its specifications say, on every route of the OpenAPI document: ``OPTIONS`` and
``Allow`` name exactly the methods a path serves; a JSON body is declared as JSON; a query
parameter that holds one value is given once; every list a view sends is required by its
schema."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.api_server import ApiServer

_METHODS = {"get", "post", "put", "patch", "delete"}


async def _document(api: ApiServer) -> dict[str, Any]:
    async with api.client(None) as client:
        schema: dict[str, Any] = (await client.get("/schema/openapi.json")).json()
    return schema


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


async def test_options_and_405_allow_exactly_the_methods_a_path_serves(api: ApiServer) -> None:
    schema = await _document(api)
    async with api.client("admin") as client:
        for path, item in schema["paths"].items():
            served = {m.upper() for m in item if m in _METHODS} | {"OPTIONS"}
            options = await client.options(_concrete(path))
            assert options.status_code == 204, path
            assert set(options.headers["Allow"].split(", ")) == served, path
            refused = await client.request("PUT", _concrete(path))
            if "PUT" not in served:
                assert refused.status_code == 405, path
                assert set(refused.headers["Allow"].split(", ")) == served, path


async def test_every_json_body_must_be_declared_json(api: ApiServer) -> None:
    schema = await _document(api)
    routes = [
        (method, path)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in _METHODS and "requestBody" in operation
    ]
    assert ("post", "/keys") in routes
    async with api.client("admin") as client:
        for method, path in routes:
            for media_type in ("text/plain", "application/x-www-form-urlencoded", None):
                headers = {"Content-Type": media_type} if media_type else {}
                body = b'{"name": "k", "scopes": ["read"]}'
                answer = await client.request(
                    method.upper(), _concrete(path), content=body, headers=headers
                )
                where = f"{method.upper()} {path} {media_type}: {answer.text}"
                assert answer.status_code == 415, where
                assert answer.headers["content-type"].startswith("application/problem+json")
                assert answer.json()["type"] == "/problems/unsupported-media-type", where


def _is_list(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "array" or any(_is_list(s) for s in schema.get("oneOf", []))


async def test_a_single_valued_query_parameter_given_twice_is_a_400(api: ApiServer) -> None:
    schema = await _document(api)
    checked = set()
    async with api.client("admin") as client:
        for path, item in schema["paths"].items():
            for method, operation in item.items():
                if method not in _METHODS:
                    continue
                for parameter in operation.get("parameters", []):
                    name = parameter["name"]
                    if parameter["in"] != "query" or _is_list(parameter["schema"]):
                        continue
                    answer = await client.request(
                        method.upper(), _concrete(path), params=[(name, "1"), (name, "2")]
                    )
                    where = f"{method.upper()} {path} {name}: {answer.text}"
                    assert answer.status_code == 400, where
                    assert answer.headers["content-type"].startswith("application/problem+json")
                    assert answer.json()["errors"] == [
                        {"field": f"query:{name}", "reason": "given more than once"}
                    ], where
                    checked.add((path, name))
        assert {("/feed", "limit"), ("/actors", "name"), ("/keys", "after")} <= checked
        # A list parameter may repeat.
        both = await client.get("/feed", params=[("category", "actor"), ("category", "meeting")])
        assert both.status_code == 200, both.text


def _refs(schema: Any) -> set[str]:
    """The components ``schema`` names, at any depth."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        found = {ref.rsplit("/", 1)[-1]} if isinstance(ref, str) else set()
        return found.union(*(_refs(v) for v in schema.values()))
    if isinstance(schema, list):
        return set().union(*(_refs(v) for v in schema))
    return set()


def _is_array(schema: dict[str, Any]) -> bool:
    kinds = schema.get("type")
    variants = [schema, *schema.get("oneOf", []), *schema.get("anyOf", [])]
    return kinds == "array" or any(v.get("type") == "array" for v in variants[1:])


async def test_every_list_a_success_sends_is_required(api: ApiServer) -> None:
    """Clients read a view's lists without checking that they are there: the schema says each
    is always sent (``[]`` when empty). Problem details are left out: their extension members
    (``errors``) are present only when they say something (RFC 9457)."""
    schema = await _document(api)
    components = schema["components"]["schemas"]
    sent = _refs(
        [
            answer
            for item in schema["paths"].values()
            for method, operation in item.items()
            if method in _METHODS
            for status, answer in operation["responses"].items()
            if status.startswith("2")
        ]
    )
    while grown := set().union(*(_refs(components[name]) for name in sent)) - sent:
        sent |= grown
    assert {"ActorView", "RosterView", "FactionRoster", "AttendanceChange"} <= sent
    optional = [
        f"{name}.{field}"
        for name in sorted(sent)
        for field, shape in components[name].get("properties", {}).items()
        if _is_array(shape) and field not in components[name].get("required", [])
    ]
    assert optional == []
