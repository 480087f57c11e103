"""Built-in roles, read from policies/roles.toml and seeded into every new tenant."""

from __future__ import annotations

import tomllib
import uuid
from dataclasses import dataclass
from functools import cache

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.policy.engine import POLICY_DIR
from backend.policy.models import Role, RoleRule, RoleScope

TENANT_ADMIN = "tenant_admin"
DEFAULT_ROLE = "salesperson"


@dataclass(frozen=True)
class RoleDefinition:
    name: str
    description: str
    scopes: dict[str, str]
    rules: list[tuple[str, str, str]]  # effect, object, action


@cache
def builtin_roles() -> dict[str, RoleDefinition]:
    raw = tomllib.loads((POLICY_DIR / "roles.toml").read_text())
    return {
        name: RoleDefinition(
            name=name,
            description=spec["description"],
            scopes=dict(spec.get("scope", {})),
            rules=[(effect, obj, action) for effect, obj, action in spec["rules"]],
        )
        for name, spec in raw.items()
    }


async def seed_builtin_roles(conn: AsyncConnection, tenant_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """Create the built-in roles in a new tenant; returns their ids by name."""
    ids: dict[str, uuid.UUID] = {}
    for definition in builtin_roles().values():
        role_id = uuid7()
        ids[definition.name] = role_id
        await conn.execute(
            insert(table_of(Role)).values(
                tenant_id=tenant_id,
                id=role_id,
                name=definition.name,
                description=definition.description,
                builtin=True,
            )
        )
        await conn.execute(
            insert(table_of(RoleRule)),
            [
                {
                    "tenant_id": tenant_id,
                    "id": uuid7(),
                    "role_id": role_id,
                    "effect": effect,
                    "object": obj,
                    "action": action,
                }
                for effect, obj, action in definition.rules
            ],
        )
        if definition.scopes:
            await conn.execute(
                insert(table_of(RoleScope)),
                [
                    {
                        "tenant_id": tenant_id,
                        "id": uuid7(),
                        "role_id": role_id,
                        "entity": entity,
                        "scope": scope,
                    }
                    for entity, scope in definition.scopes.items()
                ],
            )
    return ids
