"""Resolving a tenant slug before any tenant is set (sign-in, admin commands)."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from backend.db.session import Database

MAX_SLUG_LENGTH = 63


async def tenant_id_for_slug(db: Database, slug: str) -> uuid.UUID | None:
    """Through an owner-defined SECURITY DEFINER function: the app role cannot list tenants."""
    if not slug or len(slug) > MAX_SLUG_LENGTH or "\x00" in slug:
        return None
    async with db.plain_transaction() as conn:
        result = await conn.execute(text("select tenant_id_for_slug(:slug)"), {"slug": slug})
        return result.scalar_one_or_none()
