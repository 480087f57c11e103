"""An export's row as the export services read it: the public view, lookups, who is asking."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth.secretbox import SecretBox
from backend.context import RequestContext
from backend.db.base import table_of
from backend.db.session import Database
from backend.errors import NotFound
from backend.exports.models import Export
from backend.policy.engine import policies

exports_table = table_of(Export)
FILE_KEY_PURPOSE = "export-file-key"
# What an export looks like to its readers (REST and GraphQL). Never the sealed file key, the
# link's hash or its use times: the service answers with these keys only (see public_view).
PUBLIC = (
    "id",
    "entity",
    "format",
    "fields",
    "filter",
    "status",
    "reason",
    "row_count",
    "requested_by",
    "decided_by",
    "decided_at",
    "created_at",
    "expires_at",
    "file_size",
    "downloads",
)


def is_past(moment: datetime | None) -> bool:
    return moment is not None and moment <= datetime.now(UTC)


def public_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in PUBLIC}


def export_key(raw: uuid.UUID | str) -> uuid.UUID:
    try:
        return raw if isinstance(raw, uuid.UUID) else uuid.UUID(raw)
    except ValueError:
        raise NotFound("export not found") from None


class ExportRows:
    """What every export service holds, and the row lookups they share."""

    def __init__(self, db: Database, box: SecretBox, data_dir: Path, mark_key: bytes) -> None:
        self.db = db
        self.box = box
        self.data_dir = data_dir
        self.mark_key = mark_key

    async def _find(
        self, conn: AsyncConnection, key: uuid.UUID, *, lock: bool = False
    ) -> dict[str, Any] | None:
        stmt = select(exports_table).where(exports_table.c.id == key)
        if lock:
            stmt = stmt.with_for_update()
        found = (await conn.execute(stmt)).mappings().first()
        if found is None:
            return None
        row = dict(found)
        row.pop("tenant_id")
        return row

    async def _row(self, conn: AsyncConnection, key: uuid.UUID) -> dict[str, Any]:
        row = await self._find(conn, key)
        if row is None:
            raise NotFound("export not found")
        return row

    async def _role_names(self, conn: AsyncConnection, ctx: RequestContext) -> set[str]:
        policy = await policies.get(conn, ctx.tenant_id)
        return {
            policy.role_names[r] for r in policy.roles_of(ctx.user_id) if r in policy.role_names
        }

    async def _is_admin(self, conn: AsyncConnection, ctx: RequestContext) -> bool:
        return "tenant_admin" in await self._role_names(conn, ctx)

    @staticmethod
    def _who(ctx: RequestContext) -> dict[str, Any]:
        return {
            "actor_user_id": ctx.user_id,
            "actor_client_id": ctx.principal.client_id,
            "request_id": ctx.request_id,
            "channel": ctx.channel,
        }

    @staticmethod
    def _summary(row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "export_id": str(row["id"]),
            "entity": row["entity"],
            "format": row["format"],
            "fields": list(row["fields"]),
            "filter": row["filter"],
            "row_count": row["row_count"],
        }
