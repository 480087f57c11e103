from __future__ import annotations

import httpx

from backend.runtime import Services
from tests.conftest import new_tenant, new_user


async def test_travelling_rep_sees_exactly_their_role(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "policysmoke")
    rep = await new_user(services, client, admin, "rep")
    roles = (await client.get("/api/v1/roles", headers=admin.headers)).json()["items"]
    assert {"tenant_admin", "salesperson", "auditor"} <= {r["name"] for r in roles}
    made = await client.post(
        "/api/v1/roles",
        headers=admin.headers,
        json={
            "name": "travelling_rep",
            "rules": [
                {"effect": "allow", "object": "contact", "action": "read"},
                {"effect": "allow", "object": "contact.*", "action": "read"},
                {"effect": "deny", "object": "contact.email", "action": "*"},
                {"effect": "allow", "object": "contact", "action": "update"},
                {"effect": "allow", "object": "contact.*", "action": "update"},
            ],
            "scopes": {"contact": "own"},
        },
    )
    assert made.status_code == 201, made.text
    role_id = made.json()["id"]
    put = await client.put(
        f"/api/v1/users/{rep.user_id}/roles", headers=admin.headers, json={"role_ids": [role_id]}
    )
    assert put.status_code == 200, put.text
    mine = await client.post(
        "/api/v1/contacts",
        headers=admin.headers,
        json={"last_name": "Admins", "email": "a@x.example"},
    )
    assert mine.status_code == 201
    listed = await client.get("/api/v1/contacts", headers=rep.headers)
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []
    eff = await client.get(
        f"/api/v1/users/{rep.user_id}/effective-permissions",
        params={"entity": "contact"},
        headers=admin.headers,
    )
    assert eff.status_code == 200, eff.text
    print(eff.json()["actions"][0])
