"""Where backups are kept: ids, the configuration, the list, and opening one (every check
before a single byte is trusted). The base of every backup job, with the audit log they share."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.backups import manifest as mf
from backend.backups.crypto import DecryptingReader, decrypt_all
from backend.backups.errors import BackupError, BackupNotFound, BackupRefused
from backend.backups.masterkey import MasterKey
from backend.backups.retention import Policy
from backend.backups.store import ARCHIVE, MANIFEST, Store
from backend.db.session import Database
from backend.history.audit_tenants import TenantRef
from backend.history.events import EventType, record_event_now

BACKUP_ID = re.compile(r"^\d{8}T\d{6}Z-(full|tenant)-[0-9a-f]{8}$")


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


def new_backup_id(kind: str) -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{kind}-{secrets.token_hex(4)}"


def check_id(backup_id: str) -> str:
    if not BACKUP_ID.match(backup_id):
        raise BackupNotFound(f"{backup_id!r} is not a backup id", field="id")
    return backup_id


class BackupCatalog:
    """What every backup job holds (configuration, the app database for audit events), the
    audit log they share, and the stored backups: list and open."""

    def __init__(self, config: BackupConfig, db: Database) -> None:
        self.config = config
        self.db = db  # the app role: audit events

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

    def _work_file(self) -> Path:
        for folder in (self.config.work_dir.parent, self.config.work_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(dir=self.config.work_dir, suffix=".part")
        os.close(fd)
        return Path(name)

    async def list_backups(self) -> list[mf.Manifest]:
        names = await asyncio.to_thread(self.config.store.names)
        found = []
        for name in names:
            backup_id, _, leaf = name.partition("/")
            if leaf != MANIFEST or not BACKUP_ID.match(backup_id):
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
