"""Feed cursors as parameters and in answers: one documented format (a pattern and a length),
checked on the way in, and the same format in every body that carries one."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from events.records import CURSOR_LENGTH, CURSOR_PATTERN, Cursor
from tests.test_api_writes import schedule

if TYPE_CHECKING:
    from tests.api_server import ApiServer

# Where each route takes a cursor (the views' `after` is a page token of another format).
_CURSOR_PARAMETERS = {"reflect", "as_of_cursor", "Last-Event-ID"}
_FEED_PATHS = {"/feed", "/feed/stream"}


async def _document(api: ApiServer) -> dict[str, Any]:
    async with api.client(None) as client:
        schema: dict[str, Any] = (await client.get("/schema/openapi.json")).json()
    return schema


async def test_every_cursor_parameter_documents_the_cursor_format(api: ApiServer) -> None:
    schema = await _document(api)
    seen = set()
    for path, item in schema["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                name = parameter["name"]
                where = f"{path} {name}"
                if name in _CURSOR_PARAMETERS or (name == "after" and path in _FEED_PATHS):
                    assert parameter["schema"].get("pattern") == CURSOR_PATTERN, where
                    assert parameter["schema"].get("maxLength") == CURSOR_LENGTH, where
                    seen.add(name)
                elif name == "after":
                    assert parameter["schema"].get("pattern") == "^[A-Za-z0-9_-]+$", where
    assert seen == _CURSOR_PARAMETERS | {"after"}
    components = schema["components"]["schemas"]
    for holder in ("AsOf", "CloudEvent", "WriteReceipt"):
        assert components[holder]["properties"]["cursor"]["pattern"] == CURSOR_PATTERN, holder


@pytest.mark.parametrize(
    "bad",
    [
        "not a cursor",
        Cursor(7, 7).encode() + "A",  # too long
        Cursor(7, 7).encode()[:-1] + "B",  # the right length, not a cursor Diplofeed makes
        Cursor(7, 7).encode() + "==",  # padded
    ],
)
async def test_a_value_off_the_cursor_format_is_a_400_naming_it(api: ApiServer, bad: str) -> None:
    async with api.client("read") as client:
        for path, params, headers, field in [
            ("/feed", {"after": bad}, {}, "query:after"),
            ("/meetings", {"reflect": bad}, {}, "query:reflect"),
            ("/meetings", {"as_of_cursor": bad}, {}, "query:as_of_cursor"),
            ("/feed/stream", {}, {"Last-Event-ID": bad}, "header:Last-Event-ID"),
        ]:
            answer = await client.get(path, params=params, headers=headers)
            where = f"{path} {field}: {answer.text}"
            assert answer.status_code == 400, where
            assert answer.headers["content-type"].startswith("application/problem+json"), where
            assert field.lower() in [e["field"].lower() for e in answer.json()["errors"]], where


async def test_a_roster_answers_its_cursor_in_the_documented_format(api: ApiServer) -> None:
    async with api.client("write") as client:
        meeting_id, written = await schedule(client)
        cursor = written.json()["cursor"]
        roster = await client.get(f"/meetings/{meeting_id}", params={"reflect": cursor})
    assert roster.status_code == 200, roster.text
    as_of = roster.json()["as_of"]
    assert isinstance(as_of["cursor"], str)
    assert re.fullmatch(CURSOR_PATTERN, as_of["cursor"])
    assert Cursor.decode(as_of["cursor"]) == Cursor.decode(cursor)


async def test_a_cursor_past_the_end_of_the_log_is_a_400_at_once(api: ApiServer) -> None:
    # Answered rather than waited for: reflect used to poll for the whole read-your-writes
    # bound, a long poll for its wait, and the live stream to stay open sending nothing.
    future = Cursor(2**62, 1).encode()
    async with api.client("read", timeout=20) as client:
        for path, params, headers, field in [
            ("/feed", {"after": future}, {}, "query:after"),
            ("/feed", {"after": future}, {"Prefer": "wait=30"}, "query:after"),
            ("/feed/stream", {"after": future}, {}, "query:after"),
            ("/feed/stream", {}, {"Last-Event-ID": future}, "header:Last-Event-ID"),
            ("/meetings", {"reflect": future}, {}, "query:reflect"),
            ("/actors/someone", {"reflect": future}, {}, "query:reflect"),
            ("/meetings", {"as_of_cursor": future}, {}, "query:as_of_cursor"),
        ]:
            answer = await client.get(path, params=params, headers=headers)
            where = f"{path} {field}: {answer.text}"
            assert answer.status_code == 400, where
            assert answer.headers["content-type"].startswith("application/problem+json"), where
            assert answer.json()["errors"][0]["field"] == field, where
            assert "beyond the end of the log" in answer.json()["detail"], where


async def test_the_cursors_the_log_hands_out_are_never_past_its_end(api: ApiServer) -> None:
    async with api.client("write") as client:
        _, written = await schedule(client)
        head = await client.get("/feed", params={"after": written.json()["cursor"]})
        assert head.status_code == 200, head.text
        for cursor in (written.json()["cursor"], head.headers["Diplofeed-Cursor"]):
            again = await client.get("/feed", params={"after": cursor})
            assert again.status_code == 200, again.text
            for params in ({"reflect": cursor}, {"as_of_cursor": cursor}):
                view = await client.get("/meetings", params=params)
                assert view.status_code == 200, (params, view.text)
