"""Custom field values: validated on write like built-in fields (backend/records/fields.py),
stored as JSON in the record's `custom` column.

Stored forms: text kinds, dates, choices and references as JSON strings; number as a JSON
integer; decimal as a decimal string (exact); datetime as an ISO 8601 string in UTC; boolean
as true/false; multi_choice as a list of strings.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from backend.custom_fields.definition import (
    DECIMAL_SCALE,
    DEFAULT_TEXT_LENGTH,
    MAX_RECORD_BYTES,
    MAX_TEXT_LENGTH,
    MAX_VALUE_BYTES,
    CustomFieldDef,
    custom_name,
)
from backend.errors import FieldProblem, ValidationFailed
from backend.records.fields import FieldKind, FieldSpec, check_value

_JSON_SAFE = 2**53 - 1  # larger integers lose precision in JavaScript clients
_KINDS: dict[str, FieldKind] = {
    "text": "text",
    "long_text": "text",
    "number": "integer",
    "decimal": "decimal",
    "date": "date",
    "datetime": "datetime",
    "single_choice": "choice",
    "email": "email",
    "phone": "phone",
    "url": "url",
    "reference": "uuid",
}
_DEFAULT_LENGTH = {"email": 254, "phone": 40, "url": 2000, "long_text": MAX_TEXT_LENGTH}


def field_spec(definition: CustomFieldDef) -> FieldSpec:
    """The built-in field spec a custom field's values are checked with."""
    kind = _KINDS.get(definition.type, "text")
    length = definition.max_length or _DEFAULT_LENGTH.get(definition.type, DEFAULT_TEXT_LENGTH)
    return FieldSpec(
        definition.name,
        kind=kind,
        max_length=length if kind in ("text", "email", "url", "phone") else None,
        multiline=definition.type == "long_text",
        choices=definition.choices,
        minimum=-_JSON_SAFE if kind == "integer" else None,
        maximum=_JSON_SAFE if kind == "integer" else None,
        scale=DECIMAL_SCALE,
    )


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _stored(definition: CustomFieldDef, value: Any) -> tuple[Any, FieldProblem | None]:
    name = definition.name
    if definition.type == "boolean":
        if not isinstance(value, bool):
            return None, FieldProblem(name, "invalid_type", "must be true or false")
        return value, None
    if definition.type == "multi_choice":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return None, FieldProblem(name, "invalid_type", "must be a list of strings")
        chosen: list[str] = []
        for item in value:
            if item not in definition.choices:
                return None, FieldProblem(
                    name, "invalid_choice", f"each must be one of: {', '.join(definition.choices)}"
                )
            if item not in chosen:
                chosen.append(item)
        return chosen, None
    checked, problem = check_value(field_spec(definition), value)
    if problem is not None:
        return None, problem
    if isinstance(checked, datetime):
        return checked.astimezone(UTC).isoformat(), None
    if isinstance(checked, date):
        return checked.isoformat(), None
    if isinstance(checked, Decimal):
        return format(checked.normalize(), "f"), None
    if isinstance(checked, uuid.UUID):
        return str(checked), None
    return checked, None


def clean_value(definition: CustomFieldDef, value: Any) -> tuple[Any, FieldProblem | None]:
    """A value as stored, or the problem with it (a filter value goes through this too)."""
    stored, problem = _stored(definition, value)
    if problem is None and len(compact(stored)) > MAX_VALUE_BYTES:
        problem = FieldProblem(
            definition.name, "value_too_large", f"must be at most {MAX_VALUE_BYTES} bytes as JSON"
        )
    return stored, problem


def merge_custom(
    definitions: Mapping[str, CustomFieldDef],
    sent: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    creating: bool,
    writable: frozenset[str],
) -> dict[str, Any]:
    """`current` with the keys in `sent` set (`None` clears one), checked; all problems at once.

    Keys kept in `current` but no longer defined (a removed definition) stay as they are,
    hidden. Required fields are enforced on create for callers who may write them (a caller
    the policy denies a field could otherwise never create a record)."""
    problems: list[FieldProblem] = []
    merged = dict(current)
    for key, value in sent.items():
        definition = definitions.get(key)
        if definition is None:
            problems.append(
                FieldProblem(custom_name(key), "unknown_field", "is not a custom field here")
            )
            continue
        if value is None:
            if definition.required:
                problems.append(FieldProblem(definition.name, "required", "must not be null"))
            merged.pop(key, None)
            continue
        stored, problem = clean_value(definition, value)
        if problem is not None:
            problems.append(problem)
        else:
            merged[key] = stored
    if creating:
        for definition in definitions.values():
            if definition.required and definition.key not in sent and definition.name in writable:
                problems.append(FieldProblem(definition.name, "required", "is required"))
    if not problems and len(compact(merged)) > MAX_RECORD_BYTES:
        problems.append(
            FieldProblem(
                "custom", "too_large", f"custom values must be at most {MAX_RECORD_BYTES} bytes"
            )
        )
    if problems:
        raise ValidationFailed.of(problems)
    return merged


def split_custom(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Built-in fields apart from custom ones. Custom values come as `custom: {key: value}`
    (REST, sync) or as `custom.<key>` names (a revert of one history entry)."""
    builtin: dict[str, Any] = {}
    custom: dict[str, Any] | None = None
    for name, value in data.items():
        if name == "custom":
            if not isinstance(value, Mapping):
                raise ValidationFailed.one(
                    "custom", "invalid_type", "must be an object of custom field values"
                )
            custom = {**(custom or {}), **value}
        elif name.startswith("custom."):
            custom = {**(custom or {}), name.removeprefix("custom."): value}
        else:
            builtin[name] = value
    return builtin, custom
