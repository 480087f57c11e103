"""Download links: one per request, single use, short-lived; the file streams decrypted."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from backend.context import RequestContext
from backend.errors import CaravanError, Conflict, NotFound
from backend.exports.links import new_token, parse_token
from backend.exports.rows import FILE_KEY_PURPOSE, ExportRows, export_key, exports_table, is_past
from backend.exports.rules import load_rules
from backend.exports.storage import export_path, read_decrypted
from backend.exports.writers import FORMATS
from backend.history.events import EventType, record_event, record_event_now


@dataclass(frozen=True)
class Download:
    filename: str
    media_type: str
    chunks: Iterator[bytes]


class LinkGone(CaravanError):
    status = 410
    code = "link_gone"
    title = "Gone"
    graphql_code = "GONE"


class ExportDownloads(ExportRows):
    """Issue a download link (`link`) and spend one (`download`)."""

    async def link(self, ctx: RequestContext, export_id: uuid.UUID | str) -> dict[str, Any]:
        key = export_key(export_id)
        token = new_token(ctx.tenant_id, key)
        async with ctx.session.transaction() as conn:
            row = await self._find(conn, key, lock=True)
            if row is None or row["requested_by"] != ctx.user_id:
                raise NotFound("export not found")  # only the requester may download
            status = "expired" if row["status"] == "ready" and is_past(row["expires_at"]) else None
            status = status or row["status"]
            if status != "ready":
                raise Conflict(f"the export is {status}", code=f"export_{status}")
            rules = await load_rules(conn, ctx.tenant_id)
            expires_at = datetime.now(UTC) + timedelta(seconds=rules.link_ttl_seconds)
            await conn.execute(
                update(exports_table)
                .where(exports_table.c.tenant_id == ctx.tenant_id, exports_table.c.id == key)
                .values(link_hash=token.digest, link_expires_at=expires_at, link_used_at=None)
            )
        return {
            "url": f"/api/v1/exports/download/{token.encode()}",
            "expires_at": expires_at,
        }

    async def download(self, encoded: str) -> Download:
        """Spend a link: once, before it expires, for a ready file. Refusals are audited."""
        token = parse_token(encoded)
        row: dict[str, Any] | None = None
        try:
            async with self.db.tenant_transaction(token.tenant_id) as conn:
                row = await self._find(conn, token.export_id, lock=True)
                problem = self._link_problem(row, token.digest)
                if problem is not None:
                    raise problem
                assert row is not None  # _link_problem refuses a missing row
                if not export_path(self.data_dir, token.tenant_id, token.export_id).exists():
                    raise LinkGone("the export file is gone", code="export_expired")
                await conn.execute(
                    update(exports_table)
                    .where(
                        exports_table.c.tenant_id == token.tenant_id,
                        exports_table.c.id == token.export_id,
                    )
                    .values(link_used_at=func.now(), downloads=exports_table.c.downloads + 1)
                )
                sealed = (
                    await conn.execute(
                        select(exports_table.c.file_key).where(
                            exports_table.c.tenant_id == token.tenant_id,
                            exports_table.c.id == token.export_id,
                        )
                    )
                ).scalar_one()
                await record_event(
                    conn,
                    token.tenant_id,
                    EventType.EXPORT_DOWNLOADED,
                    actor_user_id=row["requested_by"],
                    details={**self._summary(row), "outcome": "downloaded", "reason": None},
                )
        except CaravanError as refused:
            if row is not None:
                await record_event_now(
                    self.db,
                    token.tenant_id,
                    EventType.EXPORT_DOWNLOADED,
                    outcome="denied",
                    actor_user_id=row["requested_by"],
                    details={**self._summary(row), "outcome": "refused", "reason": refused.code},
                )
            raise
        key = self.box.open(sealed, purpose=FILE_KEY_PURPOSE)
        path = export_path(self.data_dir, token.tenant_id, token.export_id)
        chunks = read_decrypted(path, key, token.export_id)
        media_type, ext = FORMATS[row["format"]]
        return Download(f"{row['entity']}-export-{token.export_id}.{ext}", media_type, chunks)

    @staticmethod
    def _link_problem(row: Mapping[str, Any] | None, digest: bytes) -> CaravanError | None:
        if row is None or row["link_hash"] is None:
            return NotFound("no such download link", field="token", code="link_invalid")
        if not hmac.compare_digest(bytes(row["link_hash"]), digest):
            return NotFound("no such download link", field="token", code="link_invalid")
        if row["link_used_at"] is not None:
            return LinkGone("this download link was already used", code="link_used")
        if row["link_expires_at"] <= datetime.now(UTC):
            return LinkGone("this download link has expired", code="link_expired")
        if row["status"] != "ready" or is_past(row["expires_at"]):
            status = "expired" if row["status"] == "ready" else row["status"]
            return LinkGone(f"the export is {status}", code=f"export_{status}")
        return None
