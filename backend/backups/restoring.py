"""Restoring a backup: the whole database (into a database you name) or one tenant (in place,
or as a new tenant), then checking the result against the manifest and the history chains."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg

from backend.backups import manifest as mf
from backend.backups import pg
from backend.backups.catalog import BackupCatalog, Opened
from backend.backups.errors import BackupError, BackupNotFound, BackupRefused
from backend.backups.restore import (
    KEPT_TABLES,
    SESSION_TABLES,
    end_sessions,
    pg_restore,
    restore_tenant,
)
from backend.db.session import Database
from backend.history.audit_tenants import TenantRef
from backend.history.events import EventType


@dataclass
class RestoreResult:
    backup_id: str
    kind: str
    tenant_id: str | None
    target: str
    tables_match: bool
    chain_ok: bool | None
    mismatches: list[str]
    chain_failures: list[str] = field(default_factory=list)  # tenants whose chain fails

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class BackupRestoring(BackupCatalog):
    """Restore a backup (`restore`), then compare it with its manifest and check its chains."""

    async def restore(
        self,
        backup_id: str,
        *,
        tenant: str | None = None,
        as_new_tenant: str | None = None,
        target_database: str | None = None,
    ) -> RestoreResult:
        try:
            result = await self._restore(backup_id, tenant, as_new_tenant, target_database)
        except BackupError as exc:
            await self.audit(
                EventType.BACKUP_RESTORED,
                await self._claimed_tenant(backup_id),
                "failure",
                {"backup_id": backup_id, "error": exc.detail[:500]},
            )
            raise
        await self.audit(
            EventType.BACKUP_RESTORED,
            result.tenant_id,
            "success" if result.tables_match and result.chain_ok is not False else "failure",
            result.as_dict(),
        )
        return result

    async def _restore(
        self,
        backup_id: str,
        tenant: str | None,
        as_new_tenant: str | None,
        target_database: str | None,
    ) -> RestoreResult:
        opened = await self.open(backup_id)
        manifest = opened.manifest
        try:
            if manifest.kind == mf.FULL:
                if tenant or as_new_tenant:
                    raise BackupError(
                        "a full backup restores the whole database; take a tenant backup "
                        "to restore one tenant",
                        field="tenant",
                    )
                return await self._restore_full(opened, target_database)
            if tenant and tenant != manifest.tenant_slug:
                raise BackupRefused(
                    f"backup {backup_id} is of tenant {manifest.tenant_slug}, not {tenant}",
                    field="tenant",
                )
            owner_url = self.config.owner_url
            if target_database:
                owner_url = pg.with_database(owner_url, pg.database_name(target_database))
            return await self._restore_tenant(opened, owner_url, as_new_tenant)
        finally:
            opened.archive.unlink(missing_ok=True)

    async def _restore_full(self, opened: Opened, target_database: str | None) -> RestoreResult:
        target = target_database or self.config.dump_url
        await pg_restore(target, self.config.bin_dir, opened.blocks())
        mismatches = await self._compare(target, opened.manifest, None)
        await end_sessions(target)
        owner = pg.with_database(self.config.owner_url, pg.database_name(target))
        failures = await self._chain_failures(owner, None)
        return RestoreResult(
            opened.manifest.id,
            mf.FULL,
            None,
            pg.database_name(target),
            not mismatches,
            not failures,
            mismatches,
            failures,
        )

    async def _restore_tenant(
        self, opened: Opened, owner_url: str, as_new_tenant: str | None
    ) -> RestoreResult:
        manifest = opened.manifest
        assert manifest.tenant_id is not None
        written = await restore_tenant(
            owner_url, opened.blocks(), tenant_id=manifest.tenant_id, new_slug=as_new_tenant
        )
        mismatches: list[str] = []
        if as_new_tenant is None:
            mismatches = await self._compare(owner_url, manifest, written)
        failures = await self._chain_failures(owner_url, written)
        return RestoreResult(
            manifest.id,
            mf.TENANT,
            written,
            pg.database_name(owner_url),
            not mismatches,
            not failures,
            mismatches,
            failures,
        )

    async def _compare(self, url: str, manifest: mf.Manifest, tenant_id: str | None) -> list[str]:
        conn = await asyncpg.connect(pg.asyncpg_url(url))
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                if tenant_id:
                    await conn.execute("select set_config('app.tenant_id', $1, true)", tenant_id)
                now = await pg.digests(conn, list(manifest.tables), tenant_id)
        finally:
            await conn.close()
        problems = []
        for table, want in manifest.tables.items():
            if tenant_id and table in SESSION_TABLES:
                continue  # never restored (see restore.py)
            if tenant_id and table in KEPT_TABLES:
                if now[table].rows < want.rows:  # the newer events are kept besides
                    problems.append(f"{table}: backup {want.rows} rows, now {now[table].rows}")
            elif now[table] != want:
                problems.append(f"{table}: backup {want.rows} rows, now {now[table].rows}")
        return problems

    async def _chain_failures(self, owner_url: str, tenant_id: str | None) -> list[str]:
        """The history hash chain of each restored tenant (backend/history/verify.py)."""
        from backend.history.verify import verify_tenant

        db = Database(owner_url.replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=1)
        try:
            async with db.plain_transaction() as conn:
                from sqlalchemy import text

                rows = (await conn.execute(text("select id, slug from tenants"))).all()
            refs = [TenantRef(r.id, r.slug) for r in rows if tenant_id in (None, str(r.id))]
            failures = []
            for ref in refs:
                report = await verify_tenant(db, ref, {}, _NoCheckpoints(), timedelta(days=36500))
                if not report.ok:
                    failures.append(ref.slug)
            return failures
        finally:
            await db.dispose()


class _NoCheckpoints:
    """Restored chains are checked link by link; the live checkpoints may be newer."""

    async def put(self, tenant_id: uuid.UUID, name: str, data: bytes) -> None:
        return None

    async def names(self, tenant_id: uuid.UUID) -> list[str]:
        return []

    async def get(self, tenant_id: uuid.UUID, name: str) -> bytes:
        raise BackupNotFound(name)
