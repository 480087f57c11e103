"""Tenant settings a tenant admin may change through the API: the default phone region that
caller lookup reads numbers without a country code in, and the time zone business hours (SLA
policies) are read in."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from backend.context import RequestContext
from backend.db.base import table_of
from backend.errors import ValidationFailed
from backend.history.events import EventType, record_event
from backend.lookup.phones import reindex_phones, valid_region
from backend.policy.admin import admin_policy
from backend.profile.zones import check_zone
from backend.tenants.models import Tenant

_tenants = table_of(Tenant)


@dataclass(frozen=True)
class TenantSettings:
    default_region: str
    time_zone: str


async def get_settings(ctx: RequestContext) -> TenantSettings:
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        stmt = select(_tenants.c.default_region, _tenants.c.time_zone).where(
            _tenants.c.id == ctx.tenant_id
        )
        row = (await conn.execute(stmt)).one()
    return TenantSettings(default_region=row.default_region, time_zone=row.time_zone)


async def update_settings(
    ctx: RequestContext, *, default_region: str | None, time_zone: str | None = None
) -> TenantSettings:
    if default_region is not None and not valid_region(default_region):
        raise ValidationFailed.one(
            "default_region", "invalid_region", "must be an ISO 3166-1 alpha-2 region, e.g. US"
        )
    if time_zone is not None:
        check_zone(time_zone)
    async with ctx.session.transaction() as conn:
        await admin_policy(conn, ctx)
        stmt = select(_tenants.c.default_region, _tenants.c.time_zone).where(
            _tenants.c.id == ctx.tenant_id
        )
        before, zone_before = (await conn.execute(stmt)).one()
        if time_zone is not None and time_zone != zone_before:
            # Due times already set stay as they are; new ones are read in the new zone.
            await conn.execute(
                update(_tenants).where(_tenants.c.id == ctx.tenant_id).values(time_zone=time_zone)
            )
            await record_event(
                conn,
                ctx.tenant_id,
                EventType.TENANT_SETTINGS_CHANGED,
                actor_user_id=ctx.user_id,
                request_id=ctx.request_id,
                channel=ctx.channel,
                details={"time_zone": {"old": zone_before, "new": time_zone}},
            )
        if default_region is not None and default_region != before:
            await conn.execute(
                update(_tenants)
                .where(_tenants.c.id == ctx.tenant_id)
                .values(default_region=default_region)
            )
            # Numbers stored without a country code now mean something else: re-read them all.
            await reindex_phones(conn, ctx.tenant_id, default_region)
            await record_event(
                conn,
                ctx.tenant_id,
                EventType.TENANT_SETTINGS_CHANGED,
                actor_user_id=ctx.user_id,
                request_id=ctx.request_id,
                channel=ctx.channel,
                details={"default_region": {"old": before, "new": default_region}},
            )
    return TenantSettings(
        default_region=default_region or before, time_zone=time_zone or zone_before
    )
