"""Sign-ins in progress between two requests: the MFA step after a correct password, and an
authorization waiting for the user's consent.

A flow is named by a single-use handle `<tenant-hex>.<secret>` (only its SHA-256 is stored),
lives a few minutes, allows a few wrong answers, and is finished at most once (the update that
finishes it only matches an unfinished row, so two concurrent requests cannot both succeed).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth import retention
from backend.auth.models import AuthFlow
from backend.auth.opaque import digest, new_credential, tenant_of
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import Database

_flows = table_of(AuthFlow)
FLOW_TTL = timedelta(minutes=5)
MAX_ATTEMPTS = 5

MFA = "mfa"  # first-party sign-in: password done, a code to go
AUTHORIZE_MFA = "authorize_mfa"  # /oauth/authorize: password done, a code to go
CONSENT = "consent"  # /oauth/authorize: signed in, waiting for allow / deny


@dataclass(frozen=True)
class Flow:
    tenant_id: uuid.UUID
    id: uuid.UUID
    kind: str
    user_id: uuid.UUID
    client_id: uuid.UUID | None
    data: dict[str, Any]
    attempts: int


async def start(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    kind: str,
    user_id: uuid.UUID,
    *,
    client_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
    source_ip: str | None = None,
) -> str:
    if retention.due():
        await retention.prune_tenant(conn, tenant_id)
    handle = new_credential(tenant_id)
    await conn.execute(
        insert(_flows).values(
            tenant_id=tenant_id,
            id=uuid7(),
            token_hash=digest(handle),
            kind=kind,
            user_id=user_id,
            client_id=client_id,
            data=data or {},
            expires_at=datetime.now(UTC) + FLOW_TTL,
            source_ip=source_ip,
        )
    )
    return handle


async def open_flow(db: Database, handle: str, kind: str) -> Flow | None:
    """The live flow a handle names (unfinished, unexpired, attempts left), else None."""
    tenant_id = tenant_of(handle)
    if tenant_id is None:
        return None
    async with db.tenant_transaction(tenant_id) as conn:
        row = (
            await conn.execute(
                select(_flows).where(
                    _flows.c.tenant_id == tenant_id,
                    _flows.c.token_hash == digest(handle),
                    _flows.c.kind == kind,
                    _flows.c.used_at.is_(None),
                    _flows.c.expires_at > func.now(),
                    _flows.c.attempts < MAX_ATTEMPTS,
                )
            )
        ).first()
    if row is None:
        return None
    return Flow(
        tenant_id, row.id, row.kind, row.user_id, row.client_id, dict(row.data), row.attempts
    )


async def count_failure(db: Database, flow: Flow) -> None:
    async with db.tenant_transaction(flow.tenant_id) as conn:
        await conn.execute(
            update(_flows)
            .where(_flows.c.tenant_id == flow.tenant_id, _flows.c.id == flow.id)
            .values(attempts=_flows.c.attempts + 1)
        )


async def finish(conn: AsyncConnection, flow: Flow) -> bool:
    """Mark the flow used; False when another request finished it first."""
    result = await conn.execute(
        update(_flows)
        .where(
            _flows.c.tenant_id == flow.tenant_id,
            _flows.c.id == flow.id,
            _flows.c.used_at.is_(None),
            _flows.c.expires_at > func.now(),
        )
        .values(used_at=func.now())
    )
    return bool(result.rowcount)
