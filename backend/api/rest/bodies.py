"""REST request bodies generated from an entity's field specs (types and names only; the
rules are checked by the service). Unknown fields are refused while decoding."""

from __future__ import annotations

from typing import Any

import msgspec
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
    if spec.kind == "decimal":  # a JSON number, or a string for exact money
        return float | int | str
    return str


def create_body(entity: EntitySpec, type_name: str) -> type[msgspec.Struct]:
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
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
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for spec in entity.fields.values():
        if not spec.on_update:
            continue
        nullable = UnsetType if spec.required else None | UnsetType
        fields.append((spec.name, _wire_type(spec) | nullable, UNSET))
    fields.append(CUSTOM_FIELD)
    return msgspec.defstruct(f"{type_name}Update", fields, forbid_unknown_fields=True, kw_only=True)
