"""Expire export files: past their time, a ready export's file is deleted and its key dropped
(the row stays, as the record of what was exported, with status `expired`)."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import func, update

from backend.db.base import table_of
from backend.db.session import Database
from backend.exports.models import Export
from backend.exports.storage import export_path

_exports = table_of(Export)


async def sweep_tenant(db: Database, data_dir: Path, tenant_id: uuid.UUID) -> int:
    """Expire this tenant's files that are past their time; how many were expired."""
    async with db.tenant_transaction(tenant_id) as conn:
        stmt = (
            update(_exports)
            .where(
                _exports.c.tenant_id == tenant_id,
                _exports.c.status == "ready",
                _exports.c.expires_at <= func.now(),
            )
            .values(status="expired", file_key=None, link_hash=None)
            .returning(_exports.c.id)
        )
        expired = list((await conn.execute(stmt)).scalars())
    for export_id in expired:  # after commit: a row never names a file that is gone
        export_path(data_dir, tenant_id, export_id).unlink(missing_ok=True)
    return len(expired)
