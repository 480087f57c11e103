"""What the generic record service needs to know about one entity."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Table

from backend.records.fields import FieldSpec


@dataclass(frozen=True)
class EntitySpec:
    name: str  # singular, as used in policies and errors: "contact"
    plural: str  # REST collection name: "contacts"
    table: Table
    fields: Mapping[str, FieldSpec]
    search_columns: tuple[str, ...] = ()
    # Exact-match filters on UUID columns, e.g. owner_id, account_id.
    filter_columns: tuple[str, ...] = ("owner_id",)
    # Columns a list may be sorted by (all NOT NULL, so keyset pagination is total).
    sort_columns: tuple[str, ...] = ("id", "created_at", "updated_at")
    # Writable UUID fields that must name another row: of an entity (then one the caller may
    # read, in scope) or of a plain tenant table (e.g. users).
    references: Mapping[str, Table | EntitySpec] = field(default_factory=dict)

    @staticmethod
    def field_map(*specs: FieldSpec) -> dict[str, FieldSpec]:
        return {spec.name: spec for spec in specs}
