"""Public names derived from an entity's spec, the way both skins name things (DESIGN.md):
REST snake_case under /api/v1/<plural>, GraphQL camelCase with the type name as prefix."""

from __future__ import annotations

import re

from backend.records.spec import EntitySpec

_UPPER = re.compile(r"(?<!^)(?=[A-Z])")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def snake(name: str) -> str:
    return _UPPER.sub("_", name).lower()


def type_name(spec: EntitySpec) -> str:
    """GraphQL object type: "contact" -> "Contact", "price_book" -> "PriceBook"."""
    return "".join(part.title() for part in spec.name.split("_"))


def single_root(spec: EntitySpec) -> str:
    """The single-record query field: `contact(id)`."""
    return camel(spec.name)


def list_root(spec: EntitySpec) -> str:
    """The connection query field: `contacts(first, after, filter, orderBy)`."""
    return camel(spec.plural)
