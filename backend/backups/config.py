"""Builds the BackupService from Settings and the resolved database."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlparse

from backend.backups.catalog import BackupConfig
from backend.backups.masterkey import master_key
from backend.backups.retention import Policy
from backend.backups.service import BackupService
from backend.backups.store import open_store
from backend.db.embedded import SUPERUSER
from backend.db.session import Database
from backend.db.target import DatabaseTarget
from backend.settings import Settings


def dump_url(settings: Settings, target: DatabaseTarget) -> str:
    """The role that reads every tenant: configured, or the embedded cluster's superuser.
    Elsewhere it falls back to the owner role, under which row_security=off makes pg_dump fail
    loudly on the tenant tables rather than skip rows."""
    if settings.backup_database_url:
        return settings.backup_database_url
    if target.embedded is not None:
        password = (target.embedded.secrets_dir / "superuser.password").read_text().strip()
        app = urlparse(target.app_url)
        return f"postgresql://{SUPERUSER}:{quote(password, safe='')}@127.0.0.1:{app.port}{app.path}"
    assert target.owner_url is not None
    return target.owner_url


def build_backups(
    settings: Settings,
    target: DatabaseTarget,
    db: Database,
    *,
    s3_client: Any = None,
    kms_client: Any = None,
) -> BackupService:
    store = open_store(
        settings.backup_url,
        settings.data_dir,
        endpoint=settings.backup_s3_endpoint,
        retention_days=settings.backup_retention_days,
        lock_mode=settings.backup_lock_mode,
        client=s3_client,
    )
    assert target.owner_url is not None
    config = BackupConfig(
        store=store,
        master=master_key(settings.data_dir, settings.backup_kms_key_id, kms_client),
        dump_url=dump_url(settings, target),
        owner_url=target.owner_url,
        app_role=target.app_role,
        work_dir=settings.data_dir / "backups" / "work",
        bin_dir=settings.pg_bin_dir,
        retention_days=settings.backup_retention_days,
        policy=Policy(
            settings.backup_keep_daily, settings.backup_keep_weekly, settings.backup_keep_monthly
        ),
    )
    return BackupService(config, db)
