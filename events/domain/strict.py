"""Refuse unknown fields everywhere inside a command, nested objects included.

Commands refuse unknown fields of their own, but the objects they share with stored events
(sources, aliases, places) must tolerate fields that newer code adds, so msgspec alone would
silently drop a typo such as ``"qoute"`` inside a source. msgspec has no option for "forbid
unknown fields in this decode only", hence this module: it builds, once per command type, a
mirror of the type in which every Struct forbids unknown fields, and decodes with that too, so
the check runs at msgspec's speed and names the first unknown key with its path.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Generic, Literal, TypeVar, Union

import msgspec

__all__ = ("StrictDecoder", "strict_type")

T = TypeVar("T")


def _mirror(tp: Any, done: dict[type, Any]) -> Any:
    """``tp`` with every Struct in it replaced by a copy that forbids unknown fields."""
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        if tp not in done:
            config = tp.__struct_config__
            fields: list[tuple[str, Any, Any]] = []
            for info in msgspec.structs.fields(tp):
                default: Any = info.default
                if info.default_factory is not msgspec.NODEFAULT:
                    default = msgspec.field(default_factory=info.default_factory)
                fields.append((info.name, _mirror(info.type, done), default))
            done[tp] = msgspec.defstruct(
                f"Strict{tp.__name__}",
                [(n, t) if d is msgspec.NODEFAULT else (n, t, d) for n, t, d in fields],
                kw_only=True,
                forbid_unknown_fields=True,
                tag=config.tag,
                tag_field=config.tag_field,
                module=__name__,
            )
        return done[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return Annotated[(_mirror(args[0], done), *tp.__metadata__)]
    if origin is Literal or not args:
        return tp
    mirrored = tuple(a if a is Ellipsis else _mirror(a, done) for a in args)
    if origin in (Union, types.UnionType):
        return Union[mirrored]  # noqa: UP007 (built from a tuple)
    return origin[mirrored]


def strict_type(tp: Any) -> Any:
    """``tp`` as a type whose every Struct forbids unknown fields (for one inbound decode)."""
    return _mirror(tp, {})


class StrictDecoder(Generic[T]):
    """A JSON decoder for ``type`` that refuses unknown fields at any depth."""

    def __init__(self, type: Any) -> None:
        self._decoder: msgspec.json.Decoder[T] = msgspec.json.Decoder(type)
        self._strict: msgspec.json.Decoder[Any] = msgspec.json.Decoder(strict_type(type))

    def decode(self, data: bytes | str) -> T:
        """Decode ``data``; raises ``msgspec.ValidationError`` (or ``DecodeError``) naming the
        offending field and its path."""
        result = self._decoder.decode(data)  # types and required fields first
        self.check_fields(data)
        return result

    def check_fields(self, data: bytes | str) -> None:
        """Only the unknown-field check, for JSON another decoder already typed (an HTTP
        framework's): raises ``msgspec.ValidationError`` naming the first unknown key."""
        self._strict.decode(data)
