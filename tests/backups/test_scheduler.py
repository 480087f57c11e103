"""The served app backs up on its own; a failed scheduled backup is loud (log + audit event)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.runtime import Services, build_services
from backend.settings import Settings
from tests.backups.conftest import backups, superuser_url
from tests.conftest import Cluster, make_settings, new_tenant


def test_scheduled_backups_are_on_by_default_only_with_the_embedded_database() -> None:
    assert Settings.from_env({}).backups_scheduled
    assert not Settings.from_env(
        {"CARAVAN_DATABASE_URL": "postgresql+asyncpg://x/y"}
    ).backups_scheduled
    assert Settings.from_env(
        {"CARAVAN_DATABASE_URL": "postgresql+asyncpg://x/y", "CARAVAN_BACKUP_ENABLED": "true"}
    ).backups_scheduled


async def test_the_served_app_takes_a_backup_on_its_own(
    services: Services, client: httpx.AsyncClient, cluster: Cluster, data_dir: Path
) -> None:
    await new_tenant(services, client, "scheduled")
    settings = make_settings(
        cluster,
        backup_interval_seconds=3600,
        seal_interval_seconds=0,
        checkpoint_interval_seconds=0,
    )
    server = build_services(settings, cluster.urls.app_url)
    server.backups = backups(server, cluster, data_dir)  # the served app's own pool
    outside = backups(services, cluster, data_dir)
    async with AsyncTestClient(create_app(server)):
        for _ in range(300):
            found = await outside.list_backups()
            if found:
                break
            await asyncio.sleep(0.1)
    assert [m.kind for m in found] == ["full"]
    assert (await outside.verify(found[0].id)).tables_match


async def test_a_failed_scheduled_backup_logs_and_audits(
    services: Services,
    client: httpx.AsyncClient,
    cluster: Cluster,
    data_dir: Path,
) -> None:
    tenant = await new_tenant(services, client, "schedfail")
    settings = make_settings(cluster, seal_interval_seconds=0, checkpoint_interval_seconds=0)
    server = build_services(settings, cluster.urls.app_url)
    wrong = superuser_url(cluster).replace("postgres:", "postgres:wrong", 1)
    server.backups = backups(server, cluster, data_dir, backup_database_url=wrong)

    async def failures() -> list[str]:
        async with services.db.tenant_transaction(tenant.tenant_id) as conn:
            rows = await conn.exec_driver_sql(
                "select details->>'error' from security_events where type = 'backup.failed'"
            )
            return [r[0] for r in rows]

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign,assignment]
    logger = logging.getLogger("caravan.backups")
    logger.addHandler(handler)
    try:
        async with AsyncTestClient(create_app(server)):
            for _ in range(300):
                if records and await failures():
                    break
                await asyncio.sleep(0.1)
    finally:
        logger.removeHandler(handler)
    assert "cannot connect" in (await failures())[0]
    assert any("SCHEDULED BACKUP FAILED" in r.getMessage() for r in records)
    assert await backups(services, cluster, data_dir).list_backups() == []


async def test_only_one_process_backs_up_at_a_time(
    services: Services, cluster: Cluster, data_dir: Path
) -> None:
    from backend.backups.scheduler import LOCK_KEY, BackupScheduler

    scheduler = BackupScheduler(backups(services, cluster, data_dir), 3600)
    async with services.db.plain_transaction() as conn:
        await conn.exec_driver_sql("select pg_advisory_xact_lock($1)", (LOCK_KEY,))
        assert await scheduler.tick() is None  # another process holds the lock
    made = await scheduler.tick()
    assert made is not None and made.kind == "full"
