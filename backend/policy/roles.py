"""Role CRUD: create (with rules and scopes), rename or describe, delete."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import delete, func, insert, update
from sqlalchemy.exc import IntegrityError

from backend.context import RequestContext
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.errors import Conflict, Forbidden, ValidationFailed
from backend.history.events import EventType
from backend.policy.admin import admin_policy, bump_policy_version, policy_event
from backend.policy.grant_checks import (
    check_custom_object,
    check_rule,
    check_scope,
    expand,
    refuse_lifting_own_deny,
    require_held,
)
from backend.policy.last_admin import lock_tenant
from backend.policy.models import Role
from backend.policy.role_views import RoleView, one_role
from backend.policy.rules import insert_rule, upsert_scope

_roles = table_of(Role)
_ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


def _check_name(name: str) -> None:
    if not _ROLE_NAME.match(name):
        raise ValidationFailed.one("name", "invalid_name", "2-64 of a-z, 0-9 and _, from a letter")


async def create_role(
    ctx: RequestContext,
    *,
    name: str,
    description: str | None = None,
    rules: list[tuple[str, str, str]] | None = None,
    scopes: dict[str, str] | None = None,
) -> RoleView:
    _check_name(name)
    if description is not None and len(description) > 500:
        raise ValidationFailed.one("description", "too_long", "at most 500 characters")
    for effect, obj, action in rules or []:
        check_rule(effect, obj, action)
    for entity, scope in (scopes or {}).items():
        check_scope(entity, scope)
    async with ctx.session.transaction() as conn:
        policy = await admin_policy(conn, ctx)
        for _, obj, _ in rules or []:
            check_custom_object(policy, obj)
        require_held(
            policy,
            ctx,
            [
                g
                for effect, obj, act in rules or []
                if effect == "allow"
                for g in expand(obj, act, policy)
            ],
        )
        role_id = uuid7()
        try:
            async with conn.begin_nested():
                await conn.execute(
                    insert(_roles).values(
                        tenant_id=ctx.tenant_id, id=role_id, name=name, description=description
                    )
                )
        except IntegrityError:
            raise Conflict(
                f"a role named {name!r} exists", field="name", code="duplicate"
            ) from None
        for effect, obj, action in rules or []:
            await insert_rule(conn, ctx, role_id, effect, obj, action)
        for entity, scope in (scopes or {}).items():
            await upsert_scope(conn, ctx, role_id, entity, scope)
        await bump_policy_version(conn, ctx)
        await policy_event(conn, ctx, EventType.ROLE_CREATED, role_id=role_id, name=name)
        return await one_role(conn, role_id)


async def update_role(
    ctx: RequestContext, role_id: uuid.UUID, *, name: str | None, description: str | None
) -> RoleView:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        role = await one_role(conn, role_id)
        values: dict[str, object] = {}
        if name is not None and name != role.name:
            if role.builtin:
                raise Forbidden(
                    "built-in roles keep their names", field="name", code="builtin_role"
                )
            _check_name(name)
            values["name"] = name
        if description is not None:
            if len(description) > 500:
                raise ValidationFailed.one("description", "too_long", "at most 500 characters")
            values["description"] = description
        if values:
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        update(_roles)
                        .where(_roles.c.id == role_id)
                        .values(**values, version=_roles.c.version + 1, updated_at=func.now())
                    )
            except IntegrityError:
                raise Conflict(
                    "a role with this name exists", field="name", code="duplicate"
                ) from None
            await bump_policy_version(conn, ctx)
            await policy_event(conn, ctx, EventType.ROLE_UPDATED, role_id=role_id, **values)
        return await one_role(conn, role_id)


async def delete_role(ctx: RequestContext, role_id: uuid.UUID) -> None:
    async with ctx.session.transaction() as conn:
        policy = await admin_policy(conn, ctx)
        # The tenant's lock first, as set_user_roles takes it: the delete cascades to role
        # assignments, and taking the two in opposite orders could deadlock.
        await lock_tenant(conn, ctx)
        role = await one_role(conn, role_id)
        if role.builtin:
            raise Forbidden("built-in roles cannot be deleted", field="id", code="builtin_role")
        refuse_lifting_own_deny(policy, ctx, role, role.rules, "id")
        await conn.execute(delete(_roles).where(_roles.c.id == role_id))
        await bump_policy_version(conn, ctx)
        await policy_event(conn, ctx, EventType.ROLE_DELETED, role_id=role_id, name=role.name)
