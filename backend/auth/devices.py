"""Devices: a user's device sessions (one per sign-in or app authorization), listed and revoked
by the user; all of a user's sessions revoked, and the user deactivated, by a tenant admin.

Revoking a session kills its refresh tokens and the access tokens issued for it at once (see
backend/auth/revocation.py). An admin revoking all of a user's sessions, or deactivating the
user, also deletes the user's calendar feed (its URL answers 404 from then on, and stays dead
after a reactivation). Deactivating the tenant's last active admin is refused (409
`last_admin`), under the same per-tenant lock as demoting one (backend/policy/last_admin.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth.admins import require_first_party
from backend.auth.models import AuthSession, OAuthClient
from backend.auth.opaque import public_client_id
from backend.auth.origin import Origin
from backend.auth.refresh import revoke_session
from backend.calendar.feeds import drop_feed
from backend.context import RequestContext
from backend.db.base import table_of
from backend.errors import Conflict, NotFound
from backend.history.events import EventType, record_event
from backend.policy.admin import require_admin
from backend.policy.last_admin import lock_admins
from backend.tenants.models import User

_sessions = table_of(AuthSession)
_clients = table_of(OAuthClient)
_users = table_of(User)


@dataclass(frozen=True)
class Device:
    id: uuid.UUID
    name: str | None
    client_id: str | None
    client_name: str | None
    created_at: datetime
    last_used_at: datetime
    created_ip: str | None
    last_ip: str | None
    user_agent: str | None
    expires_at: datetime
    current: bool


async def _active_sessions(
    conn: AsyncConnection, ctx: RequestContext, user_id: uuid.UUID
) -> list[Device]:
    rows = (
        await conn.execute(
            select(_sessions, _clients.c.name.label("client_name"))
            .outerjoin(
                _clients,
                (_clients.c.tenant_id == _sessions.c.tenant_id)
                & (_clients.c.id == _sessions.c.client_id),
            )
            .where(
                _sessions.c.user_id == user_id,
                _sessions.c.revoked_at.is_(None),
                _sessions.c.expires_at > func.now(),
            )
            .order_by(_sessions.c.last_used_at.desc())
        )
    ).all()
    return [
        Device(
            id=r.id,
            name=r.name,
            client_id=public_client_id(r.tenant_id, r.client_id) if r.client_id else None,
            client_name=r.client_name,
            created_at=r.created_at,
            last_used_at=r.last_used_at,
            created_ip=r.created_ip,
            last_ip=r.last_ip,
            user_agent=r.user_agent,
            expires_at=r.expires_at,
            current=r.id == ctx.principal.session_id,
        )
        for r in rows
    ]


async def my_devices(ctx: RequestContext) -> list[Device]:
    require_first_party(ctx)
    async with ctx.session.transaction() as conn:
        return await _active_sessions(conn, ctx, ctx.user_id)


async def revoke_my_device(ctx: RequestContext, session_id: uuid.UUID, origin: Origin) -> None:
    """Not found when the session is not the caller's (or already revoked): the same 404."""
    require_first_party(ctx)
    async with ctx.session.transaction() as conn:
        owner = (
            await conn.execute(
                select(_sessions.c.user_id).where(
                    _sessions.c.id == session_id, _sessions.c.revoked_at.is_(None)
                )
            )
        ).scalar_one_or_none()
        if owner != ctx.user_id:
            raise NotFound("device session not found")
        await revoke_session(conn, ctx.tenant_id, session_id, "user_revoked")
        await _revoked_event(conn, ctx, ctx.user_id, [session_id], "user_revoked", origin)


async def user_devices(ctx: RequestContext, user_id: uuid.UUID) -> list[Device]:
    await require_admin(ctx)
    async with ctx.session.transaction() as conn:
        await _require_user(conn, user_id)
        return await _active_sessions(conn, ctx, user_id)


async def revoke_user_devices(ctx: RequestContext, user_id: uuid.UUID, origin: Origin) -> int:
    """A tenant admin revokes every session of a user; how many were live."""
    await require_admin(ctx)
    async with ctx.session.transaction() as conn:
        await _require_user(conn, user_id)
        return await _revoke_all(conn, ctx, user_id, "admin_revoked", origin)


async def set_user_active(
    ctx: RequestContext, user_id: uuid.UUID, active: bool, origin: Origin
) -> int:
    """Deactivate (cutting every session) or reactivate a user; sessions revoked."""
    await require_admin(ctx)
    if user_id == ctx.user_id and not active:
        raise Conflict("you cannot deactivate yourself", field="user_id", code="self_deactivation")
    async with ctx.session.transaction() as conn:
        admins = await lock_admins(conn, ctx)
        await _require_user(conn, user_id)
        if not active:
            admins.refuse_losing(user_id, field="user_id")
        await conn.execute(
            update(_users)
            .where(_users.c.id == user_id)
            .values(active=active, version=_users.c.version + 1, updated_at=func.now())
        )
        revoked = 0 if active else await _revoke_all(conn, ctx, user_id, "user_deactivated", origin)
        await record_event(
            conn,
            ctx.tenant_id,
            EventType.USER_ACTIVATED if active else EventType.USER_DEACTIVATED,
            actor_user_id=ctx.user_id,
            actor_client_id=ctx.principal.client_id,
            subject_user_id=user_id,
            details={"sessions_revoked": revoked},
            request_id=ctx.request_id,
            channel=ctx.channel,
            source_ip=origin.ip,
        )
        return revoked


async def _revoke_all(
    conn: AsyncConnection, ctx: RequestContext, user_id: uuid.UUID, reason: str, origin: Origin
) -> int:
    ids = (
        (
            await conn.execute(
                select(_sessions.c.id).where(
                    _sessions.c.user_id == user_id, _sessions.c.revoked_at.is_(None)
                )
            )
        )
        .scalars()
        .all()
    )
    for session_id in ids:
        await revoke_session(conn, ctx.tenant_id, session_id, reason)
    if ids:
        await _revoked_event(conn, ctx, user_id, list(ids), reason, origin)
    # The feed URL is a credential too: an admin cutting the user off cuts it as well.
    await drop_feed(conn, ctx, user_id, reason)
    return len(ids)


async def _require_user(conn: AsyncConnection, user_id: uuid.UUID) -> None:
    found = (await conn.execute(select(_users.c.id).where(_users.c.id == user_id))).first()
    if found is None:
        raise NotFound("user not found")


async def _revoked_event(
    conn: AsyncConnection,
    ctx: RequestContext,
    user_id: uuid.UUID,
    session_ids: list[uuid.UUID],
    reason: str,
    origin: Origin,
) -> None:
    await record_event(
        conn,
        ctx.tenant_id,
        EventType.SESSION_REVOKED,
        actor_user_id=ctx.user_id,
        actor_client_id=ctx.principal.client_id,
        subject_user_id=user_id,
        details={"sessions": [str(s) for s in session_ids], "reason": reason},
        request_id=ctx.request_id,
        channel=ctx.channel,
        source_ip=origin.ip,
    )
