"""JSON request bodies: refused before they are parsed when nested deeper than any command
needs.

A JSON parser recurses once per level of nesting (msgspec, and so Litestar, included), so a
body of a few kilobytes of brackets would exhaust the interpreter's stack and answer 500. The
deepest command nests five levels (a correction's participant list inside ``changes``); the
limit leaves room and stays far below the stack.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any, Final

import msgspec
from litestar import Request

from service.problems import problem

__all__ = ("MAX_JSON_DEPTH", "JsonRequest", "check_depth", "excess_depth")

MAX_JSON_DEPTH: Final = 32
"""How deeply a request body's arrays and objects may nest."""

# A JSON string, whatever it holds; possessive, so an unterminated one costs one pass.
_STRING: Final = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_TOKEN: Final = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{},]')
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_STEP: Final = tuple(1 if b in b"[{" else -1 for b in range(256))


def excess_depth(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the arrays and objects of the JSON text ``raw`` nest deeper than ``limit``
    (brackets inside strings do not count). Malformed text is left to the parser."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # the common case: too few brackets to nest that deep
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return bool(brackets) and max(accumulate(map(_STEP.__getitem__, brackets))) > limit


def _key(token: bytes) -> str:
    try:
        return str(msgspec.json.decode(token))
    except msgspec.DecodeError:
        return token[1:-1].decode("utf-8", "replace")


def _deep_path(raw: bytes, limit: int) -> str:
    """The JSON path of the first value nested deeper than ``limit`` (``$.changes.a[0][0]...``),
    for the error message; only called for bodies ``excess_depth`` refused."""
    frames: list[list[Any]] = []  # per open container: [is_object, key or index, expect_key]
    for match in _TOKEN.finditer(raw):
        token = match.group()
        top = frames[-1] if frames else None
        if token in (b"[", b"{"):
            if len(frames) == limit:
                break
            frames.append([token == b"{", None if token == b"{" else 0, token == b"{"])
        elif token in (b"]", b"}"):
            if frames:
                frames.pop()
        elif token == b",":
            if top is not None and top[0]:
                top[2] = True
            elif top is not None:
                top[1] += 1
        elif top is not None and top[0] and top[2]:
            top[1], top[2] = _key(token), False
    path = "$"
    for is_object, at, _ in frames:
        path += f".{at}" if is_object else f"[{at}]"
    return path


def check_depth(raw: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse (400) a JSON body nested deeper than ``limit``, naming where."""
    if excess_depth(raw, limit):
        where = _deep_path(raw, limit)
        reason = f"nested deeper than {limit} levels of arrays and objects"
        raise problem(
            400,
            f"the JSON body is {reason} (at {where})",
            errors=[{"field": where, "reason": reason}],
        )


class JsonRequest(Request[Any, Any, Any]):
    """Litestar's request, checking a JSON body's nesting before parsing it."""

    async def json(self) -> Any:
        """The JSON body, parsed once it is known to be shallow enough to parse."""
        check_depth(await self.body())
        return await super().json()
