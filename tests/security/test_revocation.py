"""Revocation bites on the next request: once a user is deactivated, a device session revoked
(by its user, by an admin, by refresh-token reuse detection) or an app revokes a token at
/oauth/revoke, the access tokens concerned are refused 401 `invalid_token` at once - REST reads
and writes, GraphQL, /oauth/userinfo, Idempotency-Key retries - and introspection says
`active: false`. Client-credentials tokens are revocable too. Other server processes learn of a
revocation through LISTEN/NOTIFY at once, or by polling when they cannot listen."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from backend.app import create_app
from backend.runtime import Services, build_services
from tests.conftest import PASSWORD, Cluster, TenantUser, make_settings, new_user, sign_in
from tests.security.oauth_helpers import App, bearer, refresh, register, token_for

Json = dict[str, Any]
READ = "{ contacts(first: 1) { edges { node { id } } } }"
_UNAUTHENTICATED = {"code": "UNAUTHENTICATED", "reason": "invalid_token"}
WRITE = 'mutation { createContact(input: {lastName: "Ghost"}) { contact { id } errors { code } } }'


@dataclass(frozen=True)
class Answers:
    """How each door answers one access token."""

    rest_read: int
    rest_write: int
    idempotent_write: int
    graphql_read: Json
    graphql_write: Json

    def all_refused(self) -> bool:
        graphql = [self.graphql_read, self.graphql_write]
        return (
            {self.rest_read, self.rest_write, self.idempotent_write} == {401}
            and all(g.get("data") is None for g in graphql)
            and all(g["errors"][0]["extensions"] == _UNAUTHENTICATED for g in graphql)
        )

    def all_accepted(self) -> bool:
        return (
            self.rest_read == 200
            and self.rest_write == 201
            and self.idempotent_write == 201
            and "errors" not in self.graphql_read
            and "errors" not in self.graphql_write
        )


async def _gql(client: httpx.AsyncClient, token: str, query: str) -> Json:
    response = await client.post("/graphql", json={"query": query}, headers=bearer(token))
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def _answers(client: httpx.AsyncClient, token: str) -> Answers:
    headers = bearer(token)
    read = await client.get("/api/v1/contacts", headers=headers)
    write = await client.post("/api/v1/contacts", json={"last_name": "Ghost"}, headers=headers)
    retried = await client.post(
        "/api/v1/contacts",
        json={"last_name": "Ghost"},
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    for refused in (read, write, retried):
        if refused.status_code == 401:
            assert refused.json()["code"] == "invalid_token", refused.text
    return Answers(
        read.status_code,
        write.status_code,
        retried.status_code,
        await _gql(client, token, READ),
        await _gql(client, token, WRITE),
    )


async def _userinfo(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/oauth/userinfo", headers=bearer(token))


async def _rest_status(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get("/api/v1/contacts", headers=bearer(token))).status_code


async def _introspect(client: httpx.AsyncClient, app: App, token: str) -> Json:
    response = await client.post("/oauth/introspect", data={"token": token}, headers=app.basic())
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def _device_sign_in(client: httpx.AsyncClient, user: TenantUser, device: str) -> Json:
    response = await client.post(
        "/auth/sign-in",
        json={
            "tenant": user.slug,
            "email": user.email,
            "password": PASSWORD,
            "device_name": device,
        },
    )
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


@pytest.fixture(scope="module")
async def web_app(client: httpx.AsyncClient, tenant_a: TenantUser) -> App:
    """A confidential app: it can authenticate, so it can also introspect its tokens."""
    return await register(
        client,
        tenant_a,
        name="Revocation web app",
        client_type="confidential",
        redirect_uris=["https://crm-web.example.com/cb"],
        scopes=["openid", "profile", "email", "crm.read", "crm.write"],
    )


@pytest.fixture(scope="module")
async def robot(client: httpx.AsyncClient, tenant_a: TenantUser) -> App:
    return await register(
        client,
        tenant_a,
        name="Revocation robot",
        client_type="confidential",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scopes=["crm.read", "crm.write"],
        role="sales_manager",
    )


async def _robot_token(client: httpx.AsyncClient, app: App) -> str:
    response = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=app.basic()
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def _user(services: Services, client: httpx.AsyncClient, tenant: TenantUser) -> TenantUser:
    return await new_user(services, client, tenant, f"rv-{uuid.uuid4().hex[:8]}")


# -- deactivation ------------------------------------------------------------------------------
async def test_deactivation_refuses_the_users_tokens_everywhere_at_once(
    services: Services,
    client: httpx.AsyncClient,
    tenant_a: TenantUser,
    web_app: App,
) -> None:
    leaver = await _user(services, client, tenant_a)
    await client.put(
        f"/api/v1/users/{leaver.user_id}/roles",
        json={"role_ids": [(await _role_id(client, tenant_a, "sales_manager"))]},
        headers=tenant_a.headers,
    )
    first_party = (await _device_sign_in(client, leaver, "phone"))["access_token"]
    app_token = (await token_for(client, web_app, leaver, scope="openid crm.read crm.write"))[
        "access_token"
    ]
    assert (await _answers(client, first_party)).all_accepted()
    assert (await _userinfo(client, app_token)).status_code == 200
    assert (await _introspect(client, web_app, app_token))["active"] is True

    off = await client.post(f"/api/v1/users/{leaver.user_id}/deactivate", headers=tenant_a.headers)
    assert off.status_code == 200, off.text

    # The very next request with either token is refused, on every door.
    assert (await _answers(client, first_party)).all_refused()
    assert (await _answers(client, app_token)).all_refused()
    info = await _userinfo(client, app_token)
    assert info.status_code == 401 and info.json()["error"] == "invalid_token"
    assert await _introspect(client, web_app, app_token) == {"active": False}

    # Reactivated: the old tokens stay dead; a new sign-in works.
    back = await client.post(f"/api/v1/users/{leaver.user_id}/activate", headers=tenant_a.headers)
    assert back.status_code == 200
    assert (await _answers(client, first_party)).all_refused()
    assert await _rest_status(client, app_token) == 401
    fresh = (await _device_sign_in(client, leaver, "new phone"))["access_token"]
    assert (await _answers(client, fresh)).all_accepted()


async def _role_id(client: httpx.AsyncClient, admin: TenantUser, name: str) -> str:
    roles = await client.get("/api/v1/roles", headers=admin.headers)
    found: str = next(r["id"] for r in roles.json()["items"] if r["name"] == name)
    return found


async def test_deactivation_over_graphql_bites_at_once(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    leaver = await _user(services, client, tenant_a)
    assert await _rest_status(client, leaver.token) == 200
    result = await _gql(
        client,
        tenant_a.token,
        f'mutation {{ deactivateUser(input: {{userId: "{leaver.user_id}"}}) {{ active }} }}',
    )
    assert result["data"]["deactivateUser"]["active"] is False, result
    assert await _rest_status(client, leaver.token) == 401


# -- sessions and devices ----------------------------------------------------------------------
async def test_revoking_a_device_refuses_its_tokens_only(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    rep = await _user(services, client, tenant_a)
    phone = await _device_sign_in(client, rep, "phone")
    laptop = await _device_sign_in(client, rep, "laptop")
    listed = await client.get("/api/v1/me/sessions", headers=bearer(phone["access_token"]))
    laptop_id = next(d["id"] for d in listed.json()["items"] if d["name"] == "laptop")
    assert await _rest_status(client, laptop["access_token"]) == 200

    gone = await client.delete(
        f"/api/v1/me/sessions/{laptop_id}", headers=bearer(phone["access_token"])
    )
    assert gone.status_code == 204
    assert (await _answers(client, laptop["access_token"])).all_refused()
    assert await _rest_status(client, phone["access_token"]) == 200

    # Signing the current device out over GraphQL: its own token dies with it.
    current = next(d["id"] for d in listed.json()["items"] if d["current"])
    signed_out = await _gql(
        client,
        phone["access_token"],
        f'mutation {{ revokeSession(input: {{id: "{current}"}}) {{ revoked }} }}',
    )
    assert signed_out["data"]["revokeSession"]["revoked"] == 1, signed_out
    assert await _rest_status(client, phone["access_token"]) == 401


async def test_an_admin_revoking_all_sessions_refuses_tokens_and_kills_the_calendar_feed(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    rep = await _user(services, client, tenant_a)
    tablet = (await _device_sign_in(client, rep, "tablet"))["access_token"]
    feed = await client.post("/api/v1/me/calendar-feed", headers=rep.headers)
    assert feed.status_code == 201, feed.text
    feed_path = urlsplit(feed.json()["url"]).path
    assert (await client.get(feed_path)).status_code == 200

    cut = await client.delete(f"/api/v1/users/{rep.user_id}/sessions", headers=tenant_a.headers)
    assert cut.status_code == 200 and cut.json()["revoked"] >= 2
    for token in (rep.token, tablet):
        assert (await _answers(client, token)).all_refused()
    assert (await client.get(feed_path)).status_code == 404
    # The user signs in again and may make a new feed; the old URL stays dead.
    again = TenantUser(
        rep.tenant_id,
        rep.slug,
        rep.user_id,
        rep.email,
        (await sign_in(client, rep.slug, rep.email, PASSWORD))["access_token"],
    )
    renewed = await client.post("/api/v1/me/calendar-feed", headers=again.headers)
    assert renewed.status_code == 201
    assert (await client.get(urlsplit(renewed.json()["url"]).path)).status_code == 200
    assert (await client.get(feed_path)).status_code == 404


async def test_deactivation_kills_the_calendar_feed_for_good(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    rep = await _user(services, client, tenant_a)
    feed = await client.post("/api/v1/me/calendar-feed", headers=rep.headers)
    feed_path = urlsplit(feed.json()["url"]).path
    assert (await client.get(feed_path)).status_code == 200
    off = await client.post(f"/api/v1/users/{rep.user_id}/deactivate", headers=tenant_a.headers)
    assert off.status_code == 200
    assert (await client.get(feed_path)).status_code == 404
    back = await client.post(f"/api/v1/users/{rep.user_id}/activate", headers=tenant_a.headers)
    assert back.status_code == 200
    assert (await client.get(feed_path)).status_code == 404  # not revived by reactivation


async def test_refresh_token_reuse_refuses_the_familys_access_tokens(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    rep = await _user(services, client, tenant_a)
    first = await _device_sign_in(client, rep, "phone")
    other_device = await _device_sign_in(client, rep, "laptop")
    rotated = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    second = rotated.json()
    assert await _rest_status(client, second["access_token"]) == 200

    replayed = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replayed.status_code == 401 and replayed.json()["code"] == "refresh_token_reused"
    for token in (first["access_token"], second["access_token"]):
        assert (await _answers(client, token)).all_refused()
    assert await _rest_status(client, other_device["access_token"]) == 200


async def test_app_refresh_token_reuse_refuses_the_familys_access_tokens(
    client: httpx.AsyncClient, tenant_a: TenantUser, web_app: App
) -> None:
    first = await token_for(client, web_app, tenant_a)
    second = (await refresh(client, web_app, first["refresh_token"])).json()
    assert await _rest_status(client, second["access_token"]) == 200
    stolen = await refresh(client, web_app, first["refresh_token"])
    assert stolen.status_code == 400
    for token in (first["access_token"], second["access_token"]):
        assert await _rest_status(client, token) == 401
        assert (await _userinfo(client, token)).status_code == 401
        assert await _introspect(client, web_app, token) == {"active": False}


# -- apps: RFC 7009 ----------------------------------------------------------------------------
async def test_an_app_revoking_its_access_token_ends_it_at_once(
    client: httpx.AsyncClient, tenant_a: TenantUser, web_app: App
) -> None:
    tokens = await token_for(client, web_app, tenant_a)
    access = tokens["access_token"]
    assert (await _userinfo(client, access)).status_code == 200
    revoked = await client.post(
        "/oauth/revoke",
        data={"token": access, "token_type_hint": "access_token"},
        headers=web_app.basic(),
    )
    assert revoked.status_code == 200, revoked.text
    assert await _introspect(client, web_app, access) == {"active": False}
    assert (await _answers(client, access)).all_refused()
    assert (await _userinfo(client, access)).status_code == 401
    # The session went with it: its refresh token is dead too.
    assert (await refresh(client, web_app, tokens["refresh_token"])).status_code == 400


async def test_client_credentials_tokens_can_be_revoked(
    client: httpx.AsyncClient, tenant_a: TenantUser, robot: App
) -> None:
    token = await _robot_token(client, robot)
    kept = await _robot_token(client, robot)
    assert (await _answers(client, token)).all_accepted()
    assert (await _introspect(client, robot, token))["active"] is True

    revoked = await client.post("/oauth/revoke", data={"token": token}, headers=robot.basic())
    assert revoked.status_code == 200
    assert await _introspect(client, robot, token) == {"active": False}
    assert (await _answers(client, token)).all_refused()
    # Only that token: the app's other token still works.
    assert await _rest_status(client, kept) == 200


async def test_deactivating_or_deleting_an_app_ends_its_client_credentials_tokens(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    app = await register(
        client,
        tenant_a,
        name="Short-lived robot",
        client_type="confidential",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scopes=["crm.read"],
        role="auditor",
    )
    token = await _robot_token(client, app)
    assert await _rest_status(client, token) == 200
    paused = await client.patch(
        f"/api/v1/oauth-clients/{app.id}", json={"active": False}, headers=tenant_a.headers
    )
    assert paused.status_code == 200, paused.text
    assert await _rest_status(client, token) == 401

    resumed = await client.patch(
        f"/api/v1/oauth-clients/{app.id}", json={"active": True}, headers=tenant_a.headers
    )
    assert resumed.status_code == 200
    assert await _rest_status(client, token) == 401  # stays dead
    second = await _robot_token(client, app)
    assert await _rest_status(client, second) == 200
    deleted = await client.delete(f"/api/v1/oauth-clients/{app.id}", headers=tenant_a.headers)
    assert deleted.status_code == 204
    assert await _rest_status(client, second) == 401


# -- other server processes --------------------------------------------------------------------
@pytest.fixture
async def other_process(cluster: Cluster) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    """A second server process on the same database (its own caches)."""
    other = build_services(make_settings(cluster), cluster.urls.app_url)
    transport = httpx.ASGITransport(app=create_app(other))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield other, http
    await other.db.dispose()


async def _refused_within(http: httpx.AsyncClient, token: str, seconds: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if await _rest_status(http, token) == 401:
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    raise AssertionError(f"the revoked token still worked after {seconds} s")


async def test_another_process_hears_a_revocation_at_once(
    services: Services,
    client: httpx.AsyncClient,
    tenant_a: TenantUser,
    other_process: tuple[Services, httpx.AsyncClient],
) -> None:
    other, http = other_process
    revocations = other.tokens.revocations
    assert revocations is not None
    # No polling to fall back on within this test: only the notification can tell it.
    revocations.reload_seconds = revocations.unheard_reload_seconds = 600
    await revocations.start()
    start = time.monotonic()
    while not revocations.listening:
        assert time.monotonic() - start < 10, "the listener did not start"
        await asyncio.sleep(0.02)

    rep = await _user(services, client, tenant_a)
    assert await _rest_status(http, rep.token) == 200
    cut = await client.delete(f"/api/v1/users/{rep.user_id}/sessions", headers=tenant_a.headers)
    assert cut.status_code == 200
    # Far sooner than the 600-second poll: it was told.
    assert await _refused_within(http, rep.token, 10.0) < 5.0


async def test_a_process_that_cannot_listen_polls(
    services: Services,
    client: httpx.AsyncClient,
    tenant_a: TenantUser,
    other_process: tuple[Services, httpx.AsyncClient],
) -> None:
    other, http = other_process
    revocations = other.tokens.revocations
    assert revocations is not None and not revocations.listening
    revocations.unheard_reload_seconds = 0.3
    rep = await _user(services, client, tenant_a)
    assert await _rest_status(http, rep.token) == 200
    off = await client.post(f"/api/v1/users/{rep.user_id}/deactivate", headers=tenant_a.headers)
    assert off.status_code == 200
    assert await _refused_within(http, rep.token, 10.0) < 5.0


# -- the revocation rows -----------------------------------------------------------------------
async def test_the_app_role_cannot_take_a_revocation_back(
    cluster: Cluster, services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    rep = await _user(services, client, tenant_a)
    cut = await client.delete(f"/api/v1/users/{rep.user_id}/sessions", headers=tenant_a.headers)
    assert cut.status_code == 200
    conn = await asyncpg.connect(cluster.urls.app_url.replace("+asyncpg", "", 1))
    try:
        assert await conn.fetchval("select count(*) from token_revocations") >= 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("delete from token_revocations")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("update token_revocations set subject = 'x'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("truncate token_revocations")
    finally:
        await conn.close()
    assert await _rest_status(client, rep.token) == 401
