"""An EntitySpec checked against its table when it is built (at import), so a spec that names
a missing column, or promises what the column cannot hold, fails at start-up with the entity
and field named, instead of as a 500 on the first request that touches it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, String

if TYPE_CHECKING:
    from backend.records.spec import EntitySpec


def _column(spec: EntitySpec, name: str, what: str) -> Column[object]:
    if name not in spec.table.c:
        raise ValueError(f"{spec.name}.{name}: {what} names no column of table {spec.table.name}")
    return spec.table.c[name]


def _has_default(column: Column[object]) -> bool:
    return column.server_default is not None or column.default is not None


def _length(column: Column[object]) -> int | None:
    """A string column's length limit (None: unlimited, as Text)."""
    return column.type.length if isinstance(column.type, String) else None


def _cleared_on_delete(column: Column[Any]) -> bool:
    return any(
        (
            fk.constraint is not None
            and (fk.constraint.ondelete or "").upper().startswith("SET NULL")
        )
        for fk in column.foreign_keys
    )


def check_table(spec: EntitySpec) -> None:
    """Raise ValueError naming the entity and field where `spec` and its table disagree."""
    table = spec.table.name
    for key, field in spec.fields.items():
        if key != field.name:
            raise ValueError(f"{spec.name}.{key}: the field is named {field.name!r}")
        column = _column(spec, field.name, "field")
        where = f"{spec.name}.{field.name}"
        # A required link whose target's deletion clears it (ON DELETE SET NULL) is the one
        # required field that may later be null: required on create, kept when the target goes.
        if field.required and column.nullable and not _cleared_on_delete(column):
            raise ValueError(f"{where}: required, but column {table}.{column.name} is nullable")
        if (
            field.on_create
            and not field.required
            and field.name not in spec.server_filled
            and not column.nullable
            and not _has_default(column)
        ):
            raise ValueError(
                f"{where}: optional on create, but column {table}.{column.name} is NOT NULL "
                "without a default (make the field required or give the column a default)"
            )
        length = _length(column)
        if field.kind == "choice":
            if not field.choices:
                raise ValueError(f"{where}: a choice field without choices")
            if not isinstance(column.type, String):
                raise ValueError(f"{where}: a choice field on a non-string column {table}")
            longest = max(field.choices, key=len)
            if length is not None and len(longest) > length:
                raise ValueError(
                    f"{where}: choice {longest!r} is longer than column {table}.{column.name} "
                    f"({length} characters)"
                )
        elif length is not None and field.max_length is not None and field.max_length > length:
            raise ValueError(
                f"{where}: max_length {field.max_length} exceeds column {table}.{column.name} "
                f"({length} characters)"
            )
    for name in spec.search_columns:
        _column(spec, name, "search column")
    for name in spec.filter_columns:
        _column(spec, name, "filter column")
    for name in spec.sort_columns:
        column = _column(spec, name, "sort column")
        # Keyset pagination compares (sort value, id): a NULL would drop rows from pages. A
        # nullable decimal is the exception: listing sorts it by a key that puts NULLs last.
        if column.nullable and getattr(column.type, "precision", None) is None:
            raise ValueError(
                f"{spec.name}.{name}: sort column {table}.{name} is nullable (only a nullable "
                "decimal may be sorted on)"
            )
    for name in spec.references:
        _column(spec, name, "reference")
