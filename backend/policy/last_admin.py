"""The last-admin lock: a tenant always keeps an active human admin."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.db.base import table_of
from backend.errors import Conflict, Forbidden
from backend.policy.builtin import TENANT_ADMIN
from backend.policy.models import Role, UserRole
from backend.tenants.models import Tenant, User

_roles, _user_roles = table_of(Role), table_of(UserRole)
_users, _tenants = table_of(User), table_of(Tenant)


@dataclass(frozen=True)
class Admins:
    """Who holds tenant_admin right now, read from the database under the tenant's lock."""

    role_id: uuid.UUID | None
    active_humans: frozenset[uuid.UUID]  # active users of kind "person": the ones that count

    def refuse_losing(self, user_id: uuid.UUID, field: str) -> None:
        """Refuse a change that takes `user_id` out of the active human admins when nobody
        else would be left."""
        if user_id in self.active_humans and not self.active_humans - {user_id}:
            raise Conflict("the tenant would have no admin left", field=field, code="last_admin")


async def lock_tenant(conn: AsyncConnection, ctx: RequestContext) -> None:
    # FOR NO KEY UPDATE (key_share=True): the lock a policy-version bump takes anyway.
    await conn.execute(
        select(_tenants.c.id).where(_tenants.c.id == ctx.tenant_id).with_for_update(key_share=True)
    )


async def lock_admins(conn: AsyncConnection, ctx: RequestContext) -> Admins:
    """Lock the tenant's row, then read its admins from the database (never the cached policy).

    Every change that can take an admin away (demoting, deactivating) calls this first in its
    transaction, so such changes run one at a time per tenant and each one counts what the
    previous one committed: two admins demoting each other or themselves at the same moment
    cannot both succeed. FOR NO KEY UPDATE, the lock a policy-version bump takes anyway, so
    inserts into tables referencing the tenant (which take KEY SHARE) are not held up.

    The caller must still be an active tenant admin once the lock is held: a change that
    committed meanwhile may have demoted or deactivated them.
    """
    await lock_tenant(conn, ctx)
    role_id = (
        await conn.execute(
            select(_roles.c.id).where(_roles.c.name == TENANT_ADMIN, _roles.c.builtin.is_(True))
        )
    ).scalar_one_or_none()
    holders = (
        (
            await conn.execute(
                select(_users.c.id, _users.c.active, _users.c.kind)
                .join(
                    _user_roles,
                    (_user_roles.c.tenant_id == _users.c.tenant_id)
                    & (_user_roles.c.user_id == _users.c.id),
                )
                .where(_user_roles.c.role_id == role_id)
            )
        ).all()
        if role_id is not None
        else []
    )
    if not any(h.id == ctx.user_id and h.active for h in holders):
        raise Forbidden("only tenant admins may do this", code="admin_required")
    return Admins(role_id, frozenset(h.id for h in holders if h.active and h.kind == "person"))
