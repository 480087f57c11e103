"""What the record service does with custom fields: mask, write, filter, sort and search.

A record's custom values are the `custom` JSONB column: `{key: value}`. The caller's compiled
access (backend/policy/access.py) carries the tenant's live definitions of the entity and,
per action, the custom field names (`custom.<key>`) the caller's roles allow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Numeric, Table, cast, func, literal

from backend.custom_fields.definition import TEXT_TYPES, CustomFieldDef, custom_name
from backend.custom_fields.values import clean_value
from backend.errors import BadRequest
from backend.policy.access import EntityAccess

NUMERIC_TYPES = frozenset({"number", "decimal"})


def visible_custom(
    values: Mapping[str, Any] | None, access: EntityAccess, action: str
) -> dict[str, Any]:
    """The values of live definitions the caller may see for `action`; a removed
    definition's values (kept in the column) never show."""
    allowed = access.fields.get(action, frozenset())
    return {
        key: value
        for key, value in (values or {}).items()
        if key in access.custom and custom_name(key) in allowed
    }


def sent_names(custom: Mapping[str, Any] | None) -> set[str]:
    return {custom_name(key) for key in custom or {}}


def _defined(access: EntityAccess, key: str, param: str, code: str) -> CustomFieldDef:
    definition = access.custom.get(key)
    if definition is None:
        raise BadRequest(f"{param}: no custom field {key!r}", field=param, code=code)
    return definition


def filter_condition(table: Table, access: EntityAccess, key: str, raw: str) -> ColumnElement[bool]:
    """`custom.<key>=<raw>`: the value parsed as the field's type, matched by containment
    (a multi_choice matches records whose list holds it), which the GIN index answers."""
    name = custom_name(key)
    definition = _defined(access, key, name, "unknown_filter")
    value: Any = raw
    if definition.type == "number":
        try:
            value = int(raw)
        except ValueError:
            raise BadRequest(
                f"{name}: must be an integer", field=name, code="invalid_filter"
            ) from None
    elif definition.type == "boolean":
        if raw not in ("true", "false"):
            raise BadRequest(f"{name}: true or false", field=name, code="invalid_filter")
        value = raw == "true"
    elif definition.type == "multi_choice":
        value = [raw]
    stored, problem = clean_value(definition, value)
    if problem is not None:
        raise BadRequest(f"{name}: {problem.message}", field=name, code="invalid_filter")
    return table.c.custom.contains({key: stored})


def sort_expression(table: Table, access: EntityAccess, key: str) -> ColumnElement[Any]:
    """A NOT NULL sort key (keyset pagination needs a total order): numbers as numeric with
    missing values first, everything else as text with missing values as ''."""
    definition = _defined(access, key, "sort", "invalid_sort")
    text = table.c.custom[key].astext
    if definition.type in NUMERIC_TYPES:
        return func.coalesce(cast(text, Numeric), literal("-Infinity").cast(Numeric))
    return func.coalesce(text, literal(""))


def sort_bound(access: EntityAccess, key: str, value: Any) -> ColumnElement[Any]:
    """A cursor's sort value, typed like the sort expression."""
    definition = access.custom.get(key)
    if definition is not None and definition.type in NUMERIC_TYPES:
        return literal(str(value)).cast(Numeric)
    return literal(str(value))


def search_terms(table: Table, access: EntityAccess, pattern: str) -> list[ColumnElement[bool]]:
    """ILIKE on the text-type custom fields the caller may read."""
    readable = access.fields.get("read", frozenset())
    return [
        table.c.custom[d.key].astext.ilike(pattern, escape="\\")
        for d in access.custom.values()
        if d.type in TEXT_TYPES and d.name in readable
    ]
