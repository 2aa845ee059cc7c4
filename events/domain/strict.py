"""Refuse unknown fields everywhere inside a command, nested objects included, and check the
bounds of the shared objects it carries.

Commands refuse unknown fields of their own, but the objects they share with stored events
(sources, aliases, places) must tolerate fields that newer code adds, and stay as lenient as the
events already stored, so msgspec alone would silently drop a typo such as ``"qoute"`` inside a
source, and take a source of any size. msgspec has no option for "forbid unknown fields in this
decode only", hence this module: it builds, once per command type, a mirror of the type in which
every Struct forbids unknown fields and each shared Struct is replaced by its bounded form
(``events.domain.bounds.INBOUND``), and decodes with that too, so the check runs at msgspec's
speed and names the first offending field with its path.
"""

from __future__ import annotations

import types
import typing
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar, Union

import msgspec

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ("StrictDecoder", "StrictTypes", "strict_type")

T = TypeVar("T")


class StrictTypes:
    """Strict mirrors of types (see ``strict_type``), each Struct mirrored once however many
    types it appears in (so it stays one component of an OpenAPI document)."""

    def __init__(
        self,
        substitutes: Mapping[type, type],
        document: Callable[[Any, msgspec.Meta], Any] | None,
    ) -> None:
        self.substitutes = substitutes
        self.document = document
        self.done: dict[type, Any] = {}

    def __call__(self, tp: Any) -> Any:
        """``tp`` with every Struct in it replaced by a copy that forbids unknown fields."""
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            if tp not in self.done:
                self.done[tp] = self._struct(self.substitutes.get(tp, tp))
            return self.done[tp]
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is Annotated:
            inner = self(args[0])
            metas = [m for m in tp.__metadata__ if isinstance(m, msgspec.Meta)]
            document = self.document
            extra = () if document is None else tuple(document(args[0], m) for m in metas)
            if inner is args[0] and not extra:
                return tp
            return Annotated[(inner, *tp.__metadata__, *extra)]
        if origin is Literal or not args:
            return tp
        mirrored = tuple(a if a is Ellipsis else self(a) for a in args)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis and self.document is not None:
            # Some OpenAPI generators (Litestar's) document a bounded tuple[X, ...] as "X or
            # anything"; the list it decodes into says the same.
            return list[mirrored[0]]  # type: ignore[valid-type]
        if all(m is a for m, a in zip(mirrored, args, strict=True)):
            return tp
        if origin in (Union, types.UnionType):
            return Union[mirrored]  # noqa: UP007 (built from a tuple)
        return origin[mirrored]

    def _struct(self, tp: type[msgspec.Struct]) -> Any:
        config = tp.__struct_config__
        fields: list[tuple[str, Any, Any]] = []
        changed = not config.forbid_unknown_fields
        for info in msgspec.structs.fields(tp):
            default: Any = info.default
            if info.default_factory is not msgspec.NODEFAULT:
                default = msgspec.field(default_factory=info.default_factory)
            mirrored = self(info.type)
            changed = changed or mirrored is not info.type
            fields.append((info.name, mirrored, default))
        if not changed:
            return tp  # strict all the way down: its own mirror
        return msgspec.defstruct(
            # A Struct that forbade unknown fields already keeps its name (the OpenAPI
            # document's component name).
            tp.__name__ if config.forbid_unknown_fields else f"Strict{tp.__name__}",
            [(n, t) if d is msgspec.NODEFAULT else (n, t, d) for n, t, d in fields],
            kw_only=True,
            forbid_unknown_fields=True,
            tag=config.tag,
            tag_field=config.tag_field,
            module=__name__,
        )


def strict_type(
    tp: Any,
    substitutes: Mapping[type, type] | None = None,
    *,
    document: Callable[[Any, msgspec.Meta], Any] | None = None,
) -> Any:
    """``tp`` as a type whose every Struct forbids unknown fields (for one inbound decode),
    each Struct in ``substitutes`` replaced by the one it maps to.

    ``document(annotated_type, meta)``: metadata to add beside each ``msgspec.Meta``, for an
    OpenAPI generator that reads its own kind only below the top level of a field (Litestar).
    """
    return StrictTypes(substitutes or {}, document)(tp)


class StrictDecoder(Generic[T]):
    """A JSON decoder for ``type`` that refuses unknown fields at any depth (and checks the
    Structs in ``substitutes`` as the ones they map to)."""

    def __init__(self, type: Any, *, substitutes: Mapping[type, type] | None = None) -> None:
        self._decoder: msgspec.json.Decoder[T] = msgspec.json.Decoder(type)
        self._strict: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
            strict_type(type, substitutes)
        )

    def decode(self, data: bytes | str) -> T:
        """Decode ``data``; raises ``msgspec.ValidationError`` (or ``DecodeError``) naming the
        offending field and its path."""
        result = self._decoder.decode(data)  # types and required fields first
        self.check_fields(data)
        return result

    def check_fields(self, data: bytes | str) -> None:
        """Only the unknown-field and bounds check, for JSON another decoder already typed (an
        HTTP framework's): raises ``msgspec.ValidationError`` naming the first offender."""
        self._strict.decode(data)
