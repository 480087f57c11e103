"""Taking a backup: dump (the whole database or one tenant), encrypt as it streams, store the
archive and then its signed manifest."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.backups import manifest as mf
from backend.backups.catalog import BackupCatalog, new_backup_id
from backend.backups.crypto import EncryptingWriter
from backend.backups.dump import Dumped, dump_full, export_tenant
from backend.backups.errors import BackupError
from backend.backups.store import ARCHIVE, MANIFEST
from backend.history.events import EventType

Progress = Callable[[int], None]


class _Progress:
    def __init__(self, sink: Any, report: Progress | None) -> None:
        self.sink = sink
        self.report = report

    def write(self, data: bytes) -> int:
        written: int = self.sink.write(data)
        if self.report is not None:
            self.report(self.sink.plain_bytes)
        return written


class BackupTaking(BackupCatalog):
    """Take a backup (`run`): failures are audited, then raised."""

    def _retain_until(self) -> datetime | None:
        store = self.config.store
        if not store.locked():
            return None
        days = self.config.retention_days or store.lock_days()
        return datetime.now(UTC) + timedelta(days=days) if days else None

    async def run(self, tenant: str | None = None, progress: Progress | None = None) -> mf.Manifest:
        kind = mf.TENANT if tenant else mf.FULL
        backup_id = new_backup_id(kind)
        try:
            return await self._run(backup_id, kind, tenant, progress)
        except BackupError as exc:
            await self._failed(backup_id, kind, tenant, exc.detail)
            raise
        except Exception as exc:
            await self._failed(backup_id, kind, tenant, str(exc))
            raise BackupError(f"backup {backup_id} failed: {exc}") from exc

    async def _failed(self, backup_id: str, kind: str, slug: str | None, why: str) -> None:
        tenant_id = None
        if slug:
            from backend.tenants.lookup import tenant_id_for_slug

            found = await tenant_id_for_slug(self.db, slug)
            if found is None:
                return
            tenant_id = str(found)
        await self.audit(
            EventType.BACKUP_FAILED,
            tenant_id,
            "failure",
            {"backup_id": backup_id, "kind": kind, "error": why[:500]},
        )

    async def _run(
        self, backup_id: str, kind: str, tenant: str | None, progress: Progress | None
    ) -> mf.Manifest:
        config = self.config
        data_key = secrets.token_bytes(32)
        key_id, wrapped = await asyncio.to_thread(config.master.wrap, data_key, backup_id)
        retain_until = await asyncio.to_thread(self._retain_until)
        part = self._work_file()
        try:
            with part.open("wb") as out:
                writer = EncryptingWriter(out, data_key, backup_id)
                sink = _Progress(writer, progress)
                tenant_id: str | None = None
                dumped: Dumped
                if tenant:
                    tenant_id, dumped = await export_tenant(config.owner_url, tenant, sink)
                else:
                    dumped = await dump_full(config.dump_url, config.bin_dir, sink)
                writer.close()
            manifest = mf.Manifest(
                id=backup_id,
                created_at=datetime.now(UTC),
                kind=kind,
                tenant_id=tenant_id,
                tenant_slug=dumped.tenant_slug,
                schema_version=dumped.schema_version,
                tables=dumped.tables,
                plaintext_sha256=writer.plain_sha.hexdigest(),
                ciphertext_sha256=writer.cipher_sha.hexdigest(),
                plaintext_bytes=writer.plain_bytes,
                ciphertext_bytes=writer.cipher_bytes,
                key_id=key_id,
                wrapped_key=base64.b64encode(wrapped).decode(),
                extra={"retain_until": retain_until.isoformat() if retain_until else None},
            )
            signed = mf.sign(manifest, data_key)
            await asyncio.to_thread(
                config.store.put_file, f"{backup_id}/{ARCHIVE}", part, retain_until
            )
            # The manifest last: until it is stored, the backup does not exist for `list`.
            await asyncio.to_thread(
                config.store.put_bytes, f"{backup_id}/{MANIFEST}", signed, retain_until
            )
        finally:
            part.unlink(missing_ok=True)
        await self.audit(
            EventType.BACKUP_CREATED,
            tenant_id,
            "success",
            {"backup_id": backup_id, "kind": kind, "bytes": manifest.ciphertext_bytes},
        )
        return manifest
