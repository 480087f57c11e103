"""Shared steps of the self-service tests: visitors at their own source addresses, web case
submission, and row counts read as the tenant."""

from __future__ import annotations

import random
from typing import Any

import httpx
from sqlalchemy import text

from backend.runtime import Services
from tests.conftest import TenantUser

Json = dict[str, Any]


def random_address() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def visitor_at(app: Any, address: str | None = None) -> httpx.AsyncClient:
    """An unauthenticated client at its own source address (rate limits count per address)."""
    transport = httpx.ASGITransport(app=app, client=(address or random_address(), 4321))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def submission(**fields: Any) -> Json:
    return {
        "name": "Dana Customer",
        "email": "dana@customer.example",
        "subject": "The printer jams",
        "description": "Every second page jams since Monday.",
        **fields,
    }


async def submit(visitor: httpx.AsyncClient, slug: str, **fields: Any) -> Json:
    made = await visitor.post(f"/public/{slug}/cases", json=submission(**fields))
    assert made.status_code == 201, made.text
    body: Json = made.json()
    return body


async def count_rows(services: Services, tenant: TenantUser, table: str) -> int:
    assert table in {"cases", "case_replies", "case_status_links", "case_surveys"}
    async with services.db.tenant_transaction(tenant.tenant_id) as conn:
        result = await conn.execute(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
        return int(result.scalar_one())


async def case_by_number(client: httpx.AsyncClient, user: TenantUser, number: str) -> Json:
    got = await client.get("/api/v1/cases", params={"limit": 200}, headers=user.headers)
    assert got.status_code == 200, got.text
    found = [c for c in got.json()["items"] if c["number"] == number]
    assert len(found) == 1, number
    case: Json = found[0]
    return case
