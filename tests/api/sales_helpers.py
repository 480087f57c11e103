"""Helpers for the lead, organisation-chart and contact-merge tests: records over REST."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import TenantUser


async def make(
    client: httpx.AsyncClient, user: TenantUser, plural: str, **fields: Any
) -> dict[str, Any]:
    made = await client.post(f"/api/v1/{plural}", json=fields, headers=user.headers)
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def fetch(
    client: httpx.AsyncClient, user: TenantUser, plural: str, record_id: str
) -> dict[str, Any]:
    got = await client.get(f"/api/v1/{plural}/{record_id}", headers=user.headers)
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


async def patch(
    client: httpx.AsyncClient, user: TenantUser, plural: str, record: dict[str, Any], **fields: Any
) -> httpx.Response:
    return await client.patch(
        f"/api/v1/{plural}/{record['id']}",
        json=fields,
        headers={**user.headers, "If-Match": f'"{record["version"]}"'},
    )


async def ids(client: httpx.AsyncClient, user: TenantUser, plural: str) -> set[str]:
    listed = await client.get(f"/api/v1/{plural}?limit=200", headers=user.headers)
    assert listed.status_code == 200, listed.text
    return {r["id"] for r in listed.json()["items"]}


async def history(
    client: httpx.AsyncClient, user: TenantUser, plural: str, record_id: str
) -> list[dict[str, Any]]:
    got = await client.get(f"/api/v1/{plural}/{record_id}/history", headers=user.headers)
    assert got.status_code == 200, got.text
    items: list[dict[str, Any]] = got.json()["items"]
    return items
