"""Reading roles back: a role with its rules and scopes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.db.base import table_of
from backend.errors import NotFound
from backend.policy.admin import admin_policy
from backend.policy.models import Role, RoleRule, RoleScope

_roles, _rules, _scopes = table_of(Role), table_of(RoleRule), table_of(RoleScope)


@dataclass(frozen=True)
class RuleView:
    id: uuid.UUID
    effect: str
    object: str
    action: str


@dataclass(frozen=True)
class RoleView:
    id: uuid.UUID
    name: str
    description: str | None
    builtin: bool
    rules: list[RuleView] = field(default_factory=list)
    scopes: dict[str, str] = field(default_factory=dict)


async def role_views(conn: AsyncConnection, role_id: uuid.UUID | None = None) -> list[RoleView]:
    roles_q = select(_roles).order_by(_roles.c.name)
    rules_q = select(_rules).order_by(_rules.c.object, _rules.c.action)
    scopes_q = select(_scopes)
    if role_id is not None:
        roles_q = roles_q.where(_roles.c.id == role_id)
        rules_q = rules_q.where(_rules.c.role_id == role_id)
        scopes_q = scopes_q.where(_scopes.c.role_id == role_id)
    roles = (await conn.execute(roles_q)).all()
    rules: dict[uuid.UUID, list[RuleView]] = {}
    for r in (await conn.execute(rules_q)).all():
        rules.setdefault(r.role_id, []).append(RuleView(r.id, r.effect, r.object, r.action))
    scopes: dict[uuid.UUID, dict[str, str]] = {}
    for s in (await conn.execute(scopes_q)).all():
        scopes.setdefault(s.role_id, {})[s.entity] = s.scope
    return [
        RoleView(r.id, r.name, r.description, r.builtin, rules.get(r.id, []), scopes.get(r.id, {}))
        for r in roles
    ]


async def one_role(conn: AsyncConnection, role_id: uuid.UUID) -> RoleView:
    found = await role_views(conn, role_id)
    if not found:
        raise NotFound("role not found")
    return found[0]


async def list_roles(ctx: RequestContext) -> list[RoleView]:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        return await role_views(conn)


async def get_role(ctx: RequestContext, role_id: uuid.UUID) -> RoleView:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        return await one_role(conn, role_id)
