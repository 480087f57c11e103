"""Housekeeping of short-lived sign-in rows, done now and then by the requests that add such
rows (no scheduler to run): authorization codes and sign-in flows a day past their expiry,
refresh tokens a day past their session's end or revocation, brute-force counters idle for a
day. A day is kept for forensics and replay detection; the device sessions themselves and the
security events are history and are never pruned here."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import delete, func, or_
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth.models import AuthFlow, AuthorizationCode, RefreshToken, ThrottleCounter
from backend.db.base import table_of

KEEP = timedelta(days=1)
ONE_IN = 50  # about one insert in fifty also prunes

_codes = table_of(AuthorizationCode)
_flows = table_of(AuthFlow)
_refresh = table_of(RefreshToken)
_counters = table_of(ThrottleCounter)


def due() -> bool:
    return secrets.randbelow(ONE_IN) == 0


async def prune_tenant(conn: AsyncConnection, tenant_id: uuid.UUID) -> None:
    cutoff = func.now() - KEEP
    await conn.execute(
        delete(_codes).where(_codes.c.tenant_id == tenant_id, _codes.c.expires_at < cutoff)
    )
    await conn.execute(
        delete(_flows).where(_flows.c.tenant_id == tenant_id, _flows.c.expires_at < cutoff)
    )
    await conn.execute(
        delete(_refresh).where(
            _refresh.c.tenant_id == tenant_id,
            or_(_refresh.c.expires_at < cutoff, _refresh.c.revoked_at < cutoff),
        )
    )


async def prune_throttle(conn: AsyncConnection) -> None:
    await conn.execute(
        delete(_counters).where(
            _counters.c.last_failure_at < func.now() - KEEP,
            or_(_counters.c.blocked_until.is_(None), _counters.c.blocked_until < func.now()),
        )
    )
