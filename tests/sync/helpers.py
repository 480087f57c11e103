"""Helpers shared by the sync tests: pulling every page, pushing a batch, changing records."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import TenantUser


async def pull(
    client: httpx.AsyncClient,
    user: TenantUser,
    cursor: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """One page of GET /api/v1/sync."""
    query = {k: v for k, v in {"cursor": cursor, **params}.items() if v is not None}
    response = await client.get("/api/v1/sync", params=query, headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def pull_all(
    client: httpx.AsyncClient, user: TenantUser, cursor: str | None = None, **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every page until has_more is false: all changes, and the cursor for next time."""
    changes: list[dict[str, Any]] = []
    while True:
        page = await pull(client, user, cursor, **params)
        assert page["reset"] is (cursor is None), "a reset only on a first sync here"
        changes.extend(page["changes"])
        cursor = page["cursor"]
        if not page["has_more"]:
            assert cursor is not None
            return changes, cursor


def ops(changes: list[dict[str, Any]]) -> dict[str, str]:
    """id -> the last op the changes say for it."""
    return {c["id"]: c["op"] for c in changes}


async def push(
    client: httpx.AsyncClient,
    user: TenantUser,
    changes: list[dict[str, Any]],
    *,
    device_id: str = "phone-1",
    resolution: str = "server_wins",
    headers: dict[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """POST /api/v1/sync; the results by client_id."""
    response = await client.post(
        "/api/v1/sync",
        json={"device_id": device_id, "resolution": resolution, "changes": changes},
        headers={**user.headers, **(headers or {})},
    )
    assert response.status_code == 200, response.text
    return {r["client_id"]: r for r in response.json()["results"]}


async def patch(
    client: httpx.AsyncClient,
    user: TenantUser,
    plural: str,
    record: dict[str, Any],
    **fields: Any,
) -> dict[str, Any]:
    response = await client.patch(
        f"/api/v1/{plural}/{record['id']}",
        json=fields,
        headers={**user.headers, "If-Match": f'"{record["version"]}"'},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
