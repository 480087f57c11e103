"""Per entity, from its spec: the output type, its Filter and Order inputs, the create and update
inputs and the payload. Built with Strawberry's dynamic API in two steps, so that types may
name each other (an account lists contacts, a contact names its account): `declare` makes the
plain classes, relations are attached to them (relations.py), then `finish` turns each into a
Strawberry type."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from backend.api.gql.context import GraphQLContext
from backend.api.gql.errors import camel
from backend.api.gql.history import HistoryEntry, record_history_connection
from backend.api.gql.inputs import create_input, graphql_type, update_input
from backend.api.gql.pagination import Connection, SortDirection
from backend.api.gql.payloads import FieldError
from backend.records.fields import FieldSpec
from backend.records.listing import choice_filters, range_params
from backend.records.service import WITHHELD, Record, RecordService
from backend.records.spec import EntitySpec

GqlInfo = strawberry.Info[GraphQLContext, None]
# Built on every type from the record itself, not from the spec's fields.
SYSTEM_FIELDS: dict[str, Any] = {"id": strawberry.ID, "version": int}
TIMESTAMPS: dict[str, Any] = {"created_at": datetime, "updated_at": datetime}
WITHHELD_FIELD = "withheld_fields"
# Tenant custom fields: one JSON object of the values the caller may read, by key.
CUSTOM_FIELD = "custom"


@dataclass
class EntityTypes:
    """One entity's GraphQL: the spec and service it is derived from, and the types built."""

    spec: EntitySpec
    service: RecordService
    type: Any  # the object type, e.g. Account
    filter: Any = None
    order: Any = None
    create_input: Any = None
    update_input: Any = None
    payload: Any = None
    data_fields: tuple[str, ...] = field(default=())

    def node(self, record: Record) -> Any:
        """A (masked) record as this entity's object: withheld fields are null, and named."""
        values: dict[str, Any] = {}
        for name in self.data_fields:
            value = record.get(name)
            values[name] = str(value) if isinstance(value, uuid.UUID) else value
        values[CUSTOM_FIELD] = record.get(CUSTOM_FIELD) or {}
        values[WITHHELD_FIELD] = [camel(name) for name in record.get(WITHHELD, [])]
        return self.type(**values)


def describe(spec: FieldSpec) -> str | None:
    """A field's description: the spec's own words, and the allowed values of a choice."""
    parts = [spec.description] if spec.description else []
    if spec.kind == "choice":
        parts.append(f"One of: {', '.join(spec.choices)}.")
    return " ".join(parts) or None


def _history_field(entity: EntitySpec) -> Any:
    async def history(
        root: Any, info: GqlInfo, first: int = 50, after: str | None = None
    ) -> Connection[HistoryEntry]:
        return await record_history_connection(info, entity.name, root.id, first, after)

    return strawberry.field(
        resolver=history, description="This record's change history, newest first."
    )


def _custom_field(root: Any, key: str) -> JSON | None:
    return cast(JSON | None, root.custom.get(key))


def _common_fields(entity: EntitySpec) -> dict[str, Any]:
    """What every entity type has besides its own fields: the tenant's custom fields (the SDL
    is the same for every tenant), withheld fields and history."""
    return {
        CUSTOM_FIELD: strawberry.field(
            description="The tenant's custom fields you may read, by key (see customFields)."
        ),
        "custom_field": strawberry.field(
            resolver=_custom_field,
            description="One custom field's value by key; null when unset, unknown or hidden.",
        ),
        WITHHELD_FIELD: strawberry.field(
            description="Fields your roles may not read: they are null here (custom fields as "
            "`custom.<key>`)."
        ),
        "history": _history_field(entity),
    }


def declare(spec: EntitySpec, service: RecordService) -> EntityTypes:
    """The object type as a plain class (relations are attached before `finish`)."""
    annotations: dict[str, Any] = dict(SYSTEM_FIELDS)
    namespace: dict[str, Any] = {}
    for f in spec.fields.values():
        annotations[f.name] = graphql_type(f) | None  # withheld fields are null
        if (description := describe(f)) is not None:
            namespace[f.name] = strawberry.field(description=description)
    annotations.update(TIMESTAMPS)
    annotations[CUSTOM_FIELD] = JSON
    annotations[WITHHELD_FIELD] = list[str]
    namespace.update(_common_fields(spec))
    cls = type(spec.graphql_name, (), {"__annotations__": annotations, **namespace})
    cls.__module__ = __name__
    data = tuple(name for name in annotations if name != WITHHELD_FIELD)
    return EntityTypes(spec=spec, service=service, type=cls, data_fields=data)


def _order_input(spec: EntitySpec) -> Any:
    name = spec.graphql_name
    columns = Enum(  # type: ignore[misc]  # a functional Enum with computed members
        f"{name}OrderField", {column.upper(): column for column in spec.sort_columns}
    )
    annotations = {"field": strawberry.enum(columns), "direction": SortDirection}
    namespace = {"__annotations__": annotations, "direction": SortDirection.ASC}
    return strawberry.input(type(f"{name}Order", (), namespace))


_RANGE_TYPES: dict[str, Any] = {
    "decimal": Decimal,
    "integer": int,
    "date": date,
    "datetime": datetime,
}


def _filter_input(spec: EntitySpec) -> Any:
    """`q` (search), exact matches on the filter columns, `updatedSince`, the range columns'
    bounds (`amountMin`, `closeDateFrom`...), equality on choice fields (`stage`) and the
    entity's own filters (`slaDueWithin`)."""
    annotations: dict[str, Any] = {"q": str | None}
    annotations.update({column: strawberry.ID | None for column in spec.filter_columns})
    annotations["updated_since"] = datetime | None
    for name, (_, _, kind) in range_params(spec).items():
        annotations[name] = _RANGE_TYPES[kind] | None
    annotations.update({name: str | None for name in choice_filters(spec)})
    # The entity's own filters (EntitySpec.list_filters), as strings, e.g. `slaDueWithin`.
    annotations.update({name: str | None for name in spec.list_filters})
    namespace = {"__annotations__": annotations, **dict.fromkeys(annotations)}
    return strawberry.input(type(f"{spec.graphql_name}Filter", (), namespace))


def _payload(entity: EntityTypes) -> Any:
    """`{<entity>, record, errors}`: the record under its own name (as ever) and as `record`,
    so that a client can treat every entity's payload alike."""
    name = entity.spec.name
    node = entity.type | None

    def record(root: Any) -> Any:
        return getattr(root, name)

    annotations = {name: node, "errors": list[FieldError]}
    namespace = {
        "__annotations__": annotations,
        "record": strawberry.field(
            resolver=record,
            graphql_type=node,
            description=f"The {entity.spec.label} written: the same as `{camel(name)}`.",
        ),
    }
    return strawberry.type(type(f"{entity.spec.graphql_name}Payload", (), namespace))


def finish(entity: EntityTypes) -> None:
    """Turn the declared class into a Strawberry type and build the inputs and payload."""
    strawberry.type(entity.type)
    entity.filter = _filter_input(entity.spec)
    entity.order = _order_input(entity.spec)
    entity.create_input = create_input(entity.spec, entity.spec.graphql_name)
    entity.update_input = update_input(entity.spec, entity.spec.graphql_name)
    entity.payload = _payload(entity)
