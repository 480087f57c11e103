"""The tenants the audit tools walk: the app role cannot list tenants, so an owner-defined
SECURITY DEFINER function (migration 0006) lists their ids and slugs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text

from backend.db.session import Database
from backend.errors import NotFound
from backend.tenants.lookup import tenant_id_for_slug


@dataclass(frozen=True)
class TenantRef:
    id: uuid.UUID
    slug: str


async def audit_tenants(db: Database, slug: str | None = None) -> list[TenantRef]:
    """All tenants, or the one named by `slug` (NotFound when there is none)."""
    if slug is not None:
        tenant_id = await tenant_id_for_slug(db, slug)
        if tenant_id is None:
            raise NotFound("no such tenant", field="tenant")
        return [TenantRef(tenant_id, slug)]
    async with db.plain_transaction() as conn:
        rows = (await conn.execute(text("select id, slug from caravan_audit_tenants()"))).all()
    return [TenantRef(row.id, row.slug) for row in rows]
