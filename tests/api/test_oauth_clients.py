"""Registering OAuth apps, over REST and GraphQL: admins only, validated strictly, secrets shown
once and stored hashed, isolated per tenant, every change recorded; narrowing an app narrows
its next tokens, deactivating it ends its sessions."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from backend.runtime import Services
from tests.conftest import PASSWORD, Cluster, TenantUser, gql, new_user
from tests.security.oauth_helpers import bearer, refresh, register, token_for
from tests.security.test_oauth_attacks import events

Json = dict[str, Any]
BASE = {
    "name": "Valid",
    "client_type": "public",
    "redirect_uris": ["com.example.valid:/cb"],
    "grant_types": ["authorization_code"],
    "allowed_scopes": ["crm.read"],
}


@pytest.fixture(scope="module")
async def rep(services: Services, client: httpx.AsyncClient, tenant_a: TenantUser) -> TenantUser:
    return await new_user(services, client, tenant_a, f"apps-{uuid.uuid4().hex[:6]}")


async def test_a_public_app_has_no_secret(client: httpx.AsyncClient, tenant_a: TenantUser) -> None:
    response = await client.post("/api/v1/oauth-clients", json=BASE, headers=tenant_a.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["client_id"] == f"{tenant_a.tenant_id.hex}.{uuid.UUID(body['id']).hex}"
    assert response.headers["location"] == f"/api/v1/oauth-clients/{body['id']}"
    assert "client_secret" not in body and "secret_hash" not in body
    assert body["active"] is True and body["role"] is None


async def test_a_confidential_apps_secret_is_shown_once_and_stored_hashed(
    cluster: Cluster, services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    created = await register(
        client,
        tenant_a,
        name="Server",
        client_type="confidential",
        redirect_uris=["https://server.example/cb"],
    )
    assert created.secret is not None
    fetched = await client.get(f"/api/v1/oauth-clients/{created.id}", headers=tenant_a.headers)
    assert fetched.status_code == 200
    assert "client_secret" not in fetched.json() and "secret_hash" not in fetched.json()
    listed = await client.get("/api/v1/oauth-clients", headers=tenant_a.headers)
    assert created.secret not in listed.text
    conn = await asyncpg.connect(cluster.urls.owner_url.replace("+asyncpg", "", 1))
    try:
        async with conn.transaction():
            await conn.execute(
                "select set_config('app.tenant_id', $1, true)", str(tenant_a.tenant_id)
            )
            stored = await conn.fetchval(
                "select secret_hash from oauth_clients where id = $1", uuid.UUID(created.id)
            )
    finally:
        await conn.close()
    assert stored == hashlib.sha256(created.secret.encode()).hexdigest()
    created_events = await events(services, tenant_a, "client.created")
    assert created_events and all(created.secret not in str(e) for e in created_events)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"redirect_uris": ["http://evil.example/cb"]}, "redirect_uris"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "redirect_uris"),
        ({"redirect_uris": ["data:text/html,hi"]}, "redirect_uris"),
        ({"redirect_uris": ["https://*.example.com/cb"]}, "redirect_uris"),
        ({"redirect_uris": ["https://app.example.com/cb#frag"]}, "redirect_uris"),
        ({"redirect_uris": ["myapp:/cb"]}, "redirect_uris"),
        ({"redirect_uris": ["https:///no-host"]}, "redirect_uris"),
        ({"redirect_uris": ["https://a.example/ cb"]}, "redirect_uris"),
        ({"redirect_uris": [f"https://a.example/{i}" for i in range(11)]}, "redirect_uris"),
        ({"redirect_uris": []}, "redirect_uris"),
        ({"allowed_scopes": ["crm.read", "root"]}, "allowed_scopes"),
        ({"grant_types": ["implicit"]}, "grant_types"),
        ({"grant_types": ["password"]}, "grant_types"),
        ({"grant_types": []}, "grant_types"),
        ({"grant_types": ["refresh_token"]}, "grant_types"),
        ({"grant_types": ["client_credentials"], "role": "auditor"}, "grant_types"),
        ({"client_type": "trusted"}, "client_type"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"role": "auditor"}, "role"),
    ],
)
async def test_invalid_registrations_are_refused(
    client: httpx.AsyncClient, tenant_a: TenantUser, change: Json, field: str
) -> None:
    response = await client.post(
        "/api/v1/oauth-clients", json={**BASE, **change}, headers=tenant_a.headers
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert field in [problem["field"], *(e["field"] for e in problem.get("errors", []))]


async def test_client_credentials_need_a_known_role(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    body = {
        **BASE,
        "client_type": "confidential",
        "redirect_uris": [],
        "grant_types": ["client_credentials"],
    }
    missing = await client.post("/api/v1/oauth-clients", json=body, headers=tenant_a.headers)
    assert missing.status_code == 422 and missing.json()["field"] == "role"
    unknown = await client.post(
        "/api/v1/oauth-clients", json={**body, "role": "god_mode"}, headers=tenant_a.headers
    )
    assert unknown.status_code == 422 and unknown.json()["field"] == "role"
    listed = await client.get("/api/v1/oauth-clients", headers=tenant_a.headers)
    assert "god_mode" not in listed.text  # nothing half-written


async def test_only_tenant_admins_register_apps(
    client: httpx.AsyncClient, tenant_a: TenantUser, rep: TenantUser
) -> None:
    for method, path in (
        ("POST", "/api/v1/oauth-clients"),
        ("GET", "/api/v1/oauth-clients"),
    ):
        refused = await client.request(method, path, json=BASE, headers=rep.headers)
        assert refused.status_code == 403, refused.text
        anonymous = await client.request(method, path, json=BASE)
        assert anonymous.status_code == 401
    result = await gql(client, rep, "{ oauthApps { id } }")
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_apps_are_invisible_to_other_tenants(
    client: httpx.AsyncClient, tenant_a: TenantUser, tenant_b: TenantUser
) -> None:
    app = await register(client, tenant_a, name="Alpha Only")
    for method, path, body in (
        ("GET", f"/api/v1/oauth-clients/{app.id}", None),
        ("PATCH", f"/api/v1/oauth-clients/{app.id}", {"name": "Hijacked"}),
        ("POST", f"/api/v1/oauth-clients/{app.id}/secret", None),
        ("DELETE", f"/api/v1/oauth-clients/{app.id}", None),
    ):
        answer = await client.request(method, path, json=body, headers=tenant_b.headers)
        assert answer.status_code == 404, (method, answer.text)
    listed = await client.get("/api/v1/oauth-clients", headers=tenant_b.headers)
    assert app.client_id not in listed.text
    # A client id naming tenant A cannot be used with tenant B's ids either.
    forged = f"{tenant_b.tenant_id.hex}.{uuid.UUID(app.id).hex}"
    page = await client.get(
        f"/oauth/authorize?response_type=code&client_id={forged}&redirect_uri={app.redirect_uri}"
    )
    assert page.status_code == 400 and "location" not in page.headers


async def test_narrowing_an_app_narrows_its_next_token(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    app = await register(client, tenant_a, name="Narrowed", scopes=["openid", "crm.read"])
    tokens = await token_for(client, app, tenant_a)
    assert tokens["scope"] == "crm.read openid"
    changed = await client.patch(
        f"/api/v1/oauth-clients/{app.id}",
        json={"allowed_scopes": ["openid"], "name": "Narrowed v2"},
        headers=tenant_a.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["allowed_scopes"] == ["openid"] and changed.json()["version"] == 2
    renewed = await refresh(client, app, tokens["refresh_token"])
    assert renewed.status_code == 200
    assert renewed.json()["scope"] == "openid"
    listing = await client.get("/api/v1/contacts", headers=bearer(renewed.json()["access_token"]))
    assert listing.status_code == 403 and listing.json()["code"] == "insufficient_scope"
    assert await events(services, tenant_a, "client.updated")


async def test_deactivating_an_app_ends_its_sessions(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    app = await register(client, tenant_a, name="Paused")
    tokens = await token_for(client, app, tenant_a)
    for active in (False, True):
        answer = await client.patch(
            f"/api/v1/oauth-clients/{app.id}", json={"active": active}, headers=tenant_a.headers
        )
        assert answer.status_code == 200
    refused = await refresh(client, app, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


async def test_apps_over_graphql(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    created = await gql(
        client,
        tenant_a,
        """mutation($input: CreateOAuthAppInput!) {
             createOauthApp(input: $input) {
               app { id clientId name clientType allowedScopes grantTypes }
               clientSecret errors { field code }
             } }""",
        {
            "input": {
                "name": "GraphQL Server",
                "clientType": "confidential",
                "redirectUris": ["https://gql.example/cb"],
                "allowedScopes": ["crm.read", "crm.write"],
            }
        },
    )
    payload = created["data"]["createOauthApp"]
    assert payload["errors"] == [] and payload["clientSecret"]
    app_id = payload["app"]["id"]
    listed = await gql(client, tenant_a, "{ oauthApps { id name } }")
    assert app_id in [a["id"] for a in listed["data"]["oauthApps"]]

    invalid = await gql(
        client,
        tenant_a,
        """mutation($input: UpdateOAuthAppInput!) {
             updateOauthApp(input: $input) { app { id } errors { field code } } }""",
        {"input": {"id": app_id, "redirectUris": ["http://evil.example/cb"]}},
    )
    assert invalid["data"]["updateOauthApp"] == {
        "app": None,
        "errors": [{"field": "redirectUris", "code": "invalid_redirect_uri"}],
    }
    rotated = await gql(
        client,
        tenant_a,
        "mutation($id: ID!) { rotateOauthAppSecret(input: {id: $id}) { clientSecret } }",
        {"id": app_id},
    )
    assert rotated["data"]["rotateOauthAppSecret"]["clientSecret"] not in (
        None,
        payload["clientSecret"],
    )
    deleted = await gql(
        client,
        tenant_a,
        "mutation($id: ID!) { deleteOauthApp(input: {id: $id}) { deletedId errors { code } } }",
        {"id": app_id},
    )
    assert deleted["data"]["deleteOauthApp"] == {"deletedId": app_id, "errors": []}
    gone = await gql(
        client, tenant_a, "query($id: ID!) { oauthApp(id: $id) { id } }", {"id": app_id}
    )
    assert gone["data"]["oauthApp"] is None
    kinds = {
        kind: await events(services, tenant_a, kind)
        for kind in ("client.created", "client.secret_rotated", "client.deleted")
    }
    assert all(kinds.values())
    assert payload["clientSecret"] not in str(kinds)


async def test_an_apps_admin_scoped_token_may_administer_only_for_an_admin(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    app = await register(client, tenant_a, name="Admin Console", scopes=["admin", "crm.read"])
    tokens = await token_for(client, app, tenant_a, scope="admin crm.read")
    listed = await client.get("/api/v1/oauth-clients", headers=bearer(tokens["access_token"]))
    assert listed.status_code == 200, listed.text
    assert PASSWORD not in listed.text
