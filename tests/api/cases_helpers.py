"""Shared steps of the case tests: make cases, queues, rules and SLA policies over REST."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import TenantUser

ALL_WEEK = {day: ["00:00", "24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


async def new_case(client: httpx.AsyncClient, user: TenantUser, **fields: Any) -> dict[str, Any]:
    body = {"subject": "Printer jams", **fields}
    made = await client.post("/api/v1/cases", json=body, headers=user.headers)
    assert made.status_code == 201, made.text
    record: dict[str, Any] = made.json()
    return record


async def get_case(client: httpx.AsyncClient, user: TenantUser, case_id: str) -> dict[str, Any]:
    got = await client.get(f"/api/v1/cases/{case_id}", headers=user.headers)
    assert got.status_code == 200, got.text
    record: dict[str, Any] = got.json()
    return record


async def new_queue(
    client: httpx.AsyncClient, admin: TenantUser, name: str, members: list[TenantUser]
) -> dict[str, Any]:
    body = {"name": name, "member_ids": [str(m.user_id) for m in members]}
    made = await client.post("/api/v1/queues", json=body, headers=admin.headers)
    assert made.status_code == 201, made.text
    queue: dict[str, Any] = made.json()
    return queue


async def new_rule(client: httpx.AsyncClient, admin: TenantUser, **body: Any) -> dict[str, Any]:
    made = await client.post("/api/v1/case-assignment-rules", json=body, headers=admin.headers)
    assert made.status_code == 201, made.text
    rule: dict[str, Any] = made.json()
    return rule


async def new_policy(client: httpx.AsyncClient, admin: TenantUser, **body: Any) -> dict[str, Any]:
    policy = {
        "priority": "normal",
        "first_response_minutes": 60,
        "resolution_minutes": 480,
        "business_hours": ALL_WEEK,
        **body,
    }
    made = await client.post("/api/v1/sla-policies", json=policy, headers=admin.headers)
    assert made.status_code == 201, made.text
    saved: dict[str, Any] = made.json()
    return saved
