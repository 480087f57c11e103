"""The GraphQL of every registered entity, generated from its spec (backend/crm/registry.py):
object type, Filter and Order inputs, connection, `x(id)` and `xs(...)` queries, create,
update, delete and revert mutations with their payloads, and nested relations through
DataLoaders in both directions. Nothing here names an entity: a registered entity is served.

Built in three steps so that types may refer to each other: declare every type (objects.py),
attach the relations (relations.py), then finish the types and make the root fields
(roots.py)."""

from __future__ import annotations

from typing import Any

from backend.api.gql.entities.objects import EntityTypes, declare, finish
from backend.api.gql.entities.relations import attach_relations
from backend.api.gql.entities.roots import mutation_fields, query_fields, root_type
from backend.crm.registry import SERVICES


def _build() -> dict[str, EntityTypes]:
    entities = {name: declare(service.spec, service) for name, service in SERVICES.items()}
    attach_relations(entities)
    for entity in entities.values():
        finish(entity)
    return entities


ENTITY_TYPES: dict[str, EntityTypes] = _build()

EntityQuery: Any = root_type(
    "EntityQuery", {k: v for e in ENTITY_TYPES.values() for k, v in query_fields(e).items()}
)
EntityMutation: Any = root_type(
    "EntityMutation",
    {k: v for e in ENTITY_TYPES.values() for k, v in mutation_fields(e).items()},
)


def entity_types(name: str) -> EntityTypes:
    """One entity's generated GraphQL, by its spec name ("contact")."""
    return ENTITY_TYPES[name]
