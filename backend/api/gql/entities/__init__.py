"""The GraphQL of every registered entity, generated from its spec (backend/crm/registry.py):
object type, Filter and Order inputs, connection, `x(id)` and `xs(...)` queries, create,
update, delete and revert mutations with their payloads, and nested relations through
DataLoaders in both directions. Nothing here names an entity: a registered entity is served.

Built in three steps so that types may refer to each other: declare every type (objects.py),
attach the relations (relations.py), then finish the types and make the root fields
(roots.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backend.api.gql.entities.objects import EntityTypes, declare, finish
from backend.api.gql.entities.relations import attach_relations
from backend.api.gql.entities.roots import mutation_fields, query_fields, root_type
from backend.crm.registry import SERVICES
from backend.records.service import RecordService


def build_entities(services: Mapping[str, RecordService]) -> dict[str, EntityTypes]:
    """The GraphQL types of these entities (keyed by spec name), relations attached."""
    entities = {name: declare(service.spec, service) for name, service in services.items()}
    attach_relations(entities)
    for entity in entities.values():
        finish(entity)
    return entities


def entity_roots(entities: Mapping[str, EntityTypes]) -> tuple[Any, Any]:
    """The Query and the Mutation root fields of these entities, as two types to merge."""
    queries = {k: v for e in entities.values() for k, v in query_fields(e).items()}
    mutations = {k: v for e in entities.values() for k, v in mutation_fields(e).items()}
    return root_type("EntityQuery", queries), root_type("EntityMutation", mutations)


ENTITY_TYPES: dict[str, EntityTypes] = build_entities(SERVICES)
EntityQuery, EntityMutation = entity_roots(ENTITY_TYPES)


def entity_types(name: str) -> EntityTypes:
    """One entity's generated GraphQL, by its spec name ("contact")."""
    return ENTITY_TYPES[name]
