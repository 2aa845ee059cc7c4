"""How the OpenAPI document shows a correction's ``changes``: the fields of the corrected
event's type, one schema per correctable event type (``events.domain.corrections``).

The body decodes ``changes`` as a bounded JSON object, since which event it corrects is only
known once its stream is read; the domain then checks it against that event type's schema.
Litestar documents an ``Annotated`` field marked with ``CORRECTABLE`` through this plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.openapi.spec import OpenAPIType, Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from events.domain.corrections import CHANGES, CORRECTABLE
from service.routes.commands import BODY_TYPES

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

__all__ = ("CorrectableChanges",)


class CorrectableChanges(OpenAPISchemaPlugin):
    """Documents ``changes`` as any of the ``<Event>Changes`` schemas."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        """Only fields marked ``CORRECTABLE`` (``is_plugin_supported_field``)."""
        return False

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        """Whether the field is a correction's ``changes``."""
        return any(m is CORRECTABLE for m in field_definition.metadata)

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        """An object that is one of the correctable event types' changes."""
        return Schema(
            type=OpenAPIType.OBJECT,
            description="The fields to correct, with their new values: fields of the corrected "
            "event's type (its schema below, `<EventType>Changes`); a field left out keeps its "
            "value. Actor references (`person_id`, `faction_id`, a participant's `actor_id`...) "
            "take an id or any spelling of a name; a valid time is EDTF.",
            min_properties=1,
            max_properties=30,
            any_of=[
                schema_creator.for_field_definition(
                    FieldDefinition.from_annotation(BODY_TYPES(changes))
                )
                for changes in CHANGES.values()
            ],
        )
