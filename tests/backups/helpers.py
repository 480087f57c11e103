"""Digests of what a tenant holds, read independently of the backup code's own comparison."""

from __future__ import annotations

import asyncpg

from backend.backups import pg
from backend.backups.manifest import TableCount

TENANT_TABLES_CHECKED = ("contacts", "accounts", "record_history", "security_events", "audit_seals")


async def tenant_digests(url: str, tenant_id: str) -> dict[str, TableCount]:
    conn = await asyncpg.connect(pg.asyncpg_url(url))
    try:
        return await pg.digests(conn, list(TENANT_TABLES_CHECKED), tenant_id)
    finally:
        await conn.close()


async def tenant_record_digests(url: str, tenant_id: str) -> dict[str, TableCount]:
    """Records and their change history (not security events, which backups themselves add)."""
    conn = await asyncpg.connect(pg.asyncpg_url(url))
    try:
        return await pg.digests(conn, ["contacts", "accounts", "record_history"], tenant_id)
    finally:
        await conn.close()
