"""Writing an export's file, as its requester, once the export is decided."""

from __future__ import annotations

import errno
import uuid
from datetime import timedelta

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.errors import InsufficientStorage
from backend.exports.budget import charge_bulk_read
from backend.exports.decide import choose_fields
from backend.exports.generate import export_statement, parse_filter, selection, write_file
from backend.exports.rows import FILE_KEY_PURPOSE, ExportRows, exports_table
from backend.exports.rules import RuleSet
from backend.exports.storage import EncryptedWriter, export_path
from backend.exports.watermark import Mark, token_for
from backend.records.service import RecordService

# No room on the export volume: full, over quota, or over the process's file size limit.
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class ExportFiles(ExportRows):
    """Writes the file of a decided export (at request time, or when an admin approves)."""

    async def _generate(
        self,
        ctx: RequestContext,
        conn: AsyncConnection,
        service: RecordService,
        export_id: uuid.UUID,
        rules: RuleSet,
    ) -> None:
        """Write the file as the requester: their scope, their fields (checked again), their
        read budget charged."""
        row = await self._row(conn, export_id)
        access = await service.access(ctx, conn, "export")
        fields = choose_fields(access, rules, row["fields"])
        where = selection(service, ctx, access, parse_filter(service, row["filter"]))
        await charge_bulk_read(ctx, conn, service.spec.name, row["row_count"], fields, "export")
        mark = token_for(self.mark_key, Mark(ctx.tenant_id, export_id, row["requested_by"]))
        path = export_path(self.data_dir, ctx.tenant_id, export_id)
        try:
            sink = EncryptedWriter(path, export_id)
            written = await write_file(
                conn,
                export_statement(service, fields, where, row["row_count"]),
                fmt=row["format"],
                fields=fields,
                expected_rows=row["row_count"],
                canary=mark,
                properties={
                    "mark": mark,
                    "export_id": str(export_id),
                    "title": f"{service.spec.plural}",
                },
                sink=sink,
            )
        except OSError as failed:
            if failed.errno not in _DISK_FULL:
                raise
            # The writer removed its file and this transaction rolls back: no export row, no
            # read budget charged.
            path.unlink(missing_ok=True)
            raise InsufficientStorage(
                "the server has no room to write the export file; try again later"
            ) from failed
        try:
            await conn.execute(
                update(exports_table)
                .where(exports_table.c.tenant_id == ctx.tenant_id, exports_table.c.id == export_id)
                .values(
                    status="ready",
                    row_count=written.rows,
                    file_key=self.box.seal(written.key, purpose=FILE_KEY_PURPOSE),
                    file_size=written.size,
                    expires_at=func.now() + timedelta(seconds=rules.file_ttl_seconds),
                )
            )
        except BaseException:
            sink.path.unlink(missing_ok=True)
            raise
