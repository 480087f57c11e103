"""Scheduled backups inside `caravan serve` (on by default with the embedded database) or in
`caravan worker`: a full backup every CARAVAN_BACKUP_INTERVAL_SECONDS, then pruning.

Several processes may run it: a PostgreSQL advisory lock lets one back up at a time. A failed
scheduled backup is logged at ERROR with its reason and written to the audit log
(backup.failed) by BackupService.run; the loop keeps going and tries again next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from sqlalchemy import text

from backend.backups.errors import BackupError
from backend.backups.manifest import FULL, Manifest
from backend.backups.service import BackupService
from backend.history.audit_tenants import audit_tenants

log = logging.getLogger("caravan.backups")
LOCK_KEY = 0x43415241_0007  # "CARA" + issue 7: one backup at a time across processes


class BackupScheduler:
    def __init__(self, service: BackupService, interval: float, *, tenants: bool = False) -> None:
        self.service = service
        self.interval = interval
        self.tenants = tenants  # also one backup per tenant, each run
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.create_task(self._run(), name="caravan-backups")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def tick(self) -> Manifest | None:
        """One scheduled backup and prune; None when another process holds the lock."""
        async with self.service.db.plain_transaction() as conn:
            locked = await conn.scalar(
                text("select pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY}
            )
            if not locked:
                log.info("another process is taking the scheduled backup")
                return None
            manifest = await self.service.run()
            log.info("backup %s stored (%d bytes)", manifest.id, manifest.ciphertext_bytes)
            if self.tenants:
                for tenant in await audit_tenants(self.service.db):
                    made = await self.service.run(tenant.slug)
                    log.info("backup %s of tenant %s stored", made.id, tenant.slug)
            pruned = await self.service.prune()
            if pruned["deleted"]:
                log.info("pruned backups %s", ", ".join(pruned["deleted"]))
            return manifest

    async def _first_delay(self) -> float:
        with contextlib.suppress(BackupError):
            fulls = [m for m in await self.service.list_backups() if m.kind == FULL]
            if fulls:
                age = (datetime.now(UTC) - fulls[-1].created_at).total_seconds()
                return max(0.0, self.interval - age)
        return 0.0

    async def _run(self) -> None:
        await asyncio.sleep(await self._first_delay())
        while True:
            try:
                await self.tick()
            except BackupError as exc:
                log.error("SCHEDULED BACKUP FAILED: %s", exc.detail)
            except Exception:  # keep the schedule after an unexpected failure
                log.exception("SCHEDULED BACKUP FAILED")
            await asyncio.sleep(self.interval)
