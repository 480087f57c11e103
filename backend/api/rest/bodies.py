"""REST request bodies generated from an entity's field specs (types and names only; the
rules are checked by the service). Unknown fields are refused while decoding."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar.params import KwargDefinition
from msgspec import UNSET, UnsetType

from backend.records.fields import FieldSpec
from backend.records.spec import EntitySpec

# The tenant's custom field values, {key: value}; checked by the record service against the
# tenant's definitions (a PATCH merges keys, a `null` value clears one).
CUSTOM_FIELD: tuple[str, Any, Any] = ("custom", dict[str, Any] | UnsetType, UNSET)


def _wire_type(spec: FieldSpec) -> Any:
    if spec.kind == "tags":
        return list[str]
    if spec.kind == "integer":
        return int
    if spec.kind == "boolean":
        return bool
    if spec.kind == "decimal":  # a JSON number, or a string for exact money
        return float | int | str
    # Documented in the OpenAPI document only (the service checks and names the field): the
    # choices a choice field takes, and that a required text may not be empty.
    if spec.kind == "choice" and spec.choices:
        choices = "|".join(re.escape(choice) for choice in spec.choices)
        return Annotated[str, KwargDefinition(pattern=f"^({choices})$")]
    if spec.required:
        return Annotated[str, KwargDefinition(min_length=1)]
    return str


Fields = list[tuple[str, Any] | tuple[str, Any, Any]]


def _computed(entity: EntitySpec) -> Fields:
    """Fields the server computes (never writable) are decoded so that the service can refuse
    them by name (422 `read_only`) rather than as unknown."""
    return [
        (spec.name, Any | UnsetType, UNSET)
        for spec in entity.fields.values()
        if not spec.on_create and not spec.on_update
    ]


_ITEMS: dict[str, type[msgspec.Struct]] = {}


def _nested(entity: EntitySpec, type_name: str) -> Fields:
    """Child lists written with the record (an order's lines), one struct per item (the same
    for the create and the update body)."""
    fields: Fields = []
    for nested in entity.nested:
        name = f"{type_name}{nested.name.title()}Item"
        if name not in _ITEMS:
            item: Fields = []
            for spec in nested.fields.values():
                if spec.required:
                    item.append((spec.name, _wire_type(spec)))
                else:
                    item.append((spec.name, _wire_type(spec) | None | UnsetType, UNSET))
            _ITEMS[name] = msgspec.defstruct(name, item, forbid_unknown_fields=True, kw_only=True)
        item_type: Any = _ITEMS[name]
        fields.append((nested.name, list[item_type] | UnsetType, UNSET))
    return fields


def create_body(entity: EntitySpec, type_name: str) -> type[msgspec.Struct]:
    fields: Fields = [*_computed(entity), *_nested(entity, type_name)]
    for spec in entity.fields.values():
        if not spec.on_create:
            continue
        if spec.required:
            fields.append((spec.name, _wire_type(spec)))
        else:
            fields.append((spec.name, _wire_type(spec) | None | UnsetType, UNSET))
    fields.append(CUSTOM_FIELD)
    return msgspec.defstruct(f"{type_name}Create", fields, forbid_unknown_fields=True, kw_only=True)


def update_body(entity: EntitySpec, type_name: str) -> type[msgspec.Struct]:
    fields: Fields = [*_computed(entity), *_nested(entity, type_name)]
    for spec in entity.fields.values():
        if not spec.on_update:
            continue
        nullable = UnsetType if spec.required else None | UnsetType
        fields.append((spec.name, _wire_type(spec) | nullable, UNSET))
    fields.append(CUSTOM_FIELD)
    return msgspec.defstruct(f"{type_name}Update", fields, forbid_unknown_fields=True, kw_only=True)
