"""Devices: every sign-in is a device session a user can list and revoke; a tenant admin can
revoke all of a user's sessions and deactivate the user, whose access then ends at once (here
seen from a second server process, with a 2-second token lifetime and no clock leeway; the
revocation cases are in test_revocation.py)."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from backend.app import create_app
from backend.auth import retention
from backend.runtime import Services, build_services
from tests.conftest import PASSWORD, Cluster, TenantUser, gql, make_settings, new_user
from tests.security.oauth_helpers import bearer
from tests.security.test_oauth_attacks import events

Json = dict[str, Any]


async def _sign_in(http: httpx.AsyncClient, user: TenantUser, device: str) -> Json:
    response = await http.post(
        "/auth/sign-in",
        json={
            "tenant": user.slug,
            "email": user.email,
            "password": PASSWORD,
            "device_name": device,
        },
        headers={"user-agent": f"CaravanApp/1.0 ({device})"},
    )
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def _refresh(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/auth/refresh", json={"refresh_token": token})


@pytest.fixture(scope="module")
async def rep(services: Services, client: httpx.AsyncClient, tenant_a: TenantUser) -> TenantUser:
    return await new_user(services, client, tenant_a, f"dev-{uuid.uuid4().hex[:6]}")


async def test_a_user_lists_and_revokes_their_own_devices(
    services: Services, client: httpx.AsyncClient, rep: TenantUser
) -> None:
    phone = await _sign_in(client, rep, "Anna's phone")
    laptop = await _sign_in(client, rep, "Anna's laptop")
    listed = await client.get("/api/v1/me/sessions", headers=bearer(phone["access_token"]))
    assert listed.status_code == 200
    items = {d["name"]: d for d in listed.json()["items"]}
    assert {"Anna's phone", "Anna's laptop"} <= set(items)
    assert items["Anna's phone"]["current"] is True
    assert items["Anna's laptop"]["current"] is False
    assert items["Anna's laptop"]["user_agent"] == "CaravanApp/1.0 (Anna's laptop)"
    assert items["Anna's laptop"]["last_ip"] == "127.0.0.1"
    assert items["Anna's laptop"]["client_id"] is None

    laptop_id = items["Anna's laptop"]["id"]
    gone = await client.delete(
        f"/api/v1/me/sessions/{laptop_id}", headers=bearer(phone["access_token"])
    )
    assert gone.status_code == 204
    assert (await _refresh(client, laptop["refresh_token"])).status_code == 401
    assert (await _refresh(client, phone["refresh_token"])).status_code == 200
    revoked = await events(services, rep, "session.revoked")
    assert revoked and revoked[-1]["reason"] == "user_revoked"


async def test_another_users_device_is_not_found(
    client: httpx.AsyncClient, tenant_a: TenantUser, rep: TenantUser
) -> None:
    admin_devices = await client.get("/api/v1/me/sessions", headers=tenant_a.headers)
    theirs = admin_devices.json()["items"][0]["id"]
    for session_id in (theirs, str(uuid.uuid4())):
        answer = await client.delete(f"/api/v1/me/sessions/{session_id}", headers=rep.headers)
        assert answer.status_code == 404, answer.text
    # The admin's session is untouched.
    again = await client.get("/api/v1/me/sessions", headers=tenant_a.headers)
    assert theirs in [d["id"] for d in again.json()["items"]]
    garbage = await client.delete("/api/v1/me/sessions/not-a-uuid", headers=rep.headers)
    assert garbage.status_code in (400, 404)


async def test_only_admins_manage_other_users_sessions(
    client: httpx.AsyncClient, tenant_a: TenantUser, rep: TenantUser
) -> None:
    for method, path in (
        ("GET", f"/api/v1/users/{tenant_a.user_id}/sessions"),
        ("DELETE", f"/api/v1/users/{tenant_a.user_id}/sessions"),
        ("POST", f"/api/v1/users/{tenant_a.user_id}/deactivate"),
    ):
        answer = await client.request(method, path, headers=rep.headers)
        assert answer.status_code == 403, (path, answer.text)
    result = await gql(
        client,
        rep,
        f'mutation {{ deactivateUser(input: {{userId: "{tenant_a.user_id}"}}) {{ active }} }}',
    )
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_an_admin_revokes_every_session_of_a_user(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    victim = await new_user(services, client, tenant_a, f"lost-{uuid.uuid4().hex[:6]}")
    pairs = [await _sign_in(client, victim, f"device {i}") for i in range(3)]
    listed = await client.get(f"/api/v1/users/{victim.user_id}/sessions", headers=tenant_a.headers)
    assert len(listed.json()["items"]) >= 3
    answer = await client.delete(
        f"/api/v1/users/{victim.user_id}/sessions", headers=tenant_a.headers
    )
    assert answer.status_code == 200
    assert answer.json()["revoked"] >= 3
    for pair in pairs:
        assert (await _refresh(client, pair["refresh_token"])).status_code == 401
    # Another tenant's user cannot be reached (the same 404 as no user).
    foreign = await client.delete(
        f"/api/v1/users/{uuid.uuid4()}/sessions", headers=tenant_a.headers
    )
    assert foreign.status_code == 404


@pytest.fixture(scope="module")
async def short_lived(cluster: Cluster) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    """A second server process whose access tokens live 2 seconds, with no clock leeway."""
    services = build_services(
        make_settings(cluster, access_token_ttl_seconds=2, token_leeway_seconds=0),
        cluster.urls.app_url,
    )
    transport = httpx.ASGITransport(app=create_app(services))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield services, http
    await services.db.dispose()


async def test_a_deactivated_users_access_ends_within_the_token_lifetime(
    services: Services,
    client: httpx.AsyncClient,
    tenant_a: TenantUser,
    short_lived: tuple[Services, httpx.AsyncClient],
) -> None:
    short_services, http = short_lived
    ttl = short_services.settings.access_token_ttl_seconds
    leaver = await new_user(services, client, tenant_a, f"leaver-{uuid.uuid4().hex[:6]}")
    tokens = await _sign_in(http, leaver, "work phone")
    issued = time.time()

    deactivated = await client.post(
        f"/api/v1/users/{leaver.user_id}/deactivate", headers=tenant_a.headers
    )
    assert deactivated.status_code == 200, deactivated.text
    assert deactivated.json()["sessions_revoked"] >= 1
    # At once: no refresh, no new sign-in (the same 401 as a wrong password).
    assert (await _refresh(http, tokens["refresh_token"])).status_code == 401
    again = await http.post(
        "/auth/sign-in", json={"tenant": leaver.slug, "email": leaver.email, "password": PASSWORD}
    )
    assert again.status_code == 401 and again.json()["code"] == "invalid_credentials"

    # The access token already issued is stateless: measure when it stops working.
    stopped = None
    while time.time() - issued < ttl + 3:
        answer = await http.get("/api/v1/contacts", headers=bearer(tokens["access_token"]))
        if answer.status_code == 401:
            stopped = time.time() - issued
            break
        assert answer.status_code == 200
        await asyncio.sleep(0.2)
    assert stopped is not None, "the access token outlived its lifetime"
    assert stopped <= ttl + 1.5  # the lifetime, plus polling and scheduling slack
    assert await events(services, tenant_a, "user.deactivated")

    # An admin cannot lock themselves out; reactivating restores sign-in.
    self_off = await client.post(
        f"/api/v1/users/{tenant_a.user_id}/deactivate", headers=tenant_a.headers
    )
    assert self_off.status_code == 409
    back = await client.post(f"/api/v1/users/{leaver.user_id}/activate", headers=tenant_a.headers)
    assert back.status_code == 200
    assert (await _sign_in(http, leaver, "new phone"))["access_token"]


async def test_devices_over_graphql(client: httpx.AsyncClient, rep: TenantUser) -> None:
    pair = await _sign_in(client, rep, "tablet")
    viewer = TenantUser(rep.tenant_id, rep.slug, rep.user_id, rep.email, pair["access_token"])
    listed = await gql(client, viewer, "{ mySessions { id name current clientId } }")
    sessions = listed["data"]["mySessions"]
    current = [s for s in sessions if s["current"]]
    assert len(current) == 1 and current[0]["name"] == "tablet"
    revoked = await gql(
        client,
        viewer,
        "mutation($id: ID!) { revokeSession(input: {id: $id}) { revoked } }",
        {"id": current[0]["id"]},
    )
    assert revoked["data"]["revokeSession"]["revoked"] == 1
    assert (await _refresh(client, pair["refresh_token"])).status_code == 401


async def _count(cluster: Cluster, tenant: TenantUser, sql: str, *args: Any) -> int:
    conn = await asyncpg.connect(cluster.urls.owner_url.replace("+asyncpg", "", 1))
    try:
        async with conn.transaction():
            tenant_id = str(tenant.tenant_id)
            await conn.execute("select set_config('app.tenant_id', $1, true)", tenant_id)
            count: int = await conn.fetchval(sql, *args)
            return count
    finally:
        await conn.close()


async def test_old_refresh_tokens_flows_and_codes_are_pruned(
    cluster: Cluster, services: Services, client: httpx.AsyncClient, rep: TenantUser
) -> None:
    """Short-lived rows go a day after they end (the sessions themselves stay as history)."""
    old = await _sign_in(client, rep, "old phone")
    fresh = await _sign_in(client, rep, "new phone")
    old_hash = hashlib.sha256(old["refresh_token"].encode()).hexdigest()
    aged = await _count(
        cluster,
        rep,
        "with aged as (update refresh_tokens set expires_at = now() - interval '2 days' "
        "where token_hash = $1 returning 1) select count(*) from aged",
        old_hash,
    )
    assert aged == 1
    async with services.db.tenant_transaction(rep.tenant_id) as tx:
        await retention.prune_tenant(tx, rep.tenant_id)
        await retention.prune_throttle(tx)
    count = "select count(*) from refresh_tokens where token_hash = $1"
    assert await _count(cluster, rep, count, old_hash) == 0
    fresh_hash = hashlib.sha256(fresh["refresh_token"].encode()).hexdigest()
    assert await _count(cluster, rep, count, fresh_hash) == 1
    assert (await _refresh(client, fresh["refresh_token"])).status_code == 200
