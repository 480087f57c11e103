"""Editing a role's rules (allow/deny on an object and action) and its per-entity scopes."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.errors import Conflict, Forbidden, NotFound
from backend.history.events import EventType
from backend.policy.admin import admin_policy, bump_policy_version, policy_event
from backend.policy.builtin import TENANT_ADMIN
from backend.policy.engine import RECORD_SCOPES, TenantPolicy
from backend.policy.grant_checks import (
    check_custom_object,
    check_rule,
    check_scope,
    expand,
    refuse_lifting_own_deny,
    require_held,
)
from backend.policy.models import RoleRule, RoleScope
from backend.policy.role_views import RoleView, RuleView, one_role

_rules, _scopes = table_of(RoleRule), table_of(RoleScope)


async def insert_rule(
    conn: AsyncConnection,
    ctx: RequestContext,
    role_id: uuid.UUID,
    effect: str,
    obj: str,
    action: str,
) -> uuid.UUID:
    rule_id = uuid7()
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(_rules).values(
                    tenant_id=ctx.tenant_id,
                    id=rule_id,
                    role_id=role_id,
                    effect=effect,
                    object=obj,
                    action=action,
                )
            )
    except IntegrityError:
        raise Conflict("the role already has this rule", field="object", code="duplicate") from None
    return rule_id


def _protect(role: RoleView) -> None:
    if role.builtin and role.name == TENANT_ADMIN:
        raise Forbidden("the tenant_admin role cannot be narrowed", field="id", code="builtin_role")


async def grant(
    ctx: RequestContext, role_id: uuid.UUID, *, effect: str, obj: str, action: str
) -> RuleView:
    check_rule(effect, obj, action)
    async with ctx.session.transaction() as conn:
        policy = await admin_policy(conn, ctx)
        check_custom_object(policy, obj)
        role = await one_role(conn, role_id)
        _protect(role)
        if effect == "allow":
            require_held(policy, ctx, expand(obj, action, policy))
        rule_id = await insert_rule(conn, ctx, role_id, effect, obj, action)
        await bump_policy_version(conn, ctx)
        await policy_event(
            conn,
            ctx,
            EventType.PERMISSION_GRANTED,
            role_id=role_id,
            role=role.name,
            effect=effect,
            object=obj,
            action=action,
        )
        return RuleView(rule_id, effect, obj, action)


async def revoke(ctx: RequestContext, role_id: uuid.UUID, rule_id: uuid.UUID) -> None:
    async with ctx.session.transaction() as conn:
        policy = await admin_policy(conn, ctx)
        role = await one_role(conn, role_id)
        _protect(role)
        refuse_lifting_own_deny(
            policy, ctx, role, [r for r in role.rules if r.id == rule_id], "rules"
        )
        removed = (
            await conn.execute(
                delete(_rules)
                .where(_rules.c.role_id == role_id, _rules.c.id == rule_id)
                .returning(_rules.c.effect, _rules.c.object, _rules.c.action)
            )
        ).first()
        if removed is None:
            raise NotFound("rule not found")
        await bump_policy_version(conn, ctx)
        await policy_event(
            conn,
            ctx,
            EventType.PERMISSION_REVOKED,
            role_id=role_id,
            role=role.name,
            effect=removed.effect,
            object=removed.object,
            action=removed.action,
        )


async def upsert_scope(
    conn: AsyncConnection, ctx: RequestContext, role_id: uuid.UUID, entity: str, scope: str
) -> None:
    await conn.execute(
        delete(_scopes).where(_scopes.c.role_id == role_id, _scopes.c.entity == entity)
    )
    await conn.execute(
        insert(_scopes).values(
            tenant_id=ctx.tenant_id, id=uuid7(), role_id=role_id, entity=entity, scope=scope
        )
    )


async def set_scope(
    ctx: RequestContext, role_id: uuid.UUID, *, entity: str, scope: str
) -> RoleView:
    check_scope(entity, scope)
    async with ctx.session.transaction() as conn:
        policy = await admin_policy(conn, ctx)
        role = await one_role(conn, role_id)
        _protect(role)
        if RECORD_SCOPES.index(scope) > RECORD_SCOPES.index(_caller_scope(policy, ctx, entity)):
            raise Forbidden(
                "you cannot grant a wider scope than you hold",
                field="scope",
                code="escalation_refused",
            )
        await upsert_scope(conn, ctx, role_id, entity, scope)
        await bump_policy_version(conn, ctx)
        await policy_event(
            conn, ctx, EventType.ROLE_UPDATED, role_id=role_id, entity=entity, scope=scope
        )
        return await one_role(conn, role_id)


def _caller_scope(policy: TenantPolicy, ctx: RequestContext, entity: str) -> str:
    held = [policy.scope_of(r, entity) for r in policy.roles_of(ctx.user_id)]
    return max(held, key=RECORD_SCOPES.index) if held else "own"
