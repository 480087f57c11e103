"""Nested fields from the declared relations, both directions, through the per-request
DataLoaders (backend/api/gql/loaders.py): one query per (entity, link) and level of a page,
never one per parent, and only through the record services (policy, scope, masking and the
read budget apply as on any read)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import strawberry

from backend.api.gql.entities.objects import EntityTypes, GqlInfo
from backend.api.gql.loaders import children_of, record_by_id
from backend.api.gql.pagination import Connection
from backend.records.spec import Relation


def _to_one(relation: Relation, entity: EntityTypes, target: EntityTypes) -> Any:
    column = relation.column

    async def resolve(root: Any, info: GqlInfo) -> Any:
        value = getattr(root, column)
        if value is None:
            return None
        return await record_by_id(info.context, target.service, uuid.UUID(value), target.node)

    description = (
        relation.description or f"The {target.spec.label} this {entity.spec.label} is with, if any."
    )
    return strawberry.field(
        resolver=resolve, graphql_type=target.type | None, description=description
    )


def _to_many(relation: Relation, child: EntityTypes, parent: EntityTypes) -> Any:
    column = relation.column

    async def resolve(root: Any, info: GqlInfo, first: int = 20) -> Any:
        return await children_of(
            info.context, child.service, column, uuid.UUID(root.id), first, child.node
        )

    description = (
        relation.reverse_description
        or f"The first {child.spec.plural.replace('_', ' ')} of this {parent.spec.label}, by id."
    )
    return strawberry.field(
        resolver=resolve,
        graphql_type=Connection[child.type],  # type: ignore[name-defined]
        description=description,
    )


def _attach(cls: Any, name: str, field: Any) -> None:
    if name in cls.__annotations__ or hasattr(cls, name):
        raise ValueError(f"{cls.__name__}.{name}: a relation collides with another field")
    setattr(cls, name, field)


def attach_relations(entities: Mapping[str, EntityTypes]) -> None:
    """Every declared relation: the to-one field on the entity that holds the column, and the
    to-many list on the entity it names (registry order, so the schema is stable)."""
    for entity in entities.values():
        for relation in entity.spec.relations:
            target = entities[entity.spec.target(relation).name]
            _attach(entity.type, relation.field_name, _to_one(relation, entity, target))
    for child in entities.values():
        for relation in child.spec.relations:
            parent = entities[child.spec.target(relation).name]
            name = relation.reverse_name or child.spec.plural
            _attach(parent.type, name, _to_many(relation, child, parent))
