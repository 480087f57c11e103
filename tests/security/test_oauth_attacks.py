"""Attacks on the authorization endpoint and the code exchange, each really attempted:
PKCE missing / plain / wrong, redirect URIs that do not match exactly, unknown clients, code
replay and theft, implicit and password grants, scope escalation, repeated and malformed
parameters, forged consent handles."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from backend.runtime import Services
from tests.conftest import PASSWORD, Cluster, TenantUser, new_user
from tests.security.forgeries import forgery
from tests.security.oauth_helpers import (
    NATIVE_REDIRECT,
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
)

Json = dict[str, Any]
OTHER_REDIRECT = "http://127.0.0.1:53682/callback"


@pytest.fixture(scope="module")
async def app(client: httpx.AsyncClient, tenant_a: TenantUser) -> App:
    return await register(
        client,
        tenant_a,
        name="Attack Target",
        redirect_uris=[NATIVE_REDIRECT, OTHER_REDIRECT],
        scopes=["openid", "crm.read", "admin"],
    )


@pytest.fixture(scope="module")
async def other_app(client: httpx.AsyncClient, tenant_a: TenantUser) -> App:
    return await register(client, tenant_a, name="Another App")


@pytest.fixture(scope="module")
async def salesperson(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> TenantUser:
    return await new_user(services, client, tenant_a, f"rep-{uuid.uuid4().hex[:6]}")


async def events(services: Services, tenant: TenantUser, kind: str) -> list[Json]:
    async with services.db.tenant_transaction(tenant.tenant_id) as conn:
        rows = await conn.execute(
            text("select outcome, details from security_events where type = :t order by id"),
            {"t": kind},
        )
        return [{"outcome": r.outcome, **r.details} for r in rows]


def _no_redirect(response: httpx.Response) -> None:
    """An error page, never a redirect (the redirect URI cannot be trusted)."""
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "<form" not in response.text


# -- PKCE --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("challenge", "method"),
    [
        pytest.param(None, None, id="no challenge"),
        pytest.param("same-as-verifier", "plain", id="plain"),
        pytest.param("valid", None, id="method missing (RFC default: plain)"),
        pytest.param("valid", "S512", id="unknown method"),
        pytest.param("too-short", "S256", id="malformed challenge"),
        pytest.param(None, "S256", id="method without challenge"),
    ],
)
@forgery
async def test_authorization_without_s256_pkce_is_refused(
    client: httpx.AsyncClient, app: App, challenge: str | None, method: str | None
) -> None:
    pkce = Pkce.new()
    params = authorize_params(app, None)
    values = {"valid": pkce.challenge, "same-as-verifier": pkce.verifier, "too-short": "abc"}
    if challenge is not None:
        params["code_challenge"] = values[challenge]
    if method is not None:
        params["code_challenge_method"] = method
    response = await open_authorize(client, params)
    query = redirect_query(response)  # the client is genuine: it is told, at its redirect URI
    assert query["error"] == "invalid_request"
    assert query["state"] == params["state"]
    assert "code" not in query


@forgery
async def test_a_wrong_or_missing_verifier_gets_no_token_and_burns_the_code(
    client: httpx.AsyncClient, tenant_a: TenantUser, app: App
) -> None:
    for verifier in (None, Pkce.new().verifier, "x" * 43):
        pkce = Pkce.new()
        done = await authorize_as(client, app, tenant_a, pkce)
        refused = await exchange(client, app, done.code, verifier)
        assert refused.status_code == 400
        assert refused.json()["error"] in ("invalid_request", "invalid_grant")
        assert "access_token" not in refused.json()
        # The code was spent by the attempt: the right verifier is too late now.
        late = await exchange(client, app, done.code, pkce.verifier)
        assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


# -- redirect URIs and clients ------------------------------------------------------------------
@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        NATIVE_REDIRECT + "/more",
        NATIVE_REDIRECT + "?next=https://evil.example",
        NATIVE_REDIRECT + "#fragment",
        NATIVE_REDIRECT.upper(),
        NATIVE_REDIRECT.replace("/oauth/callback", "/oauth/callback/"),
        "http://127.0.0.1:9999/callback",
        OTHER_REDIRECT.replace("http://", "https://"),
        "com.example.caravan-app:/oauth/callback\x00",
        'com.example.caravan-app:/oauth/"callback',
        "com.example.caravän-app:/oauth/callback",
    ],
)
@forgery
async def test_a_redirect_uri_that_does_not_match_exactly_shows_an_error_page(
    client: httpx.AsyncClient, app: App, redirect_uri: str
) -> None:
    params = authorize_params(app, Pkce.new(), redirect_uri=redirect_uri)
    _no_redirect(await open_authorize(client, params))


@pytest.mark.parametrize(
    "client_id",
    [
        None,
        "",
        "unknown",
        f"{uuid.uuid4().hex}.{uuid.uuid4().hex}",
        "' or 1=1 --",
        "../../etc/passwd",
    ],
)
@forgery
async def test_an_unknown_client_shows_an_error_page(
    client: httpx.AsyncClient, app: App, client_id: str | None
) -> None:
    params = authorize_params(app, Pkce.new())
    params.pop("client_id")
    if client_id is not None:
        params["client_id"] = client_id
    _no_redirect(await open_authorize(client, params))


@forgery
async def test_a_missing_redirect_uri_is_not_guessed(client: httpx.AsyncClient, app: App) -> None:
    params = authorize_params(app, Pkce.new())
    params.pop("redirect_uri")
    _no_redirect(await open_authorize(client, params))


@forgery
async def test_a_deactivated_app_cannot_start_or_finish_an_authorization(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    doomed = await register(client, tenant_a, name="Soon Off")
    pkce = Pkce.new()
    done = await authorize_as(client, doomed, tenant_a, pkce)
    off = await client.patch(
        f"/api/v1/oauth-clients/{doomed.id}", json={"active": False}, headers=tenant_a.headers
    )
    assert off.status_code == 200, off.text
    _no_redirect(await open_authorize(client, authorize_params(doomed, Pkce.new())))
    late = await exchange(client, doomed, done.code, pkce.verifier)
    assert late.status_code in (400, 401) and late.json()["error"] == "invalid_client"


@forgery
async def test_the_code_is_bound_to_the_redirect_uri_it_was_issued_for(
    client: httpx.AsyncClient, tenant_a: TenantUser, app: App
) -> None:
    pkce = Pkce.new()
    done = await authorize_as(client, app, tenant_a, pkce)
    switched = await exchange(client, app, done.code, pkce.verifier, redirect_uri=OTHER_REDIRECT)
    assert switched.status_code == 400 and switched.json()["error"] == "invalid_grant"


@forgery
async def test_another_clients_code_is_refused_and_left_alone(
    client: httpx.AsyncClient, tenant_a: TenantUser, app: App, other_app: App
) -> None:
    pkce = Pkce.new()
    done = await authorize_as(client, app, tenant_a, pkce)
    stolen = await exchange(
        client, other_app, done.code, pkce.verifier, redirect_uri=NATIVE_REDIRECT
    )
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert (await exchange(client, app, done.code, pkce.verifier)).status_code == 200


@forgery
async def test_a_replayed_code_is_refused_and_revokes_what_it_issued(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser, app: App
) -> None:
    pkce = Pkce.new()
    done = await authorize_as(client, app, tenant_a, pkce)
    first = await exchange(client, app, done.code, pkce.verifier)
    assert first.status_code == 200
    tokens = first.json()
    replay = await exchange(client, app, done.code, pkce.verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # What the code gave is revoked: its refresh token is dead, introspection says inactive.
    assert (await refresh(client, app, tokens["refresh_token"])).json()["error"] == "invalid_grant"
    replays = await events(services, tenant_a, "oauth.code_replayed")
    assert replays and replays[-1]["session_revoked"] is True
    assert replays[-1]["outcome"] == "denied"


@forgery
async def test_an_expired_code_is_refused(
    cluster: Cluster, client: httpx.AsyncClient, tenant_a: TenantUser, app: App
) -> None:
    pkce = Pkce.new()
    done = await authorize_as(client, app, tenant_a, pkce)
    conn = await asyncpg.connect(cluster.urls.owner_url.replace("+asyncpg", "", 1))
    try:
        async with conn.transaction():
            await conn.execute(
                "select set_config('app.tenant_id', $1, true)", str(tenant_a.tenant_id)
            )
            await conn.execute(
                "update authorization_codes set expires_at = now() - interval '1 second' "
                "where used_at is null"
            )
    finally:
        await conn.close()
    late = await exchange(client, app, done.code, pkce.verifier)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


# -- grants and response types that do not exist ------------------------------------------------
@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "code token"])
@forgery
async def test_implicit_and_hybrid_responses_are_refused(
    client: httpx.AsyncClient, app: App, response_type: str
) -> None:
    params = authorize_params(app, Pkce.new(), response_type=response_type)
    response = await open_authorize(client, params)
    query = redirect_query(response)
    assert query["error"] in ("unsupported_response_type", "unauthorized_client")
    assert "access_token" not in response.headers["location"]


@pytest.mark.parametrize(
    "data",
    [
        {"grant_type": "password", "username": "x@example.com", "password": PASSWORD},
        {"grant_type": "implicit"},
        {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "e30.e30."},
        {"grant_type": "client_credentials"},
        {"grant_type": ""},
        {},
    ],
)
@forgery
async def test_grants_a_public_app_may_not_use_are_refused(
    client: httpx.AsyncClient, app: App, data: dict[str, str]
) -> None:
    response = await client.post("/oauth/token", data={**data, "client_id": app.client_id})
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] in (
        "unsupported_grant_type",
        "unauthorized_client",
        "invalid_client",
        "invalid_request",
    )
    assert "access_token" not in response.json()


# -- scopes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "scope", ["crm.write", "openid crm.export", "superuser", "crm.read admin!"]
)
@forgery
async def test_scopes_beyond_the_apps_allowance_are_refused(
    client: httpx.AsyncClient, app: App, scope: str
) -> None:
    params = authorize_params(app, Pkce.new(), scope=scope)
    query = redirect_query(await open_authorize(client, params))
    assert query["error"] == "invalid_scope"


@forgery
async def test_a_user_never_gets_a_scope_their_role_does_not_allow(
    client: httpx.AsyncClient, app: App, salesperson: TenantUser, tenant_a: TenantUser
) -> None:
    pkce = Pkce.new()
    done = await authorize_as(client, app, salesperson, pkce, scope="crm.read admin")
    consent_page = done.pages[-2]
    assert "<b>admin</b>" not in consent_page.text
    tokens = (await exchange(client, app, done.code, pkce.verifier)).json()
    assert tokens["scope"] == "crm.read"
    # The same app gives an admin the admin scope.
    admin_pkce = Pkce.new()
    admin_done = await authorize_as(client, app, tenant_a, admin_pkce, scope="crm.read admin")
    admin_tokens = (await exchange(client, app, admin_done.code, admin_pkce.verifier)).json()
    assert admin_tokens["scope"] == "admin crm.read"
    # ... and an app token without the admin scope cannot administer, even for an admin.
    plain = await client.get("/api/v1/oauth-clients", headers=bearer(tokens["access_token"]))
    assert plain.status_code == 403


# -- malformed requests ---------------------------------------------------------------------------
@forgery
async def test_repeated_parameters_are_refused(client: httpx.AsyncClient, app: App) -> None:
    params: list[tuple[str, str | int | float | bool | None]] = [
        *authorize_params(app, Pkce.new()).items(),
        ("scope", "crm.read"),
    ]
    page = await client.get("/oauth/authorize?" + str(httpx.QueryParams(params)))
    assert page.status_code == 400 and "location" not in page.headers
    token = await client.post(
        "/oauth/token",
        content="grant_type=authorization_code&code=a&code=b&client_id=" + app.client_id,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert token.status_code == 400 and token.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"grant_type": "client_credentials"}', "application/json"),
        (b"grant_type=\xff\xfe", "application/x-www-form-urlencoded"),
        (b"grant_type=%22quoted%22&client_id=%5C", "application/x-www-form-urlencoded"),
        (
            b"grant_type=refresh_token&refresh_token=" + b"a" * 5000,
            "application/x-www-form-urlencoded",
        ),
        (b"&".join(b"p%d=1" % i for i in range(500)), "application/x-www-form-urlencoded"),
    ],
)
@forgery
async def test_malformed_token_requests_are_oauth_errors_not_crashes(
    client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    response = await client.post(
        "/oauth/token", content=content, headers={"content-type": content_type}
    )
    assert response.status_code in (400, 401), response.text
    assert "error" in response.json()
    assert "Traceback" not in response.text


@forgery
async def test_malformed_basic_credentials_are_refused(client: httpx.AsyncClient) -> None:
    for value in ("Basic !!!", "Basic " + "/w==", "Basic Og==", "Basic " + "QQ==" * 300):
        response = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": value},
        )
        assert response.status_code in (400, 401), response.text
        assert response.json()["error"] in ("invalid_client", "invalid_request")


@pytest.mark.parametrize("handle", ["", "garbage", f"{uuid.uuid4().hex}.{'A' * 43}", "'; drop"])
@forgery
async def test_forged_consent_and_code_handles_show_an_error(
    client: httpx.AsyncClient, handle: str
) -> None:
    for step in ("consent", "mfa"):
        response = await client.post(
            "/oauth/authorize",
            data={"step": step, "handle": handle, "decision": "allow", "code": "123456"},
        )
        assert response.status_code == 400, response.text
        assert "location" not in response.headers


@forgery
async def test_the_sign_in_form_answers_wrong_credentials_without_redirecting(
    client: httpx.AsyncClient, app: App, tenant_a: TenantUser
) -> None:
    page = await open_authorize(client, authorize_params(app, Pkce.new()))
    wrong = await submit(client, page, {"email": tenant_a.email, "password": PASSWORD + "x"})
    assert wrong.status_code == 200  # the form again, with the error
    assert "The email or password is wrong." in wrong.text
    unknown = await submit(client, page, {"email": "ghost@nowhere.example", "password": PASSWORD})
    assert unknown.status_code == 200
    assert unknown.text == wrong.text  # the same answer for an unknown account
    assert form_of(wrong)[0] == form_of(page)[0]


@forgery
async def test_prompt_none_without_a_session_is_login_required(
    client: httpx.AsyncClient, app: App
) -> None:
    params = authorize_params(app, Pkce.new(), prompt="none")
    query = redirect_query(await open_authorize(client, params))
    assert query["error"] == "login_required" and query["state"] == params["state"]


@pytest.mark.parametrize(("name", "value"), [("nonce", "n" * 256), ("state", "s" * 1025)])
@forgery
async def test_oversized_nonce_or_state_is_refused(
    client: httpx.AsyncClient, app: App, name: str, value: str
) -> None:
    params = authorize_params(app, Pkce.new(), **{name: value})
    query = redirect_query(await open_authorize(client, params))
    assert query["error"] == "invalid_request"
    assert "code" not in query
