"""The security event log is append-only: the app role (and even the owner) cannot rewrite it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text

from backend.history.events import EventType, record_event_now
from backend.runtime import Services
from tests.conftest import Cluster, TenantUser


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture(params=["app", "owner"])
async def conn(
    request: pytest.FixtureRequest, cluster: Cluster
) -> AsyncIterator[asyncpg.Connection]:
    url = cluster.urls.app_url if request.param == "app" else cluster.urls.owner_url
    connection = await asyncpg.connect(_dsn(url))
    yield connection
    await connection.close()


async def _event(services: Services, tenant: TenantUser) -> uuid.UUID:
    await record_event_now(
        services.db, tenant.tenant_id, EventType.SIGN_IN, actor_user_id=tenant.user_id
    )
    async with services.db.tenant_transaction(tenant.tenant_id) as c:
        found = await c.execute(text("select id from security_events order by id desc limit 1"))
        event_id: uuid.UUID = found.scalar_one()
    return event_id


@pytest.mark.parametrize(
    "statement",
    [
        "update security_events set outcome = 'failure' where id = $1",
        "delete from security_events where id = $1",
    ],
)
async def test_events_cannot_be_changed_or_deleted(
    services: Services, tenant_a: TenantUser, conn: asyncpg.Connection, statement: str
) -> None:
    event_id = await _event(services, tenant_a)
    async with conn.transaction():
        await conn.execute("select set_config('app.tenant_id', $1, true)", str(tenant_a.tenant_id))
        with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
            await conn.execute(statement, event_id)
    async with conn.transaction():
        await conn.execute("select set_config('app.tenant_id', $1, true)", str(tenant_a.tenant_id))
        still = await conn.fetchval("select outcome from security_events where id = $1", event_id)
    assert still == "success"


async def test_events_cannot_be_truncated(
    services: Services, tenant_a: TenantUser, conn: asyncpg.Connection
) -> None:
    await _event(services, tenant_a)
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
        await conn.execute("truncate security_events")


async def test_events_are_isolated_by_tenant(
    services: Services, tenant_a: TenantUser, tenant_b: TenantUser, cluster: Cluster
) -> None:
    event_id = await _event(services, tenant_a)
    app = await asyncpg.connect(_dsn(cluster.urls.app_url))
    try:
        async with app.transaction():
            await app.execute(
                "select set_config('app.tenant_id', $1, true)", str(tenant_b.tenant_id)
            )
            assert (
                await app.fetchval("select count(*) from security_events where id = $1", event_id)
                == 0
            )
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                await app.execute(
                    "insert into security_events (tenant_id, id, type, outcome)"
                    " values ($1, $2, 'x', 'y')",
                    tenant_a.tenant_id,
                    uuid.uuid4(),
                )
    finally:
        await app.close()
