"""BackupService: take, list, open (verify), drill, restore and prune backups."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import secrets
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg

from backend.backups import manifest as mf
from backend.backups import pg
from backend.backups.crypto import DecryptingReader, EncryptingWriter, decrypt_all
from backend.backups.dump import Dumped, dump_full, export_tenant
from backend.backups.errors import BackupError, BackupNotFound, BackupRefused
from backend.backups.masterkey import MasterKey
from backend.backups.restore import (
    KEPT_TABLES,
    SESSION_TABLES,
    end_sessions,
    pg_restore,
    restore_tenant,
)
from backend.backups.retention import Policy, to_keep
from backend.backups.store import ARCHIVE, MANIFEST, Store
from backend.db.migrate import migrate
from backend.db.session import Database
from backend.history.audit_tenants import TenantRef
from backend.history.events import EventType, record_event_now

_ID = re.compile(r"^\d{8}T\d{6}Z-(full|tenant)-[0-9a-f]{8}$")
Progress = Callable[[int], None]


@dataclass(frozen=True)
class BackupConfig:
    store: Store
    master: MasterKey
    dump_url: str  # reads every tenant, row security off (pg_dump / pg_restore / scratch DBs)
    owner_url: str  # the schema owner: tenant export and restore, with the tenant set
    app_role: str
    work_dir: Path  # ciphertext only: downloads and uploads in progress
    bin_dir: Path | None = None
    retention_days: int | None = None
    policy: Policy = field(default_factory=Policy)


@dataclass
class Opened:
    manifest: mf.Manifest
    data_key: bytes
    archive: Path

    def blocks(self) -> Iterator[bytes]:
        with self.archive.open("rb") as source:
            yield from DecryptingReader(source, self.data_key, self.manifest.id)


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


class _Progress:
    def __init__(self, sink: Any, report: Progress | None) -> None:
        self.sink = sink
        self.report = report

    def write(self, data: bytes) -> int:
        written: int = self.sink.write(data)
        if self.report is not None:
            self.report(self.sink.plain_bytes)
        return written


def new_backup_id(kind: str) -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{kind}-{secrets.token_hex(4)}"


def check_id(backup_id: str) -> str:
    if not _ID.match(backup_id):
        raise BackupNotFound(f"{backup_id!r} is not a backup id", field="id")
    return backup_id


class BackupService:
    def __init__(self, config: BackupConfig, db: Database) -> None:
        self.config = config
        self.db = db  # the app role: audit events

    # -- audit ---------------------------------------------------------------------------
    async def _tenants(self) -> list[TenantRef]:
        from backend.history.audit_tenants import audit_tenants

        return await audit_tenants(self.db)

    async def audit(
        self, event: EventType, tenant_id: str | None, outcome: str, details: dict[str, Any]
    ) -> None:
        """Tenant backups go to their tenant's log; full ones to every tenant's log (there is
        no platform-wide log: every security event belongs to a tenant)."""
        targets = [uuid.UUID(tenant_id)] if tenant_id else [t.id for t in await self._tenants()]
        for target in targets:
            with contextlib.suppress(Exception):  # a missing tenant must not hide the outcome
                await record_event_now(
                    self.db, target, event, outcome=outcome, channel="backup", details=details
                )

    async def _claimed_tenant(self, backup_id: str) -> str | None:
        """Where a refused restore or verify is logged: the tenant its (unverified) manifest
        names when that tenant exists, else every tenant (a full backup, or no manifest)."""
        from backend.tenants.lookup import tenant_id_for_slug

        with contextlib.suppress(BackupError, ValueError):
            raw = await asyncio.to_thread(
                self.config.store.get_bytes, f"{check_id(backup_id)}/{MANIFEST}"
            )
            manifest, _, _ = mf.parse(raw)
            if manifest.kind == mf.TENANT and manifest.tenant_slug:
                found = await tenant_id_for_slug(self.db, manifest.tenant_slug)
                if found is not None and str(found) == manifest.tenant_id:
                    return manifest.tenant_id
        return None

    # -- backup --------------------------------------------------------------------------
    def _work_file(self) -> Path:
        for folder in (self.config.work_dir.parent, self.config.work_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(dir=self.config.work_dir, suffix=".part")
        os.close(fd)
        return Path(name)

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

    # -- list / open ---------------------------------------------------------------------
    async def list_backups(self) -> list[mf.Manifest]:
        names = await asyncio.to_thread(self.config.store.names)
        found = []
        for name in names:
            backup_id, _, leaf = name.partition("/")
            if leaf != MANIFEST or not _ID.match(backup_id):
                continue
            raw = await asyncio.to_thread(self.config.store.get_bytes, name)
            with contextlib.suppress(BackupRefused):
                manifest, _, _ = mf.parse(raw)
                if manifest.id == backup_id:
                    found.append(manifest)
        return sorted(found, key=lambda m: m.created_at)

    async def open(self, backup_id: str) -> Opened:
        """Download and check everything: signature, key, checksums, every chunk's tag.
        Raises BackupRefused on any failure; the caller must unlink `archive`."""
        check_id(backup_id)
        store = self.config.store
        raw = await asyncio.to_thread(store.get_bytes, f"{backup_id}/{MANIFEST}")
        manifest, mac, body = mf.parse(raw)
        if manifest.id != backup_id:
            raise BackupRefused(f"the manifest stored as {backup_id} describes {manifest.id}")
        data_key = await asyncio.to_thread(
            self.config.master.unwrap, manifest.key_id, manifest.wrapped, manifest.id
        )
        mf.check_signature(mac, body, data_key)
        part = self._work_file()
        try:
            await asyncio.to_thread(store.get_file, f"{backup_id}/{ARCHIVE}", part)
            reader = await asyncio.to_thread(self._decrypt_all, part, data_key, manifest.id)
            if reader.cipher_sha.hexdigest() != manifest.ciphertext_sha256:
                raise BackupRefused("the archive's SHA-256 does not match its manifest")
            if (
                reader.plain_sha.hexdigest() != manifest.plaintext_sha256
                or reader.plain_bytes != manifest.plaintext_bytes
            ):
                raise BackupRefused("the decrypted data does not match its manifest's checksum")
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return Opened(manifest, data_key, part)

    @staticmethod
    def _decrypt_all(path: Path, key: bytes, backup_id: str) -> DecryptingReader:
        with path.open("rb") as source:
            return decrypt_all(source, key, backup_id)

    # -- restore -------------------------------------------------------------------------
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

    # -- verify (a restore drill) --------------------------------------------------------
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

    # -- prune ---------------------------------------------------------------------------
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
            if leaf != ARCHIVE or backup_id in listed or not _ID.match(backup_id):
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


class _NoCheckpoints:
    """Restored chains are checked link by link; the live checkpoints may be newer."""

    async def put(self, tenant_id: uuid.UUID, name: str, data: bytes) -> None:
        return None

    async def names(self, tenant_id: uuid.UUID) -> list[str]:
        return []

    async def get(self, tenant_id: uuid.UUID, name: str) -> bytes:
        raise BackupNotFound(name)
