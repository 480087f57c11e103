"""Device sessions and their refresh tokens, shared by first-party sign-in and OAuth apps.

A session (`auth_sessions`, one per sign-in or authorization) is a refresh-token family with an
absolute end. Each refresh marks the presented token used and issues a successor in the same
family; presenting a used token again means two parties hold the family, so the whole session
is revoked (and the event recorded, committed before the refusal). Revoking a session also
refuses its access tokens from the next request on (backend/auth/revocation.py). Only SHA-256
hashes of the tokens are stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth import retention
from backend.auth.models import AuthSession, RefreshToken
from backend.auth.opaque import digest, new_credential, tenant_of
from backend.auth.origin import Origin
from backend.auth.revocation import revoke_sessions
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import Database
from backend.history.events import EventType, record_event
from backend.tenants.models import User

_sessions = table_of(AuthSession)
_refresh = table_of(RefreshToken)
_users = table_of(User)


class RefreshRefused(Exception):
    """The refresh token is unknown, revoked, expired, for another client, or its user left."""


class RefreshReused(RefreshRefused):
    """A spent refresh token came back: its whole session has been revoked."""


class UserInactive(Exception):
    """The user was deactivated (or is gone) by the time their session would start."""


class ScopeNotGranted(Exception):
    """A refresh asked for a scope its session was not granted (the token was not spent)."""


@dataclass(frozen=True)
class NewSession:
    user_id: uuid.UUID
    client_id: uuid.UUID | None
    scope: str | None
    name: str | None
    amr: list[str]
    auth_time: datetime


@dataclass(frozen=True)
class Rotated:
    tenant_id: uuid.UUID
    session_id: uuid.UUID
    user_id: uuid.UUID
    client_id: uuid.UUID | None
    scope: str | None
    amr: list[str] = field(default_factory=list)
    auth_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    refresh_token: str = ""


def _token_row(
    tenant_id: uuid.UUID, user_id: uuid.UUID, family: uuid.UUID, expires: datetime, token: str
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "id": uuid7(),
        "user_id": user_id,
        "family_id": family,
        "token_hash": digest(token),
        "expires_at": expires,
    }


async def start_session(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    new: NewSession,
    *,
    ttl: timedelta,
    origin: Origin,
    with_refresh_token: bool = True,
) -> tuple[uuid.UUID, str | None]:
    """A new device session and (unless told otherwise) its first refresh token. UserInactive
    when the user is not active: the user's row is share-locked, so a deactivation running at
    the same moment either comes first (and this refuses) or waits and then revokes this
    session with the others."""
    locked = await conn.execute(
        select(_users.c.id)
        .where(_users.c.id == new.user_id, _users.c.active.is_(True))
        .with_for_update(read=True)
    )
    if locked.first() is None:
        raise UserInactive
    if retention.due():
        await retention.prune_tenant(conn, tenant_id)
    session_id = uuid7()
    expires = datetime.now(UTC) + ttl
    await conn.execute(
        insert(_sessions).values(
            tenant_id=tenant_id,
            id=session_id,
            user_id=new.user_id,
            client_id=new.client_id,
            name=new.name,
            scope=new.scope,
            amr=new.amr,
            auth_time=new.auth_time,
            expires_at=expires,
            created_ip=origin.ip,
            last_ip=origin.ip,
            user_agent=origin.user_agent,
        )
    )
    if not with_refresh_token:
        return session_id, None
    token = new_credential(tenant_id)
    await conn.execute(
        insert(_refresh).values(_token_row(tenant_id, new.user_id, session_id, expires, token))
    )
    return session_id, token


async def revoke_session(
    conn: AsyncConnection, tenant_id: uuid.UUID, session_id: uuid.UUID, reason: str
) -> bool:
    """Revoke a session, every refresh token of it and (once committed) every access token
    issued for it. False when it was already revoked."""
    revoked = await conn.execute(
        update(_sessions)
        .where(
            _sessions.c.tenant_id == tenant_id,
            _sessions.c.id == session_id,
            _sessions.c.revoked_at.is_(None),
        )
        .values(revoked_at=func.now(), revoked_reason=reason, updated_at=func.now())
    )
    await conn.execute(
        update(_refresh)
        .where(
            _refresh.c.tenant_id == tenant_id,
            _refresh.c.family_id == session_id,
            _refresh.c.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
    )
    if revoked.rowcount:
        await revoke_sessions(conn, [session_id])
    return bool(revoked.rowcount)


async def rotate(
    db: Database,
    token: str,
    *,
    client_id: uuid.UUID | None,
    origin: Origin,
    requested_scope: frozenset[str] | None = None,
) -> Rotated:
    """Spend `token` and return its successor. RefreshRefused / RefreshReused otherwise."""
    tenant_id = tenant_of(token)
    if tenant_id is None:
        raise RefreshRefused
    reused: Rotated | None = None
    async with db.tenant_transaction(tenant_id) as conn:
        stmt = (
            select(
                _refresh.c.id,
                _refresh.c.used_at,
                _refresh.c.revoked_at,
                _refresh.c.expires_at,
                _refresh.c.family_id,
                _sessions.c.user_id,
                _sessions.c.client_id,
                _sessions.c.scope,
                _sessions.c.amr,
                _sessions.c.auth_time,
                _sessions.c.revoked_at.label("session_revoked_at"),
                _sessions.c.expires_at.label("session_expires_at"),
                _users.c.active,
            )
            .join(
                _sessions,
                (_sessions.c.tenant_id == _refresh.c.tenant_id)
                & (_sessions.c.id == _refresh.c.family_id),
            )
            .join(
                _users,
                (_users.c.tenant_id == _sessions.c.tenant_id)
                & (_users.c.id == _sessions.c.user_id),
            )
            .where(_refresh.c.tenant_id == tenant_id, _refresh.c.token_hash == digest(token))
            .with_for_update(of=_refresh)
        )
        row = (await conn.execute(stmt)).first()
        if row is None or row.client_id != client_id:
            raise RefreshRefused  # unknown, or another client's: nothing is spent
        if row.revoked_at is not None or row.session_revoked_at is not None:
            raise RefreshRefused
        found = Rotated(
            tenant_id,
            row.family_id,
            row.user_id,
            row.client_id,
            row.scope,
            list(row.amr),
            row.auth_time,
        )
        if row.used_at is not None:
            # A spent token came back: someone else holds this session. Revoke all of it.
            await revoke_session(conn, tenant_id, row.family_id, "reuse_detected")
            await record_event(
                conn,
                tenant_id,
                EventType.TOKEN_REUSE_DETECTED,
                outcome="denied",
                subject_user_id=row.user_id,
                actor_client_id=client_id,
                details={"session_id": str(row.family_id)},
                **origin.event_fields(),
            )
            reused = found
        else:
            now = datetime.now(UTC)
            if min(row.expires_at, row.session_expires_at) <= now or not row.active:
                raise RefreshRefused
            if requested_scope is not None and not requested_scope <= set(
                (row.scope or "").split()
            ):
                raise ScopeNotGranted
            await conn.execute(
                update(_refresh)
                .where(_refresh.c.tenant_id == tenant_id, _refresh.c.id == row.id)
                .values(used_at=func.now())
            )
            successor = new_credential(tenant_id)
            await conn.execute(
                insert(_refresh).values(
                    _token_row(
                        tenant_id, row.user_id, row.family_id, row.session_expires_at, successor
                    )
                )
            )
            await conn.execute(
                update(_sessions)
                .where(_sessions.c.tenant_id == tenant_id, _sessions.c.id == row.family_id)
                .values(last_used_at=func.now(), last_ip=origin.ip)
            )
            await record_event(
                conn,
                tenant_id,
                EventType.TOKEN_REFRESHED,
                actor_user_id=row.user_id,
                actor_client_id=client_id,
                subject_user_id=row.user_id,
                details={"session_id": str(row.family_id)},
                **origin.event_fields(),
            )
    if reused is not None:  # raised after the revocation committed
        raise RefreshReused
    return Rotated(
        found.tenant_id,
        found.session_id,
        found.user_id,
        found.client_id,
        found.scope,
        found.amr,
        found.auth_time,
        successor,
    )


@dataclass(frozen=True)
class TokenRecord:
    """A refresh token as revocation and introspection see it."""

    tenant_id: uuid.UUID
    session_id: uuid.UUID
    user_id: uuid.UUID
    client_id: uuid.UUID | None
    scope: str | None
    active: bool
    expires_at: datetime
    created_at: datetime


async def find(db: Database, token: str) -> TokenRecord | None:
    tenant_id = tenant_of(token)
    if tenant_id is None:
        return None
    async with db.tenant_transaction(tenant_id) as conn:
        row = (
            await conn.execute(
                select(
                    _refresh.c.family_id,
                    _refresh.c.used_at,
                    _refresh.c.revoked_at,
                    _refresh.c.expires_at,
                    _refresh.c.created_at,
                    _sessions.c.user_id,
                    _sessions.c.client_id,
                    _sessions.c.scope,
                    _sessions.c.revoked_at.label("session_revoked_at"),
                    _users.c.active,
                )
                .join(
                    _sessions,
                    (_sessions.c.tenant_id == _refresh.c.tenant_id)
                    & (_sessions.c.id == _refresh.c.family_id),
                )
                .join(
                    _users,
                    (_users.c.tenant_id == _sessions.c.tenant_id)
                    & (_users.c.id == _sessions.c.user_id),
                )
                .where(_refresh.c.tenant_id == tenant_id, _refresh.c.token_hash == digest(token))
            )
        ).first()
    if row is None:
        return None
    active = (
        row.used_at is None
        and row.revoked_at is None
        and row.session_revoked_at is None
        and row.active
        and row.expires_at > datetime.now(UTC)
    )
    return TokenRecord(
        tenant_id,
        row.family_id,
        row.user_id,
        row.client_id,
        row.scope,
        active,
        row.expires_at,
        row.created_at,
    )
