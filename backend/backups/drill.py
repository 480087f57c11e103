"""Verifying a backup by a restore drill: restored into a scratch database, checked, dropped."""

from __future__ import annotations

import secrets
from urllib.parse import urlparse

import asyncpg

from backend.backups import manifest as mf
from backend.backups import pg
from backend.backups.errors import BackupError
from backend.backups.restoring import BackupRestoring, RestoreResult
from backend.db.migrate import migrate
from backend.history.events import EventType


class BackupDrill(BackupRestoring):
    """Verify a backup (`verify`): a restore into a scratch database, dropped after."""

    async def verify(self, backup_id: str) -> RestoreResult:
        scratch = f"caravan_verify_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(pg.with_database(self.config.dump_url, "postgres"))
        try:
            owner = urlparse(pg.asyncpg_url(self.config.owner_url)).username or ""
            await admin.execute(f"create database {scratch} owner {pg.quote(owner)}")
            try:
                result = await self._drill(backup_id, scratch)
            finally:
                await admin.execute(f"drop database if exists {scratch} with (force)")
        except BackupError as exc:
            await self.audit(
                EventType.BACKUP_VERIFIED,
                await self._claimed_tenant(backup_id),
                "failure",
                {"backup_id": backup_id, "error": exc.detail[:500]},
            )
            raise
        finally:
            await admin.close()
        ok = result.tables_match and result.chain_ok is not False
        await self.audit(
            EventType.BACKUP_VERIFIED,
            result.tenant_id,
            "success" if ok else "failure",
            result.as_dict(),
        )
        return result

    async def _drill(self, backup_id: str, scratch: str) -> RestoreResult:
        opened = await self.open(backup_id)
        try:
            manifest = opened.manifest
            if manifest.kind == mf.FULL:
                result = await self._restore_full(
                    opened, pg.with_database(self.config.dump_url, scratch)
                )
            else:
                owner = pg.with_database(self.config.owner_url, scratch)
                # The scratch schema at the backup's own version, so the columns match.
                versions = manifest.schema_version
                await migrate(
                    owner.replace("postgresql://", "postgresql+asyncpg://", 1),
                    self.config.app_role,
                    versions[0] if len(versions) == 1 else "heads",
                )
                result = await self._restore_tenant(opened, owner, None)
        finally:
            opened.archive.unlink(missing_ok=True)
        result.target = f"{scratch} (scratch, dropped)"
        return result
