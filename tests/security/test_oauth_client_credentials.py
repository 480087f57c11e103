"""Client credentials: a server app acts as its own service user, holding the role it was
registered with; its tokens are limited by both that role and its scopes, it never signs in
interactively, and deleting the app (or rotating its secret) cuts it off."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import TenantUser, gql
from tests.security.forgeries import forgery
from tests.security.oauth_helpers import App, bearer, register
from tests.security.test_auth import _sign_in_raw

Json = dict[str, Any]


async def _token(client: httpx.AsyncClient, app: App, **data: str) -> httpx.Response:
    return await client.post(
        "/oauth/token", data={"grant_type": "client_credentials", **data}, headers=app.basic()
    )


@pytest.fixture(scope="module")
async def reader_app(client: httpx.AsyncClient, tenant_a: TenantUser) -> App:
    """Read and write scopes, but the read-only auditor role."""
    return await register(
        client,
        tenant_a,
        name="Nightly Sync",
        client_type="confidential",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scopes=["crm.read", "crm.write", "openid"],
        role="auditor",
    )


@pytest.fixture(scope="module")
async def writer_app(client: httpx.AsyncClient, tenant_a: TenantUser) -> App:
    """A role that may write (sales_manager), but only the read scope."""
    return await register(
        client,
        tenant_a,
        name="Dashboard Feed",
        client_type="confidential",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scopes=["crm.read"],
        role="sales_manager",
    )


async def test_the_app_acts_as_its_service_user_with_its_scopes(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser, reader_app: App
) -> None:
    response = await _token(client, reader_app)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body and "id_token" not in body
    assert body["scope"] == "crm.read crm.write"  # identity scopes mean nothing here
    principal = services.tokens.verify(body["access_token"])
    assert principal.user_id != tenant_a.user_id
    assert principal.client_id is not None and str(principal.client_id) == reader_app.id
    assert principal.scopes == frozenset({"crm.read", "crm.write"})
    # A session of its own, so the token can be revoked (tests/security/test_revocation.py).
    assert principal.session_id is not None
    # Reading works; writing is refused by the role (auditor) although the scope allows it.
    headers = bearer(body["access_token"])
    assert (await client.get("/api/v1/contacts", headers=headers)).status_code == 200
    write = await client.post("/api/v1/contacts", json={"last_name": "X"}, headers=headers)
    assert write.status_code == 403
    assert write.json()["code"] != "insufficient_scope"


@forgery
async def test_the_scope_limits_a_role_that_could_do_more(
    client: httpx.AsyncClient, tenant_a: TenantUser, writer_app: App
) -> None:
    token = (await _token(client, writer_app)).json()["access_token"]
    write = await client.post("/api/v1/contacts", json={"last_name": "X"}, headers=bearer(token))
    assert write.status_code == 403
    assert write.json()["code"] == "insufficient_scope"
    viewer = TenantUser(tenant_a.tenant_id, tenant_a.slug, tenant_a.user_id, tenant_a.email, token)
    result = await gql(
        client, viewer, 'mutation { createContact(input: {lastName: "X"}) { contact { id } } }'
    )
    assert result["errors"][0]["extensions"]["reason"] == "insufficient_scope"
    # Nor may it administer the tenant.
    admin = await client.get("/api/v1/oauth-clients", headers=bearer(token))
    assert admin.status_code == 403


@pytest.mark.parametrize("scope", ["crm.write", "admin", "openid", "crm.read crm.export"])
@forgery
async def test_scopes_beyond_the_apps_allowance_are_refused(
    client: httpx.AsyncClient, writer_app: App, scope: str
) -> None:
    response = await _token(client, writer_app, scope=scope)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


@forgery
async def test_the_service_user_cannot_sign_in(
    client: httpx.AsyncClient, tenant_a: TenantUser, reader_app: App
) -> None:
    email = f"app-{reader_app.id.replace('-', '')}@apps.caravan.invalid"
    for password in ("", "x" * 12, reader_app.secret or ""):
        response = await _sign_in_raw(client, tenant_a.slug, email, password)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_credentials"


@forgery
async def test_public_apps_cannot_use_client_credentials(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    response = await client.post(
        "/api/v1/oauth-clients",
        json={
            "name": "Sneaky",
            "client_type": "public",
            "grant_types": ["client_credentials"],
            "allowed_scopes": ["crm.read"],
            "role": "auditor",
        },
        headers=tenant_a.headers,
    )
    assert response.status_code == 422
    assert response.json()["field"] == "grant_types"


@forgery
async def test_a_rotated_secret_and_a_deleted_app_stop_working(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    app = await register(
        client,
        tenant_a,
        name="Short-lived",
        client_type="confidential",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scopes=["crm.read"],
        role="integration",
    )
    assert (await _token(client, app)).status_code == 200
    rotated = await client.post(f"/api/v1/oauth-clients/{app.id}/secret", headers=tenant_a.headers)
    assert rotated.status_code == 200
    new_secret = rotated.json()["client_secret"]
    assert new_secret != app.secret
    old = await _token(client, app)
    assert old.status_code == 401 and old.json()["error"] == "invalid_client"
    renewed = App(app.id, app.client_id, new_secret, "", {})
    assert (await _token(client, renewed)).status_code == 200

    deleted = await client.delete(f"/api/v1/oauth-clients/{app.id}", headers=tenant_a.headers)
    assert deleted.status_code == 204
    gone = await _token(client, renewed)
    assert gone.status_code == 401 and gone.json()["error"] == "invalid_client"
