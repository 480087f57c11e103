"""Helpers shared by the agenda, reminder and profile tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from tests.conftest import TenantUser


async def activity(client: httpx.AsyncClient, user: TenantUser, **fields: Any) -> dict[str, Any]:
    made = await client.post(
        "/api/v1/activities",
        json={k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()},
        headers=user.headers,
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def set_zone(client: httpx.AsyncClient, user: TenantUser, zone: str | None) -> None:
    changed = await client.patch("/api/v1/me", json={"time_zone": zone}, headers=user.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["time_zone"] == (zone or "UTC")


async def assign_role(
    client: httpx.AsyncClient, admin: TenantUser, user: TenantUser, role_id: str
) -> None:
    assigned = await client.put(
        f"/api/v1/users/{user.user_id}/roles", json={"role_ids": [role_id]}, headers=admin.headers
    )
    assert assigned.status_code == 200, assigned.text
