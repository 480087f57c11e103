"""What the generic record service (and every skin derived from the registry) needs to know
about one entity."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Table

from backend.records.fields import FieldSpec
from backend.records.table_check import check_table


@dataclass(frozen=True)
class Relation:
    """A to-one link from a reference column (`account_id`) to another entity, and the to-many
    list the other entity gets back (`account.contacts`). The target is the entity the column
    names in `EntitySpec.references`."""

    column: str
    # The to-one field's name; default: the column without "_id" ("account").
    name: str = ""
    description: str = ""  # default: "The <target> this <entity> is with, if any."
    # The reverse list's name on the target; default: this entity's plural ("contacts").
    reverse_name: str = ""
    reverse_description: str = ""  # default: "The first <plural> of this <target>, by id."

    @property
    def field_name(self) -> str:
        return self.name or self.column.removesuffix("_id")


@dataclass(frozen=True)
class NestedList:
    """Child records written with their parent, in its transaction (an order's lines): the
    parent's create and update bodies carry `name: [{...}]` (an update replaces the list).
    The parent's service reads them in `RecordService.derive`."""

    name: str  # the body's key: "lines"
    fields: Mapping[str, FieldSpec]  # what a client may send per item
    description: str = ""


@dataclass(frozen=True)
class ListFilter:
    """A list filter of the entity's own (`?sla=breached`): `condition` turns the raw query
    value into SQL (raising BadRequest naming the parameter when it is not understood). It
    reads `fields`, which the caller must be allowed to read (no side channel)."""

    description: str
    fields: tuple[str, ...]
    condition: Callable[[str], ColumnElement[bool]]


@dataclass(frozen=True)
class EntitySpec:
    name: str  # singular, as used in policies and errors: "contact"
    plural: str  # REST collection name: "contacts"
    table: Table
    fields: Mapping[str, FieldSpec]
    search_columns: tuple[str, ...] = ()
    # Exact-match filters on UUID columns, e.g. owner_id, account_id.
    filter_columns: tuple[str, ...] = ("owner_id",)
    # Columns a list may be sorted by (NOT NULL, so keyset pagination is total; a nullable
    # numeric column sorts with its nulls last, see backend/records/listing.py).
    sort_columns: tuple[str, ...] = ("id", "created_at", "updated_at")
    # Numeric, date and date-time columns a list may be narrowed to a range of (inclusive):
    # `?amount_min=&amount_max=`, `?close_date_from=&close_date_to=` (listing.py).
    range_columns: tuple[str, ...] = ()
    # Writable UUID fields that must name another row: of an entity (then one the caller may
    # read, in scope) or of a plain tenant table (e.g. users).
    references: Mapping[str, Table | EntitySpec] = field(default_factory=dict)
    # The GraphQL type name; default: the name in CamelCase ("price_book": "PriceBook").
    type_name: str = ""
    # Links to other entities, navigable in both directions (GraphQL nested fields).
    relations: tuple[Relation, ...] = ()
    # Fields unique per tenant: a duplicate is a 409 `duplicate` naming the field.
    unique_fields: tuple[str, ...] = ()
    nested: tuple[NestedList, ...] = ()
    # Fields the service fills in when a create omits them (a line's unit_price from its
    # product): optional for the client, NOT NULL in the table.
    server_filled: tuple[str, ...] = ()
    # Extra list filters by query parameter name (REST), beyond the exact-match ones.
    list_filters: Mapping[str, ListFilter] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for relation in self.relations:
            if not isinstance(self.references.get(relation.column), EntitySpec):
                raise ValueError(
                    f"{self.name}: relation {relation.column} must be a reference to an entity"
                )
        check_table(self)

    @property
    def graphql_name(self) -> str:
        return self.type_name or "".join(part.title() for part in self.name.split("_"))

    @property
    def label(self) -> str:
        """The entity in prose: "price book"."""
        return self.name.replace("_", " ")

    def target(self, relation: Relation) -> EntitySpec:
        target = self.references[relation.column]
        assert isinstance(target, EntitySpec)  # checked in __post_init__
        return target

    @staticmethod
    def field_map(*specs: FieldSpec) -> dict[str, FieldSpec]:
        return {spec.name: spec for spec in specs}
