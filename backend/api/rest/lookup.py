"""REST for caller lookup and the tenant settings it reads. Parse -> call a service -> shape."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import msgspec
from litestar import Controller, get, patch
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from backend.context import RequestContext
from backend.lookup.service import lookup_phone
from backend.tenants.settings import get_settings, update_settings

Ctx = NamedDependency[RequestContext]


class LookupController(Controller):
    path = "/api/v1/lookup"
    tags = ["caller lookup"]

    @get(
        "/phone/{number:str}",
        summary="Who is calling: the contact or account with this number, and recent activities",
    )
    async def phone(self, ctx: Ctx, number: FromPath[str]) -> dict[str, Any]:
        return await lookup_phone(ctx, number)


class TenantSettingsBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    default_region: str | None = None
    time_zone: str | None = None


class TenantSettingsController(Controller):
    path = "/api/v1/tenant/settings"
    tags = ["tenant"]

    @get("/", summary="The tenant's settings (tenant admins)")
    async def read(self, ctx: Ctx) -> dict[str, Any]:
        return asdict(await get_settings(ctx))

    @patch("/", summary="Change the tenant's settings (tenant admins)")
    async def change(self, ctx: Ctx, data: JSONBody[TenantSettingsBody]) -> dict[str, Any]:
        changed = await update_settings(
            ctx, default_region=data.default_region, time_zone=data.time_zone
        )
        return asdict(changed)
