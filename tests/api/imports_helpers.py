"""Helpers for the CSV import tests: upload a file, wait for it, count rows in the database."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from backend.runtime import Services
from tests.conftest import TenantUser

MAPPING = {
    "First": "first_name",
    "Last": "last_name",
    "Email": "email",
    "Phone": "phone",
    "Title": "title",
}
HEADER = "First,Last,Email,Phone,Title"


async def upload(
    client: httpx.AsyncClient,
    user: TenantUser,
    content: str | bytes,
    mapping: dict[str, str] | None = None,
    *,
    entity: str = "contact",
    dry_run: bool = False,
    on_duplicate: str = "skip",
) -> httpx.Response:
    raw = content.encode() if isinstance(content, str) else content
    return await client.post(
        "/api/v1/imports",
        headers=user.headers,
        files={"file": ("people.csv", raw, "text/csv")},
        data={
            "entity": entity,
            "mapping": json.dumps(MAPPING if mapping is None else mapping),
            "dry_run": "true" if dry_run else "false",
            "on_duplicate": on_duplicate,
        },
    )


async def finished(
    services: Services, client: httpx.AsyncClient, user: TenantUser, response: httpx.Response
) -> dict[str, Any]:
    """The import once done: answered at once (201), or after its background task (202)."""
    assert response.status_code in (201, 202), response.text
    await services.imports.wait()
    shown = await client.get(f"/api/v1/imports/{response.json()['id']}", headers=user.headers)
    assert shown.status_code == 200, shown.text
    body: dict[str, Any] = shown.json()
    assert body["status"] == "done", body
    return body


async def count(services: Services, tenant_id: uuid.UUID, sql: str, **params: Any) -> int:
    async with services.db.tenant_transaction(tenant_id) as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


async def written(services: Services, tenant_id: uuid.UUID) -> tuple[int, int, int]:
    """Contacts, their change history, and imports of the tenant: what an import may write."""
    return (
        await count(services, tenant_id, "select count(*) from contacts"),
        await count(services, tenant_id, "select count(*) from record_history"),
        await count(services, tenant_id, "select count(*) from imports"),
    )


def people(n: int, *, duplicates_every: int = 0, bad_every: int = 0, tag: str = "") -> str:
    """n contact rows: each `duplicates_every`-th repeats the row before's email (in another
    case, with a space), and one in `bad_every` (the 7th, 107th, ...) has an invalid email."""
    lines = [HEADER]
    for i in range(1, n + 1):
        email = f"p{i}{tag}@people.example"
        if duplicates_every and i % duplicates_every == 0:
            email = f"P{i - 1}{tag}@People.example "
        if bad_every and i % bad_every == 7 % bad_every:
            email = "not-an-email"
        lines.append(f"Ann{i},Person{i},{email},,Buyer")
    return "\n".join(lines) + "\n"
