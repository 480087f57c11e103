"""Pruning: delete the backups the retention policy no longer keeps (unless the store's
object lock still holds them), and archives whose run never stored a manifest."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from backend.backups.catalog import BACKUP_ID, BackupCatalog
from backend.backups.errors import BackupError
from backend.backups.retention import to_keep
from backend.backups.store import ARCHIVE, MANIFEST


class BackupPruning(BackupCatalog):
    """Delete what the retention policy no longer keeps (`prune`)."""

    async def prune(self, now: datetime | None = None) -> dict[str, list[str]]:
        now = now or datetime.now(UTC)
        manifests = await self.list_backups()
        keep = to_keep(manifests, self.config.policy, now)
        deleted: list[str] = []
        locked: list[str] = []
        listed = {m.id for m in manifests}
        for name in await asyncio.to_thread(self.config.store.names):
            # The archive of a run that failed before its manifest: garbage after a day.
            backup_id, _, leaf = name.partition("/")
            if leaf != ARCHIVE or backup_id in listed or not BACKUP_ID.match(backup_id):
                continue
            if datetime.strptime(backup_id[:16], "%Y%m%dT%H%M%SZ").replace(
                tzinfo=UTC
            ) < now - timedelta(days=1):
                try:
                    await asyncio.to_thread(self.config.store.delete, name)
                    deleted.append(backup_id)
                except BackupError:
                    locked.append(backup_id)
        for manifest in manifests:
            if manifest.id in keep:
                continue
            try:
                # The manifest first: a half-deleted backup never lists as good.
                await asyncio.to_thread(self.config.store.delete, f"{manifest.id}/{MANIFEST}")
                await asyncio.to_thread(self.config.store.delete, f"{manifest.id}/{ARCHIVE}")
                deleted.append(manifest.id)
            except BackupError:
                locked.append(manifest.id)
        return {"kept": sorted(keep), "deleted": deleted, "locked": locked}
