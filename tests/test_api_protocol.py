"""HTTP as its specifications say, on every route of the OpenAPI document: ``OPTIONS`` and
``Allow`` name exactly the methods a path serves; a JSON body is declared as JSON; a query
parameter that holds one value is given once."""

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
