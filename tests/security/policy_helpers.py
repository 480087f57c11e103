"""Helpers shared by the policy tests: users with chosen roles, custom roles, records, problems."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from backend.runtime import Services
from backend.tenants.service import create_user
from tests.conftest import PASSWORD, TenantUser, sign_in

PROBLEM_JSON = "application/problem+json"


async def user_with_roles(
    services: Services,
    client: httpx.AsyncClient,
    tenant: TenantUser,
    name: str,
    roles: list[str],
) -> TenantUser:
    """A signed-in user of `tenant` holding exactly the named (built-in or custom) roles."""
    email = f"{name}-{uuid.uuid4().hex[:6]}@{tenant.slug}.example"
    user_id = await create_user(
        services.db, tenant_slug=tenant.slug, email=email, password=PASSWORD, roles=roles
    )
    tokens = await sign_in(client, tenant.slug, email, PASSWORD)
    return TenantUser(tenant.tenant_id, tenant.slug, user_id, email, tokens["access_token"])


async def role_ids(client: httpx.AsyncClient, admin: TenantUser) -> dict[str, str]:
    response = await client.get("/api/v1/roles", headers=admin.headers)
    assert response.status_code == 200, response.text
    return {r["name"]: r["id"] for r in response.json()["items"]}


async def create_role(
    client: httpx.AsyncClient,
    admin: TenantUser,
    name: str,
    rules: list[tuple[str, str, str]],
    scopes: dict[str, str] | None = None,
) -> str:
    response = await client.post(
        "/api/v1/roles",
        headers=admin.headers,
        json={
            "name": name,
            "rules": [{"effect": e, "object": o, "action": a} for e, o, a in rules],
            "scopes": scopes or {},
        },
    )
    assert response.status_code == 201, response.text
    role_id: str = response.json()["id"]
    return role_id


async def create_record(
    client: httpx.AsyncClient, user: TenantUser, plural: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(f"/api/v1/{plural}", headers=user.headers, json=body)
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None, field: str | None = None
) -> dict[str, Any]:
    """A problem+json answer with this status (and code and field, when given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    expected = {k: v for k, v in (("code", code), ("field", field)) if v is not None}
    assert {k: body.get(k) for k in expected} == expected, body
    return body


def gql_codes(result: dict[str, Any]) -> list[str]:
    """The `extensions.code` of each top-level GraphQL error (none: an empty list)."""
    return [e.get("extensions", {}).get("code") for e in result.get("errors", [])]


def gql_data(result: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in result, result
    body: dict[str, Any] = result["data"]
    return body
