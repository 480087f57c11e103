"""Sync devices: what each phone of a user last pulled and pushed, and when. Seen by the user
(`GET /api/v1/devices`) and by tenant admins (`GET /api/v1/users/{id}/devices`); a user forgets
one of their devices (its stored push outcomes go with it).

Not to be confused with sign-in sessions (backend/auth/devices.py, `/api/v1/me/sessions`): a
sync device names the sign-in session it last synced under (`session_id`), so the two lists
can be read side by side and a lost phone's session revoked there.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth.admins import require_first_party
from backend.context import RequestContext
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.errors import BadRequest, NotFound
from backend.policy.admin import require_admin
from backend.sync.models import SyncDevice
from backend.tenants.models import User

_devices = table_of(SyncDevice)
_users = table_of(User)
_DEVICE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class DeviceState:
    id: uuid.UUID
    device_id: str
    user_id: uuid.UUID
    name: str | None
    platform: str | None
    session_id: uuid.UUID | None
    cursor: str | None
    last_pull_at: datetime | None
    last_push_at: datetime | None
    last_seen_at: datetime
    created_at: datetime


def check_device_id(value: str | None, field: str = "device_id") -> str:
    if value is None or not _DEVICE_ID.match(value):
        raise BadRequest(
            f"{field}: 1-128 letters, digits and . _ : -", field=field, code="invalid_device_id"
        )
    return value


def _short(value: str | None, size: int) -> str | None:
    return None if value is None else value.strip()[:size] or None


async def touch_device(
    ctx: RequestContext,
    conn: AsyncConnection,
    device_id: str,
    *,
    cursor: str | None = None,
    pushed: bool = False,
    name: str | None = None,
    platform: str | None = None,
) -> uuid.UUID:
    """Record that the device synced now (a pull with its new cursor, or a push); its id."""
    now = func.now()
    values = {
        "tenant_id": ctx.tenant_id,
        "id": uuid7(),
        "user_id": ctx.user_id,
        "device_id": device_id,
        "name": _short(name, 200),
        "platform": _short(platform, 40),
        "session_id": ctx.principal.session_id,
        "last_cursor": cursor,
        "last_pull_at": None if pushed else now,
        "last_push_at": now if pushed else None,
    }
    stmt = insert(_devices).values(values)
    excluded = stmt.excluded
    updates: dict[str, Any] = {
        "last_seen_at": now,
        "session_id": func.coalesce(excluded.session_id, _devices.c.session_id),
        "name": func.coalesce(excluded.name, _devices.c.name),
        "platform": func.coalesce(excluded.platform, _devices.c.platform),
    }
    if pushed:
        updates["last_push_at"] = now
    else:
        updates["last_pull_at"] = now
        updates["last_cursor"] = excluded.last_cursor
    upsert = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "user_id", "device_id"], set_=updates
    ).returning(_devices.c.id)
    return uuid.UUID(str((await conn.execute(upsert)).scalar_one()))


async def _states(conn: AsyncConnection, user_id: uuid.UUID) -> list[DeviceState]:
    rows = (
        await conn.execute(
            select(_devices)
            .where(_devices.c.user_id == user_id)
            .order_by(_devices.c.last_seen_at.desc(), _devices.c.id)
        )
    ).mappings()
    return [
        DeviceState(
            id=r["id"],
            device_id=r["device_id"],
            user_id=r["user_id"],
            name=r["name"],
            platform=r["platform"],
            session_id=r["session_id"],
            cursor=r["last_cursor"],
            last_pull_at=r["last_pull_at"],
            last_push_at=r["last_push_at"],
            last_seen_at=r["last_seen_at"],
            created_at=r["created_at"],
        )
        for r in rows
    ]


async def my_sync_devices(ctx: RequestContext) -> list[DeviceState]:
    async with ctx.session.transaction() as conn:
        return await _states(conn, ctx.user_id)


async def user_sync_devices(ctx: RequestContext, user_id: uuid.UUID) -> list[DeviceState]:
    await require_admin(ctx)
    async with ctx.session.transaction() as conn:
        found = (await conn.execute(select(_users.c.id).where(_users.c.id == user_id))).first()
        if found is None:
            raise NotFound("user not found")
        return await _states(conn, user_id)


async def forget_device(ctx: RequestContext, device: uuid.UUID) -> None:
    """Another user's device, or none: the same 404."""
    require_first_party(ctx)
    async with ctx.session.transaction() as conn:
        gone = (
            await conn.execute(
                delete(_devices)
                .where(_devices.c.id == device, _devices.c.user_id == ctx.user_id)
                .returning(_devices.c.id)
            )
        ).first()
    if gone is None:
        raise NotFound("device not found")
