"""HTTP as its specifications say, on every route of the OpenAPI document: ``OPTIONS`` and
``Allow`` name exactly the methods a path serves."""

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
