"""GraphQL mutation inputs generated from an entity's field specs, so a writable field is
declared once (in crm/<entity>/service.py) for both skins."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.scalars import JSON

from backend.records.fields import FieldSpec
from backend.records.spec import EntitySpec


def graphql_type(spec: FieldSpec) -> Any:
    if spec.kind == "tags":
        return list[str]
    if spec.kind == "uuid":
        return strawberry.ID
    if spec.kind == "integer":
        return int
    if spec.kind == "boolean":
        return bool
    if spec.kind == "decimal":
        return Decimal
    if spec.kind == "date":
        return date
    if spec.kind == "datetime":
        return datetime
    return str


def _input(name: str, annotations: dict[str, Any], defaults: dict[str, Any]) -> type:
    namespace = {"__annotations__": annotations, "__module__": __name__, **defaults}
    return strawberry.input(type(name, (), namespace))


def create_input(entity: EntitySpec, type_name: str) -> type:
    """Required fields first (non-null, no default); the rest may be null or left out."""
    fields = [f for f in entity.fields.values() if f.on_create]
    annotations: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for spec in sorted(fields, key=lambda f: not f.required):
        if spec.required:
            annotations[spec.name] = graphql_type(spec)
        else:
            annotations[spec.name] = graphql_type(spec) | None
            defaults[spec.name] = strawberry.UNSET
    _custom_values(annotations, defaults)
    _nested_lists(entity, type_name, annotations, defaults)
    return _input(f"Create{type_name}Input", annotations, defaults)


def update_input(entity: EntitySpec, type_name: str) -> type:
    """`id` and the `version` edited, then every updatable field (left out: unchanged)."""
    annotations: dict[str, Any] = {"id": strawberry.ID, "version": int}
    defaults: dict[str, Any] = {
        "version": strawberry.field(
            description="The version you edited; a newer one is a conflict."
        )
    }
    for spec in entity.fields.values():
        if spec.on_update:
            annotations[spec.name] = graphql_type(spec) | None
            defaults[spec.name] = strawberry.UNSET
    _custom_values(annotations, defaults)
    _nested_lists(entity, type_name, annotations, defaults)
    return _input(f"Update{type_name}Input", annotations, defaults)


_ITEM_INPUTS: dict[str, type] = {}


def _nested_lists(
    entity: EntitySpec, type_name: str, annotations: dict[str, Any], defaults: dict[str, Any]
) -> None:
    """Child lists written with the record (an order's lines); on update the list replaces."""
    for nested in entity.nested:
        name = f"{type_name}{nested.name.title()}ItemInput"
        if name not in _ITEM_INPUTS:  # shared by the create and update inputs
            item: dict[str, Any] = {}
            item_defaults: dict[str, Any] = {}
            for spec in sorted(nested.fields.values(), key=lambda f: not f.required):
                if spec.required:
                    item[spec.name] = graphql_type(spec)
                else:
                    item[spec.name] = graphql_type(spec) | None
                    item_defaults[spec.name] = strawberry.UNSET
            _ITEM_INPUTS[name] = _input(name, item, item_defaults)
        annotations[nested.name] = list[_ITEM_INPUTS[name]] | None  # type: ignore[valid-type]
        defaults[nested.name] = strawberry.field(
            default=strawberry.UNSET, description=nested.description or None
        )


def _custom_values(annotations: dict[str, Any], defaults: dict[str, Any]) -> None:
    """`custom`: tenant custom field values by key (an update merges them; null clears one)."""
    annotations["custom"] = JSON | None
    defaults["custom"] = strawberry.field(
        default=strawberry.UNSET,
        description="Custom field values by key; on update, keys merge and null clears one.",
    )
