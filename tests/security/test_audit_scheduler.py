"""Inside the server: the app's lifespan starts the sealer and checkpoint writer, and stops it."""

from __future__ import annotations

import asyncio

import httpx
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.history import pending
from backend.history.scheduler import AuditScheduler
from backend.runtime import Services, build_services
from tests.conftest import Cluster, make_settings, new_tenant
from tests.security.audit_helpers import contact_with_history, store, verify


async def test_the_server_seals_and_checkpoints_in_the_background(
    services: Services, client: httpx.AsyncClient, cluster: Cluster
) -> None:
    tenant = await new_tenant(services, client, "background")
    await contact_with_history(client, tenant)
    settings = make_settings(cluster, seal_interval_seconds=1, checkpoint_interval_seconds=1)
    server = build_services(settings, cluster.urls.app_url)
    async with AsyncTestClient(create_app(server)):
        for _ in range(100):
            report = await verify(services, cluster, tenant)
            if report.head_seq and await store(cluster).names(tenant.tenant_id):
                break
            await asyncio.sleep(0.1)
    assert report.ok and report.head_seq >= 3 and report.unsealed_pending == 0
    assert await store(cluster).names(tenant.tenant_id)


async def test_between_sweeps_only_tenants_written_for_are_sealed(
    services: Services, client: httpx.AsyncClient, cluster: Cluster
) -> None:
    """A tick without a sweep does not walk every tenant (at 10k tenants that burned a core):
    rows this process did not mark wait for the next sweep; a marked tenant is sealed at once."""
    quiet = await new_tenant(services, client, "quiet")
    busy = await new_tenant(services, client, "busy")
    await contact_with_history(client, quiet)
    await contact_with_history(client, busy)
    pending._marked.pop(quiet.tenant_id, None)  # as if another process had written them
    scheduler = AuditScheduler(
        services.db, services.keys, store(cluster), seal_interval=1, checkpoint_interval=0
    )
    await scheduler.tick(checkpoint=False, sweep=False)
    assert (await verify(services, cluster, busy)).unsealed_pending == 0
    assert (await verify(services, cluster, quiet)).unsealed_pending > 0
    await scheduler.tick(checkpoint=False, sweep=True)
    report = await verify(services, cluster, quiet)
    assert report.ok and report.unsealed_pending == 0
