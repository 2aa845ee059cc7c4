"""Refuse unknown fields everywhere inside a command, nested objects included.

Commands refuse unknown fields of their own, but the objects they share with stored events
(sources, aliases, places) must tolerate fields that newer code adds, so msgspec alone would
silently drop a typo such as ``"qoute"`` inside a source. This walks the decoded JSON along
the command's type and names the first unknown key with its path. msgspec has no option for
"forbid unknown fields in this decode only", hence this module.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec
from msgspec import inspect as mi

__all__ = ("StrictDecoder",)

T = TypeVar("T")


def _check(value: Any, info: mi.Type, path: str) -> None:
    if isinstance(info, mi.Metadata):
        _check(value, info.type, path)
    elif isinstance(info, mi.StructType):
        if not isinstance(value, dict):
            return
        fields = {f.encode_name: f for f in info.fields}
        for key in value:
            if key not in fields and key != info.tag_field:
                raise msgspec.ValidationError(
                    f"Object contains unknown field `{key}` - at `{path}`"
                )
        for key, field in fields.items():
            if key in value:
                _check(value[key], field.type, f"{path}.{key}")
    elif isinstance(info, mi.UnionType):
        structs = [t for t in info.types if isinstance(t, mi.StructType)]
        if isinstance(value, dict) and structs:
            tagged = [t for t in structs if t.tag_field and value.get(t.tag_field) == t.tag]
            chosen = tagged[0] if tagged else structs[0] if len(structs) == 1 else None
            if chosen is not None:
                _check(value, chosen, path)
        else:
            for option in info.types:
                if not isinstance(option, mi.StructType):
                    _check(value, option, path)
    elif isinstance(info, (mi.ListType, mi.VarTupleType, mi.SetType, mi.FrozenSetType)):
        if isinstance(value, list):
            for n, item in enumerate(value):
                _check(item, info.item_type, f"{path}[{n}]")
    elif isinstance(info, mi.TupleType):
        if isinstance(value, list):
            for n, (item, item_type) in enumerate(zip(value, info.item_types, strict=False)):
                _check(item, item_type, f"{path}[{n}]")
    elif isinstance(info, mi.DictType) and isinstance(value, dict):
        for key, item in value.items():
            _check(item, info.value_type, f"{path}.{key}")


class StrictDecoder(Generic[T]):
    """A JSON decoder for ``type`` that refuses unknown fields at any depth."""

    def __init__(self, type: Any) -> None:
        self._decoder: msgspec.json.Decoder[T] = msgspec.json.Decoder(type)
        self._info = mi.type_info(type)

    def decode(self, data: bytes | str) -> T:
        """Decode ``data``; raises ``msgspec.ValidationError`` (or ``DecodeError``) naming the
        offending field and its path."""
        result = self._decoder.decode(data)  # types and required fields first
        self.check_fields(data)
        return result

    def check_fields(self, data: bytes | str) -> None:
        """Only the unknown-field check, for JSON another decoder already typed (an HTTP
        framework's): raises ``msgspec.ValidationError`` naming the first unknown key."""
        _check(msgspec.json.decode(data), self._info, "$")
