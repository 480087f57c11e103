"""Refresh-token rotation and reuse detection for apps, client authentication, revocation
(RFC 7009) and introspection (RFC 7662): each misuse attempted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from backend.runtime import Services
from tests.conftest import PASSWORD, TenantUser, sign_in
from tests.security.forgeries import forgery
from tests.security.oauth_helpers import App, bearer, refresh, register, token_for
from tests.security.test_oauth_attacks import events

Json = dict[str, Any]


@pytest.fixture(scope="module")
async def phone_app(client: httpx.AsyncClient, tenant_a: TenantUser) -> App:
    return await register(client, tenant_a, name="Phone")


@pytest.fixture(scope="module")
async def server_app(client: httpx.AsyncClient, tenant_a: TenantUser) -> App:
    return await register(
        client,
        tenant_a,
        name="Reporting Server",
        client_type="confidential",
        redirect_uris=["https://reports.example.com/cb"],
    )


async def _works(client: httpx.AsyncClient, access_token: str) -> bool:
    response = await client.get("/api/v1/contacts", headers=bearer(access_token))
    return response.status_code == 200


@forgery
async def test_refresh_token_reuse_revokes_the_whole_family(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser, phone_app: App
) -> None:
    first = await token_for(client, phone_app, tenant_a)
    unrelated = await token_for(client, phone_app, tenant_a)
    second = (await refresh(client, phone_app, first["refresh_token"])).json()
    third = (await refresh(client, phone_app, second["refresh_token"])).json()
    assert "refresh_token" in third

    # An attacker replays the first (spent) token: refused, and the family dies with it.
    stolen = await refresh(client, phone_app, first["refresh_token"])
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    legit = await refresh(client, phone_app, third["refresh_token"])
    assert legit.status_code == 400 and legit.json()["error"] == "invalid_grant"
    detected = await events(services, tenant_a, "token.reuse_detected")
    assert detected and detected[-1]["outcome"] == "denied"

    # Another authorization of the same app is a separate family.
    assert (await refresh(client, phone_app, unrelated["refresh_token"])).status_code == 200


@forgery
async def test_refresh_tokens_are_bound_to_their_app_and_door(
    client: httpx.AsyncClient, tenant_a: TenantUser, phone_app: App, server_app: App
) -> None:
    tokens = await token_for(client, phone_app, tenant_a)
    # Another app presenting it: refused, and the token is not spent.
    other = await refresh(client, server_app, tokens["refresh_token"])
    assert other.status_code == 400 and other.json()["error"] == "invalid_grant"
    # The first-party door refuses an app's refresh token, and the other way round.
    first_party = await client.post(
        "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert first_party.status_code == 401
    own = await sign_in(client, tenant_a.slug, tenant_a.email, PASSWORD)
    crossed = await refresh(client, phone_app, own["refresh_token"])
    assert crossed.status_code == 400 and crossed.json()["error"] == "invalid_grant"
    assert (await refresh(client, phone_app, tokens["refresh_token"])).status_code == 200
    assert (
        await client.post("/auth/refresh", json={"refresh_token": own["refresh_token"]})
    ).status_code == 200


@forgery
async def test_a_confidential_app_with_a_wrong_secret_is_refused_and_recorded(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser, server_app: App
) -> None:
    forged = App(server_app.id, server_app.client_id, "not-the-secret", "", {})
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        headers=forged.basic(),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")
    # In the form body instead of the header:
    posted = await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "x",
            "client_id": server_app.client_id,
            "client_secret": "not-the-secret",
        },
    )
    assert posted.status_code in (400, 401) and posted.json()["error"] == "invalid_client"
    failures = await events(services, tenant_a, "oauth.client_auth_failed")
    assert len(failures) >= 2


@forgery
async def test_revoking_a_refresh_token_ends_the_session(
    client: httpx.AsyncClient, tenant_a: TenantUser, phone_app: App
) -> None:
    tokens = await token_for(client, phone_app, tenant_a)
    revoked = await client.post(
        "/oauth/revoke",
        data={
            "token": tokens["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": phone_app.client_id,
        },
    )
    assert revoked.status_code == 200, revoked.text
    assert (await refresh(client, phone_app, tokens["refresh_token"])).status_code == 400
    # Revoking again, or revoking garbage, is still 200 (RFC 7009 section 2.2).
    for token in (tokens["refresh_token"], "garbage", "a" * 300):
        again = await client.post(
            "/oauth/revoke", data={"token": token, "client_id": phone_app.client_id}
        )
        assert again.status_code == 200


@forgery
async def test_revoking_an_access_token_ends_its_session(
    client: httpx.AsyncClient, tenant_a: TenantUser, phone_app: App, server_app: App
) -> None:
    tokens = await token_for(client, phone_app, tenant_a)
    revoked = await client.post(
        "/oauth/revoke",
        data={"token": tokens["access_token"], "client_id": phone_app.client_id},
    )
    assert revoked.status_code == 200
    assert (await refresh(client, phone_app, tokens["refresh_token"])).status_code == 400


@forgery
async def test_an_app_cannot_revoke_or_introspect_another_apps_tokens(
    client: httpx.AsyncClient, tenant_a: TenantUser, phone_app: App, server_app: App
) -> None:
    tokens = await token_for(client, phone_app, tenant_a)
    refused = await client.post(
        "/oauth/revoke", data={"token": tokens["refresh_token"]}, headers=server_app.basic()
    )
    assert refused.status_code == 400
    assert (await refresh(client, phone_app, tokens["refresh_token"])).status_code == 200
    looked = await client.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, headers=server_app.basic()
    )
    assert looked.status_code == 200 and looked.json() == {"active": False}
    # A public app cannot introspect at all (it cannot authenticate).
    public = await client.post(
        "/oauth/introspect",
        data={"token": tokens["access_token"], "client_id": phone_app.client_id},
    )
    assert public.status_code in (400, 401) and public.json()["error"] == "invalid_client"


@forgery
async def test_introspection_reports_live_and_revoked_tokens(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser, server_app: App
) -> None:
    tokens = await token_for(client, server_app, tenant_a)
    live = await client.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, headers=server_app.basic()
    )
    body = live.json()
    assert body["active"] is True
    assert body["client_id"] == server_app.client_id
    assert body["sub"] == str(tenant_a.user_id)
    assert body["scope"] == "crm.read openid"
    assert body["iss"] == services.settings.issuer
    as_refresh = await client.post(
        "/oauth/introspect",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        headers=server_app.basic(),
    )
    assert as_refresh.json()["active"] is True
    await client.post(
        "/oauth/revoke", data={"token": tokens["refresh_token"]}, headers=server_app.basic()
    )
    for token in (tokens["access_token"], tokens["refresh_token"], "garbage"):
        gone = await client.post(
            "/oauth/introspect", data={"token": token}, headers=server_app.basic()
        )
        assert gone.json() == {"active": False}
    # A first-party token is no app's to look at.
    own = await sign_in(client, tenant_a.slug, tenant_a.email, PASSWORD)
    first_party = await client.post(
        "/oauth/introspect", data={"token": own["access_token"]}, headers=server_app.basic()
    )
    assert first_party.json() == {"active": False}
