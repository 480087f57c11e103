"""The whole authorization-code + PKCE flow as a native app runs it: register the app, open the
authorize page, sign in through its form, consent, follow the redirect, exchange the code, call
REST and GraphQL with the token (and only within its scopes), refresh, read userinfo and verify
the ID token against the published keys."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from joserfc import jwt
from joserfc.jwk import KeySet

from backend.runtime import Services
from tests.conftest import PASSWORD, TenantUser, gql
from tests.security.oauth_helpers import (
    App,
    Pkce,
    authorize_as,
    authorize_params,
    bearer,
    exchange,
    form_of,
    open_authorize,
    redirect_query,
    refresh,
    register,
    submit,
    token_for,
)

Json = dict[str, Any]


@pytest.fixture(scope="module")
async def native_app(client: httpx.AsyncClient, tenant_a: TenantUser) -> App:
    return await register(client, tenant_a, name="Caravan Field (iOS)")


def _unverified(token: str) -> tuple[Json, Json]:
    decoded = jwt.decode(token, _jwks_cache["keys"], algorithms=["ES256"])
    return dict(decoded.header), dict(decoded.claims)


_jwks_cache: dict[str, KeySet] = {}


async def _load_jwks(client: httpx.AsyncClient) -> KeySet:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = KeySet.import_key_set(response.json())
    _jwks_cache["keys"] = keys
    return keys


async def test_a_native_app_signs_a_user_in_with_pkce_and_calls_both_apis(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser, native_app: App
) -> None:
    pkce = Pkce.new()
    params = authorize_params(native_app, pkce, nonce="n-0S6_WzA2Mj")

    # 1. The authorize page: a sign-in form naming the app and what it asks for.
    page = await open_authorize(client, params)
    assert page.status_code == 200
    assert "Caravan Field (iOS)" in page.text and "crm.read" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"

    # 2. Sign in through the form, 3. consent, 4. the redirect back to the app with a code.
    signed_in = await submit(client, page, {"email": tenant_a.email, "password": PASSWORD})
    assert signed_in.status_code == 200 and "Allow access?" in signed_in.text
    action, hidden = form_of(signed_in)
    redirect = await client.post(action, data={**hidden, "decision": "allow"})
    query = redirect_query(redirect)
    assert redirect.headers["location"].startswith(native_app.redirect_uri + "?")
    assert query["state"] == params["state"]
    assert query["iss"] == services.settings.issuer  # RFC 9207
    assert query["code"].startswith(tenant_a.tenant_id.hex + ".")

    # 5. The code for tokens.
    response = await exchange(client, native_app, query["code"], pkce.verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == services.settings.access_token_ttl_seconds
    assert tokens["scope"] == "crm.read openid"
    assert {"access_token", "refresh_token", "id_token"} <= set(tokens)

    # The access token names the app, its scopes and the device session.
    await _load_jwks(client)
    header, claims = _unverified(tokens["access_token"])
    assert header["typ"] == "at+jwt"
    assert claims["scope"] == "crm.read openid"
    assert claims["client_id"] == native_app.client_id
    assert claims["sub"] == str(tenant_a.user_id)
    assert claims["sid"]

    # 6. REST and GraphQL with the token: reads work, writes are beyond its scope.
    headers = bearer(tokens["access_token"])
    listed = await client.get("/api/v1/contacts", headers=headers)
    assert listed.status_code == 200, listed.text
    created = await client.post("/api/v1/contacts", json={"last_name": "Nope"}, headers=headers)
    assert created.status_code == 403
    assert created.json()["code"] == "insufficient_scope"
    app_user = TenantUser(
        tenant_a.tenant_id, tenant_a.slug, tenant_a.user_id, tenant_a.email, tokens["access_token"]
    )
    read = await gql(client, app_user, "{ contacts(first: 1) { edges { node { id } } } }")
    assert "errors" not in read, read
    write = await gql(
        client,
        app_user,
        'mutation { createContact(input: {lastName: "Nope"}) { contact { id } } }',
    )
    assert write["data"] is None
    assert write["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert write["errors"][0]["extensions"]["reason"] == "insufficient_scope"

    # 7. The ID token: for this app, this user, this nonce, verifiable with the JWKS.
    id_header, id_claims = _unverified(tokens["id_token"])
    assert id_header["typ"] == "JWT"
    assert id_claims["aud"] == native_app.client_id
    assert id_claims["iss"] == services.settings.issuer
    assert id_claims["sub"] == str(tenant_a.user_id)
    assert id_claims["nonce"] == "n-0S6_WzA2Mj"
    assert id_claims["amr"] == ["pwd"]
    assert abs(id_claims["auth_time"] - time.time()) < 60

    # 8. userinfo (openid, but neither email nor profile: only the subject).
    info = await client.get("/oauth/userinfo", headers=headers)
    assert info.status_code == 200
    assert info.json() == {"sub": str(tenant_a.user_id), "tenant": str(tenant_a.tenant_id)}

    # 9. Refresh: a new pair; the used refresh token is spent.
    renewed = await refresh(client, native_app, tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    second = renewed.json()
    assert second["refresh_token"] != tokens["refresh_token"]
    assert second["scope"] == "crm.read openid"
    assert (await client.get("/api/v1/contacts", headers=bearer(second["access_token"]))).is_success

    # 10. The user sees the app among their devices.
    devices = await client.get("/api/v1/me/sessions", headers=tenant_a.headers)
    assert devices.status_code == 200
    named = [d for d in devices.json()["items"] if d["client_id"] == native_app.client_id]
    assert named and named[0]["client_name"] == "Caravan Field (iOS)"


async def test_scopes_can_be_narrowed_but_never_widened(
    client: httpx.AsyncClient, tenant_a: TenantUser, native_app: App
) -> None:
    tokens = await token_for(client, native_app, tenant_a, scope="openid email profile crm.read")
    narrowed = await refresh(client, native_app, tokens["refresh_token"], scope="crm.read")
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "crm.read"
    assert "id_token" not in narrowed.json()
    # Asking for more than was granted on refresh is refused, and does not spend the token.
    wider = await refresh(client, native_app, narrowed.json()["refresh_token"], scope="crm.write")
    assert wider.status_code == 400
    assert wider.json()["error"] == "invalid_scope"
    still = await refresh(client, native_app, narrowed.json()["refresh_token"])
    assert still.status_code == 200, still.text


async def test_email_and_profile_claims_follow_the_scopes(
    client: httpx.AsyncClient, tenant_a: TenantUser, native_app: App
) -> None:
    tokens = await token_for(client, native_app, tenant_a, scope="openid email profile")
    await _load_jwks(client)
    _, claims = _unverified(tokens["id_token"])
    assert claims["email"] == tenant_a.email
    assert claims["name"] == "Administrator"
    info = (await client.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))).json()
    assert info["email"] == tenant_a.email and info["name"] == "Administrator"
    # A token without openid gets nothing from userinfo.
    plain = await token_for(client, native_app, tenant_a, scope="crm.read")
    refused = await client.get("/oauth/userinfo", headers=bearer(plain["access_token"]))
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_scope"
    anonymous = await client.get("/oauth/userinfo")
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_token"


async def test_the_user_can_deny(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser, native_app: App
) -> None:
    params = authorize_params(native_app, Pkce.new())
    page = await open_authorize(client, params)
    consent = await submit(client, page, {"email": tenant_a.email, "password": PASSWORD})
    action, hidden = form_of(consent)
    denied = await client.post(action, data={**hidden, "decision": "deny"})
    query = redirect_query(denied)
    assert query["error"] == "access_denied"
    assert (query["state"], query["iss"]) == (params["state"], services.settings.issuer)
    assert "code" not in query
    # The consent form is single use: allowing afterwards changes nothing.
    again = await client.post(action, data={**hidden, "decision": "allow"})
    assert again.status_code == 400 and "expired" in again.text


async def test_a_confidential_web_app_uses_its_secret(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    app = await register(
        client,
        tenant_a,
        name="Partner Portal",
        client_type="confidential",
        redirect_uris=["https://portal.example.com/cb"],
    )
    assert app.secret and len(app.secret) >= 40
    pkce = Pkce.new()
    done = await authorize_as(client, app, tenant_a, pkce)
    # Without its secret the exchange is refused (and nothing is spent: the client failed first).
    no_secret = await client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": done.code,
            "redirect_uri": app.redirect_uri,
            "code_verifier": pkce.verifier,
            "client_id": app.client_id,
        },
    )
    assert no_secret.status_code in (400, 401)
    assert no_secret.json()["error"] == "invalid_client"
    ok = await exchange(client, app, done.code, pkce.verifier)
    assert ok.status_code == 200, ok.text


async def test_discovery_documents_are_valid_and_name_only_what_is_supported(
    services: Services, client: httpx.AsyncClient
) -> None:
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        response = await client.get(path)
        assert response.status_code == 200
        body = response.json()
        AuthorizationServerMetadata(body).validate()
        issuer = services.settings.issuer
        assert body["issuer"] == issuer
        assert body["token_endpoint"] == f"{issuer}/oauth/token"
        assert body["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
        assert body["response_types_supported"] == ["code"]
        assert body["code_challenge_methods_supported"] == ["S256"]
        assert "implicit" not in body["grant_types_supported"]
        assert "password" not in body["grant_types_supported"]
        assert {"crm.read", "crm.write", "crm.export", "audit.read", "admin"} <= set(
            body["scopes_supported"]
        )
