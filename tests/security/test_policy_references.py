"""A reference (contact.account_id) may only name a record the caller may read: linking to an
out-of-scope account is refused exactly like linking to a missing one, so it is no oracle."""

from __future__ import annotations

import uuid

import httpx

from backend.runtime import Services
from tests.conftest import new_tenant, new_user


async def test_links_only_to_accounts_in_scope(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "refscope")
    rep = await new_user(services, client, admin, "rep")  # salesperson: own scope
    theirs = await client.post(
        "/api/v1/accounts", json={"name": "Not yours"}, headers=admin.headers
    )
    mine = await client.post("/api/v1/accounts", json={"name": "Yours"}, headers=rep.headers)
    before = (await client.get("/api/v1/contacts", headers=admin.headers)).json()["items"]

    answers = []
    for account_id in (theirs.json()["id"], str(uuid.uuid4())):
        refused = await client.post(
            "/api/v1/contacts",
            json={"last_name": "Link", "account_id": account_id},
            headers=rep.headers,
        )
        answers.append((refused.status_code, refused.json()["code"], refused.json()["field"]))
    assert answers == [(422, "unknown_reference", "account_id")] * 2
    assert (await client.get("/api/v1/contacts", headers=admin.headers)).json()["items"] == before

    linked = await client.post(
        "/api/v1/contacts",
        json={"last_name": "Link", "account_id": mine.json()["id"]},
        headers=rep.headers,
    )
    assert linked.status_code == 201, linked.text
    # An admin (tenant scope) may link to any account of the tenant.
    admin_link = await client.post(
        "/api/v1/contacts",
        json={"last_name": "Admin link", "account_id": mine.json()["id"]},
        headers=admin.headers,
    )
    assert admin_link.status_code == 201
