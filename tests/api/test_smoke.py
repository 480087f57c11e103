from __future__ import annotations

import httpx

from tests.conftest import TenantUser


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_create_and_get_contact(client: httpx.AsyncClient, tenant_a: TenantUser) -> None:
    created = await client.post(
        "/api/v1/contacts",
        json={"last_name": "Lovelace", "first_name": "Ada"},
        headers=tenant_a.headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"/api/v1/contacts/{body['id']}"
    fetched = await client.get(f"/api/v1/contacts/{body['id']}", headers=tenant_a.headers)
    assert fetched.json()["last_name"] == "Lovelace"
    assert fetched.json()["owner_id"] == str(tenant_a.user_id)
