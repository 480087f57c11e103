"""Read and change the caller's own profile: name and time zone. Nobody else's."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update

from backend.context import RequestContext
from backend.db.base import table_of
from backend.errors import Forbidden, NotFound
from backend.profile.zones import TENANT_DEFAULT_ZONE, check_zone
from backend.tenants.models import User

_users = table_of(User)


@dataclass(frozen=True)
class Profile:
    name: str | None
    time_zone: str  # the zone in effect: the chosen one, else the tenant's default


async def get_profile(ctx: RequestContext) -> Profile:
    async with ctx.session.transaction() as conn:
        stmt = select(_users.c.display_name, _users.c.time_zone).where(
            _users.c.tenant_id == ctx.tenant_id, _users.c.id == ctx.user_id
        )
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("no such user")
    return Profile(name=row.display_name, time_zone=row.time_zone or TENANT_DEFAULT_ZONE)


async def set_time_zone(ctx: RequestContext, time_zone: str | None) -> Profile:
    """Choose a zone; None goes back to the tenant's default. Only the user's own session may
    change it (an app's token reads, never rewrites, the user's settings)."""
    if ctx.principal.scopes is not None:
        raise Forbidden(
            "your settings are changed from a first-party session", code="first_party_only"
        )
    chosen = None if time_zone is None else check_zone(time_zone)
    async with ctx.session.transaction() as conn:
        stmt = (
            update(_users)
            .where(_users.c.tenant_id == ctx.tenant_id, _users.c.id == ctx.user_id)
            .values(time_zone=chosen, version=_users.c.version + 1, updated_at=func.now())
            .returning(_users.c.display_name)
        )
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("no such user")
    return Profile(name=row.display_name, time_zone=chosen or TENANT_DEFAULT_ZONE)
