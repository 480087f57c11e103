"""Policy administration's common ground: who may change policy, and what every change does.

Only tenant admins change policy. Nobody can grant (to a role, or by assigning a role) an
allow they do not hold themselves (backend/policy/grant_checks.py). Every change bumps the
tenant's policy version, so every server process reloads the policy on its next request, and
is recorded as a security event.

The changes themselves: roles.py (role CRUD), rules.py (rules and scopes of a role),
assignments.py (who holds which role), last_admin.py (the lock that keeps a tenant's last
admin), teams.py; role_views.py reads roles back.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.db.base import table_of
from backend.db.session import note_policy_change
from backend.errors import Forbidden
from backend.history.events import EventType, record_event
from backend.policy.builtin import TENANT_ADMIN
from backend.policy.engine import TenantPolicy, policies
from backend.policy.scopes import require_scope
from backend.tenants.models import Tenant

_tenants = table_of(Tenant)


async def admin_policy(conn: AsyncConnection, ctx: RequestContext) -> TenantPolicy:
    """The tenant's policy, if the caller is a tenant admin (and the token may administer)."""
    require_scope(ctx, "admin")
    policy = await policies.get(conn, ctx.tenant_id)
    admin_role = policy.builtin_roles.get(TENANT_ADMIN)
    if admin_role is None or admin_role not in policy.roles_of(ctx.user_id):
        raise Forbidden("only tenant admins may do this", code="admin_required")
    return policy


async def require_admin(ctx: RequestContext) -> None:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)


async def bump_policy_version(conn: AsyncConnection, ctx: RequestContext) -> None:
    await conn.execute(
        update(_tenants)
        .where(_tenants.c.id == ctx.tenant_id)
        .values(policy_version=_tenants.c.policy_version + 1, updated_at=func.now())
    )
    await note_policy_change(conn, ctx.tenant_id)


async def policy_event(
    conn: AsyncConnection, ctx: RequestContext, event: EventType, **details: object
) -> None:
    """Record a policy change, by whom and through which channel, in the change's transaction."""
    await record_event(
        conn,
        ctx.tenant_id,
        event,
        actor_user_id=ctx.user_id,
        actor_client_id=ctx.principal.client_id,
        request_id=ctx.request_id,
        channel=ctx.channel,
        details={k: str(v) if isinstance(v, uuid.UUID) else v for k, v in details.items()},
    )
