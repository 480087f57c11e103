"""Helpers for the audit-chain tests: writing some history, sealing, verifying, and tampering
as the database owner (who can disable the append-only triggers)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import httpx

from backend.history.audit_tenants import TenantRef
from backend.history.checkpoints import DirectoryStore, checkpoint_tenant, default_store
from backend.history.checkpoints import trusted_keys as load_trusted_keys
from backend.history.sealer import seal_tenant
from backend.history.verify import TenantReport, verify_tenant
from backend.runtime import Services
from tests.conftest import Cluster, TenantUser

AUDIT_TABLES = ("record_history", "security_events", "audit_seals")


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def store(cluster: Cluster) -> DirectoryStore:
    return default_store(cluster.data_dir)


async def contact_with_history(client: httpx.AsyncClient, user: TenantUser) -> str:
    """A contact created and then updated twice: three history rows."""
    made = await client.post(
        "/api/v1/contacts",
        json={"last_name": "Chain", "email": "first@x.example"},
        headers=user.headers,
    )
    assert made.status_code == 201, made.text
    contact_id: str = made.json()["id"]
    for version, email in ((1, "second@x.example"), (2, "third@x.example")):
        changed = await client.patch(
            f"/api/v1/contacts/{contact_id}",
            json={"email": email},
            headers={**user.headers, "If-Match": f'"{version}"'},
        )
        assert changed.status_code == 200, changed.text
    return contact_id


async def seal(services: Services, tenant_id: uuid.UUID) -> None:
    """Seal until nothing the tenant wrote is left unsealed (a concurrent transaction elsewhere
    in the cluster may hold the sealer's horizon back for a moment)."""
    for _ in range(50):
        await seal_tenant(services.db, tenant_id)
        async with services.db.tenant_transaction(tenant_id) as conn:
            pending = (
                await conn.exec_driver_sql(
                    "select (select count(*) from record_history)"
                    " + (select count(*) from security_events)"
                    " - (select count(*) from audit_seals)"
                )
            ).scalar_one()
        if pending == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("rows stayed unsealed")


async def checkpoint(services: Services, cluster: Cluster, tenant_id: uuid.UUID) -> None:
    await services.keys.fresh()
    await checkpoint_tenant(services.db, services.keys.current, store(cluster), tenant_id)


async def verify(
    services: Services,
    cluster: Cluster,
    tenant: TenantUser,
    max_unsealed_age: timedelta = timedelta(minutes=10),
) -> TenantReport:
    keys = await load_trusted_keys(services.db, services.keys.box)
    return await verify_tenant(
        services.db,
        TenantRef(tenant.tenant_id, tenant.slug),
        keys,
        store(cluster),
        max_unsealed_age,
    )


@asynccontextmanager
async def as_owner(
    cluster: Cluster, tenant_id: uuid.UUID, *, disable_triggers: bool = True
) -> AsyncIterator[asyncpg.Connection]:
    """An owner transaction scoped to a tenant (FORCE RLS binds the owner too), with the
    append-only triggers switched off inside it, as an insider with the owner role could."""
    conn = await asyncpg.connect(dsn(cluster.urls.owner_url))
    try:
        async with conn.transaction():
            await conn.execute("select set_config('app.tenant_id', $1, true)", str(tenant_id))
            if disable_triggers:
                for table in AUDIT_TABLES:
                    await conn.execute(f"alter table {table} disable trigger {table}_append_only")
            yield conn
            if disable_triggers:
                for table in AUDIT_TABLES:
                    await conn.execute(f"alter table {table} enable trigger {table}_append_only")
    finally:
        await conn.close()
