"""Helpers for the export tests: tenants with a manager and data, rules set over the API,
audit events read over the API."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import TenantUser


async def set_rules(client: httpx.AsyncClient, admin: TenantUser, **changes: Any) -> None:
    """Change the tenant's export rules through the rules API (as an admin would)."""
    current = await client.get("/api/v1/export-rules", headers=admin.headers)
    assert current.status_code == 200, current.text
    body = current.json() | changes
    response = await client.put("/api/v1/export-rules", json=body, headers=admin.headers)
    assert response.status_code == 200, response.text


async def add_contacts(client: httpx.AsyncClient, user: TenantUser, n: int) -> list[str]:
    ids = []
    for i in range(n):
        response = await client.post(
            "/api/v1/contacts",
            json={"first_name": f"Ada{i}", "last_name": f"Export{i}", "email": f"a{i}@x.example"},
            headers=user.headers,
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def audit_events(
    client: httpx.AsyncClient, admin: TenantUser, event_type: str, actor: TenantUser | None = None
) -> list[dict[str, Any]]:
    params = {"type": event_type, "limit": "200"}
    if actor is not None:
        params["actor"] = str(actor.user_id)
    response = await client.get("/api/v1/audit-events", params=params, headers=admin.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def request_export(
    client: httpx.AsyncClient, user: TenantUser, **body: Any
) -> httpx.Response:
    return await client.post(
        "/api/v1/exports", json={"entity": "contacts", **body}, headers=user.headers
    )


async def download(client: httpx.AsyncClient, user: TenantUser, export_id: str) -> httpx.Response:
    link = await client.post(f"/api/v1/exports/{export_id}/link", headers=user.headers)
    assert link.status_code == 200, link.text
    return await client.get(link.json()["url"])
