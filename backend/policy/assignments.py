"""Who holds which role: provisioning, reading and replacing a user's roles."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import note_policy_change
from backend.errors import NotFound, ValidationFailed
from backend.history.events import EventType
from backend.policy.admin import admin_policy, bump_policy_version, policy_event
from backend.policy.grant_checks import expand, refuse_lifting_own_deny, require_held
from backend.policy.last_admin import lock_admins
from backend.policy.models import Role, UserRole
from backend.policy.role_views import RoleView, role_views
from backend.tenants.models import Tenant, User

_roles, _user_roles = table_of(Role), table_of(UserRole)
_users, _tenants = table_of(User), table_of(Tenant)


async def assign_roles(
    conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID, role_names: list[str]
) -> None:
    """Give a user roles by name, inside the caller's transaction (tenant and user creation,
    app service users). No admin check: callers are the trusted provisioning paths."""
    found = (
        await conn.execute(select(_roles.c.id, _roles.c.name).where(_roles.c.name.in_(role_names)))
    ).all()
    missing = set(role_names) - {r.name for r in found}
    if missing:
        raise ValidationFailed.one("roles", "unknown_role", f"no role {sorted(missing)[0]!r}")
    for role in found:
        await conn.execute(
            insert(_user_roles).values(
                tenant_id=tenant_id, id=uuid7(), user_id=user_id, role_id=role.id
            )
        )
    await conn.execute(
        update(_tenants)
        .where(_tenants.c.id == tenant_id)
        .values(policy_version=_tenants.c.policy_version + 1)
    )
    await note_policy_change(conn, tenant_id)


async def user_roles(ctx: RequestContext, user_id: uuid.UUID) -> list[RoleView]:
    async with ctx.session.transaction() as conn:
        if user_id != ctx.user_id:
            await admin_policy(conn, ctx)
        await require_user(conn, user_id)
        ids = (
            (
                await conn.execute(
                    select(_user_roles.c.role_id).where(_user_roles.c.user_id == user_id)
                )
            )
            .scalars()
            .all()
        )
        return [r for r in await role_views(conn) if r.id in set(ids)]


async def require_user(conn: AsyncConnection, user_id: uuid.UUID) -> None:
    if (await conn.execute(select(_users.c.id).where(_users.c.id == user_id))).first() is None:
        raise NotFound("user not found")


async def set_user_roles(
    ctx: RequestContext, user_id: uuid.UUID, role_ids: list[uuid.UUID]
) -> list[RoleView]:
    async with ctx.session.transaction() as conn:
        policy = await admin_policy(conn, ctx)
        admins = await lock_admins(conn, ctx)
        await require_user(conn, user_id)
        roles = {r.id: r for r in await role_views(conn)}
        unknown = [r for r in role_ids if r not in roles]
        if unknown:
            raise ValidationFailed.one("roles", "unknown_role", f"no role {unknown[0]}")
        # From the database, after the lock: the cached policy may predate a change that
        # committed while this one waited.
        current = frozenset(
            (
                await conn.execute(
                    select(_user_roles.c.role_id).where(_user_roles.c.user_id == user_id)
                )
            )
            .scalars()
            .all()
        )
        if user_id == ctx.user_id:
            for role in [roles[r] for r in current - set(role_ids) if r in roles]:
                refuse_lifting_own_deny(policy, ctx, role, role.rules, "roles")
        for role_id in set(role_ids) - current:
            require_held(
                policy,
                ctx,
                [
                    g
                    for rule in roles[role_id].rules
                    if rule.effect == "allow"
                    for g in expand(rule.object, rule.action)
                ],
            )
        if admins.role_id in current and admins.role_id not in role_ids:
            admins.refuse_losing(user_id, field="roles")
        await conn.execute(delete(_user_roles).where(_user_roles.c.user_id == user_id))
        for role_id in dict.fromkeys(role_ids):
            await conn.execute(
                insert(_user_roles).values(
                    tenant_id=ctx.tenant_id, id=uuid7(), user_id=user_id, role_id=role_id
                )
            )
        await bump_policy_version(conn, ctx)
        added, removed = set(role_ids) - current, current - set(role_ids)
        for role_id in added:
            await policy_event(
                conn, ctx, EventType.ROLE_ASSIGNED, user_id=user_id, role=roles[role_id].name
            )
        for role_id in removed:
            await policy_event(
                conn,
                ctx,
                EventType.ROLE_UNASSIGNED,
                user_id=user_id,
                role=roles[role_id].name if role_id in roles else str(role_id),
            )
        return [roles[r] for r in dict.fromkeys(role_ids)]
