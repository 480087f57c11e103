"""Helpers of the product, quote and order tests: records made over REST by a given user."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import TenantUser


async def post(
    client: httpx.AsyncClient, user: TenantUser, plural: str, body: dict[str, Any]
) -> dict[str, Any]:
    made = await client.post(f"/api/v1/{plural}", json=body, headers=user.headers)
    assert made.status_code == 201, made.text
    record: dict[str, Any] = made.json()
    return record


async def product(
    client: httpx.AsyncClient, user: TenantUser, price: str | None, cost: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "Widget", "sku": f"W-{uuid.uuid4().hex[:10]}"}
    if price is not None:
        body["unit_price"] = price
    if cost is not None:
        body["unit_cost"] = cost
    return await post(client, user, "products", {**body, "currency": "EUR", "category": "tools"})


async def account(client: httpx.AsyncClient, user: TenantUser) -> dict[str, Any]:
    return await post(client, user, "accounts", {"name": f"Acme {uuid.uuid4().hex[:6]}"})


async def opportunity(
    client: httpx.AsyncClient, user: TenantUser, account_id: str | None
) -> dict[str, Any]:
    body = {"name": "Deal", "stage": "proposal", "close_date": "2027-03-31"}
    return await post(client, user, "opportunities", {**body, "account_id": account_id})


async def items(
    client: httpx.AsyncClient, user: TenantUser, plural: str, **filters: str
) -> list[dict[str, Any]]:
    listed = await client.get(
        f"/api/v1/{plural}", params={"limit": "200", **filters}, headers=user.headers
    )
    assert listed.status_code == 200, listed.text
    found: list[dict[str, Any]] = listed.json()["items"]
    return found
