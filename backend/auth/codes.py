"""Authorization codes: single use, five minutes, bound to the client, the exact redirect URI
and an S256 PKCE challenge. Only a SHA-256 of a code is stored.

A code is spent by the first exchange that presents it (atomically: the row is locked), before
PKCE and the redirect URI are checked, so a failed exchange burns it too. A code presented
again is a replay (RFC 6749 section 4.1.2): it is refused, the session it was exchanged for is
revoked, and the event is recorded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth.clients import Client
from backend.auth.models import AuthorizationCode
from backend.auth.opaque import digest, tenant_of
from backend.auth.origin import Origin
from backend.auth.refresh import revoke_session
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import Database
from backend.history.events import EventType, record_event

_codes = table_of(AuthorizationCode)
CODE_TTL = timedelta(minutes=5)


@dataclass(frozen=True)
class IssuedCode:
    """What the user approved; the shape Authlib's grant and PKCE extension read."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    client_id: uuid.UUID
    user_id: uuid.UUID
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    amr: list[str]
    auth_time: datetime

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


async def save(
    db: Database,
    *,
    code: str,
    client: Client,
    user_id: uuid.UUID,
    redirect_uri: str,
    scope: str,
    nonce: str | None,
    code_challenge: str,
    code_challenge_method: str,
    amr: list[str],
    auth_time: datetime,
) -> None:
    async with db.tenant_transaction(client.tenant_id) as conn:
        await conn.execute(
            insert(_codes).values(
                tenant_id=client.tenant_id,
                id=uuid7(),
                code_hash=digest(code),
                client_id=client.id,
                user_id=user_id,
                redirect_uri=redirect_uri,
                scope=scope,
                nonce=nonce,
                code_challenge=code_challenge,
                code_challenge_method=code_challenge_method,
                amr=amr,
                auth_time=auth_time,
                expires_at=datetime.now(UTC) + CODE_TTL,
            )
        )


async def spend(db: Database, code: str, client: Client, origin: Origin) -> IssuedCode | None:
    """The code, spent now; None when unknown, another client's, expired or replayed."""
    if tenant_of(code) != client.tenant_id:
        return None
    async with db.tenant_transaction(client.tenant_id) as conn:
        row = (
            await conn.execute(
                select(_codes)
                .where(_codes.c.tenant_id == client.tenant_id, _codes.c.code_hash == digest(code))
                .with_for_update()
            )
        ).first()
        if row is None or row.client_id != client.id:
            return None  # another client's code is not spent by this attempt
        if row.used_at is not None:
            await _replayed(conn, row, origin)
            return None
        await conn.execute(
            update(_codes)
            .where(_codes.c.tenant_id == client.tenant_id, _codes.c.id == row.id)
            .values(used_at=func.now())
        )
        if row.expires_at <= datetime.now(UTC):
            return None
        return IssuedCode(
            tenant_id=row.tenant_id,
            id=row.id,
            client_id=row.client_id,
            user_id=row.user_id,
            redirect_uri=row.redirect_uri,
            scope=row.scope,
            nonce=row.nonce,
            code_challenge=row.code_challenge,
            code_challenge_method=row.code_challenge_method,
            amr=list(row.amr),
            auth_time=row.auth_time,
        )


async def link_session(conn: AsyncConnection, code: IssuedCode, session_id: uuid.UUID) -> None:
    """Remember what the code was exchanged for, so a replay can revoke it."""
    await conn.execute(
        update(_codes)
        .where(_codes.c.tenant_id == code.tenant_id, _codes.c.id == code.id)
        .values(session_id=session_id)
    )


async def _replayed(conn: AsyncConnection, row: Any, origin: Origin) -> None:
    tenant_id: uuid.UUID = row.tenant_id
    session_id: uuid.UUID | None = row.session_id
    revoked = False
    if session_id is not None:
        revoked = await revoke_session(conn, tenant_id, session_id, "code_replayed")
    await record_event(
        conn,
        tenant_id,
        EventType.CODE_REPLAYED,
        outcome="denied",
        actor_client_id=row.client_id,
        subject_user_id=row.user_id,
        details={
            "session_id": str(session_id) if session_id else None,
            "session_revoked": revoked,
        },
        **origin.event_fields(),
    )
