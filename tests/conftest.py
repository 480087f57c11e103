"""Shared fixtures: one embedded PostgreSQL per test session, migrated; the real app over
HTTP (ASGI); two tenants, A and B, each with a signed-in user."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.app import create_app
from backend.db.embedded import EmbeddedPostgres, EmbeddedUrls
from backend.db.migrate import migrate
from backend.runtime import Services, build_services
from backend.settings import Settings
from backend.tenants.service import create_tenant, create_user

PASSWORD = "correct horse battery"
TEST_DATABASE = "caravan_test"
# Session fixtures (tenant_a, tenant_b) sign in once; on a loaded machine the whole suite
# outlasts the default 10-minute access token (a run at load 15 took 39 minutes). Servers the
# tests start as processes take the same lifetime, or they would refuse these tokens.
ACCESS_TOKEN_TTL = 3 * 3600


@dataclass
class Cluster:
    pg: EmbeddedPostgres
    urls: EmbeddedUrls
    data_dir: Path


@dataclass
class TenantUser:
    tenant_id: uuid.UUID
    slug: str
    user_id: uuid.UUID
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    data_dir = Path(tempfile.mkdtemp(prefix="caravan-test-"))
    os.chmod(data_dir, 0o711)  # noqa: S103 - the server user must traverse it
    pg = EmbeddedPostgres(
        data_dir,
        Path(os.environ["CARAVAN_PG_BIN_DIR"]) if os.environ.get("CARAVAN_PG_BIN_DIR") else None,
    )
    port = pg.start()
    try:
        import asyncio

        urls = asyncio.run(pg.bootstrap(port, database=TEST_DATABASE))
        asyncio.run(migrate(urls.owner_url, "caravan_app"))
        yield Cluster(pg=pg, urls=urls, data_dir=data_dir)
    finally:
        pg.stop()


def make_settings(cluster: Cluster, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "data_dir": cluster.data_dir,
        "database_url": cluster.urls.app_url,
        "migration_database_url": cluster.urls.owner_url,
        "pool_size": 5,
        "access_token_ttl_seconds": ACCESS_TOKEN_TTL,
        # Tests run the SLA check themselves (a loop of the app's would race them).
        "sla_check_interval_seconds": 0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
async def services(cluster: Cluster) -> AsyncIterator[Services]:
    built = build_services(make_settings(cluster), cluster.urls.app_url)
    await built.keys.load()  # tests issue and forge tokens with the current key directly
    yield built
    await built.db.dispose()


@pytest.fixture(scope="session")
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(services)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def sign_in(
    client: httpx.AsyncClient, slug: str, email: str, password: str
) -> dict[str, Any]:
    response = await client.post(
        "/auth/sign-in", json={"tenant": slug, "email": email, "password": password}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def new_tenant(services: Services, client: httpx.AsyncClient, label: str) -> TenantUser:
    slug = f"{label}-{uuid.uuid4().hex[:8]}"
    email = f"admin@{slug}.example"
    created = await create_tenant(
        services.db,
        name=f"Tenant {label}",
        slug=slug,
        admin_email=email,
        admin_password=PASSWORD,
        require_admin_mfa=False,
    )
    tokens = await sign_in(client, slug, email, PASSWORD)
    return TenantUser(created.tenant_id, slug, created.admin_user_id, email, tokens["access_token"])


async def new_user(
    services: Services, client: httpx.AsyncClient, tenant: TenantUser, name: str
) -> TenantUser:
    email = f"{name}@{tenant.slug}.example"
    user_id = await create_user(
        services.db, tenant_slug=tenant.slug, email=email, password=PASSWORD
    )
    tokens = await sign_in(client, tenant.slug, email, PASSWORD)
    return TenantUser(tenant.tenant_id, tenant.slug, user_id, email, tokens["access_token"])


@pytest.fixture(scope="session")
async def tenant_a(services: Services, client: httpx.AsyncClient) -> TenantUser:
    return await new_tenant(services, client, "alpha")


@pytest.fixture(scope="session")
async def tenant_b(services: Services, client: httpx.AsyncClient) -> TenantUser:
    return await new_tenant(services, client, "bravo")


async def gql(
    client: httpx.AsyncClient,
    user: TenantUser | None,
    query: str,
    variables: dict[str, Any] | None = None,
) -> dict[str, Any]:
    headers = user.headers if user is not None else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from tests.security import figures

    figures.write()
