"""The issue's acceptance story: a tenant admin creates "travelling rep: own contacts, no
export, no email field" through the API, and a user with it sees exactly that in both skins."""

from __future__ import annotations

import httpx

from backend.runtime import Services
from tests.conftest import gql, new_tenant, new_user


async def test_travelling_rep_sees_exactly_their_role(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "travel")
    rep = await new_user(services, client, admin, "rep")
    made = await client.post(
        "/api/v1/roles",
        headers=admin.headers,
        json={
            "name": "travelling_rep",
            "rules": [
                {"effect": "allow", "object": "contact", "action": "*"},
                {"effect": "allow", "object": "contact.*", "action": "*"},
                {"effect": "deny", "object": "contact.email", "action": "*"},
                {"effect": "deny", "object": "*", "action": "export"},
            ],
            "scopes": {"contact": "own"},
        },
    )
    assert made.status_code == 201, made.text
    assigned = await client.put(
        f"/api/v1/users/{rep.user_id}/roles",
        headers=admin.headers,
        json={"role_ids": [made.json()["id"]]},
    )
    assert assigned.status_code == 200, assigned.text

    theirs = await client.post(
        "/api/v1/contacts", headers=admin.headers, json={"last_name": "Admin's", "email": "a@x.io"}
    )
    assert theirs.status_code == 201
    mine = await client.post("/api/v1/contacts", headers=rep.headers, json={"last_name": "Mine"})
    assert mine.status_code == 201, mine.text
    assert "email" not in mine.json() and mine.json()["withheld_fields"] == ["email"]

    # Own contacts only, email withheld, in both skins.
    listed = (await client.get("/api/v1/contacts", headers=rep.headers)).json()["items"]
    assert [c["id"] for c in listed] == [mine.json()["id"]]
    assert (
        await client.get(f"/api/v1/contacts/{theirs.json()['id']}", headers=rep.headers)
    ).status_code == 404
    result = await gql(
        client, rep, "{ contacts { edges { node { id lastName email withheldFields } } } }"
    )
    nodes = [e["node"] for e in result["data"]["contacts"]["edges"]]
    assert nodes == [
        {"id": mine.json()["id"], "lastName": "Mine", "email": None, "withheldFields": ["email"]}
    ]

    # Writing the email is refused and names the field; no accounts at all.
    refused = await client.patch(
        f"/api/v1/contacts/{mine.json()['id']}",
        json={"email": "rep@x.io"},
        headers={**rep.headers, "If-Match": '"1"'},
    )
    assert (refused.status_code, refused.json()["field"]) == (403, "email")
    assert (await client.get("/api/v1/accounts", headers=rep.headers)).status_code == 403

    # And the explanation agrees: no export, own scope, email denied by the role.
    view = await client.get(
        f"/api/v1/users/{rep.user_id}/effective-permissions",
        params={"entity": "contact"},
        headers=admin.headers,
    )
    actions = {a["action"]: a for a in view.json()["actions"]}
    assert actions["export"]["allowed"] is False
    assert actions["read"]["scope"] == "own"
    assert actions["read"]["fields"]["email"] == {
        "allowed": False,
        "because": "role travelling_rep denies * on contact.email",
    }
