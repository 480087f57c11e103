"""Every sign-in, failure, token issue, refresh, revocation, reuse, consent and app change leaves
a security event, with who, from where and which request; failures survive the refusal."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text

from backend.runtime import Services
from tests.conftest import PASSWORD, TenantUser, new_tenant
from tests.security.oauth_helpers import refresh, register, token_for

Json = dict[str, Any]


async def _log(services: Services, tenant: TenantUser) -> list[Json]:
    async with services.db.tenant_transaction(tenant.tenant_id) as conn:
        rows = await conn.execute(
            text(
                "select type, outcome, actor_user_id, actor_client_id, subject_user_id, "
                "request_id, channel, source_ip, details from security_events order by id"
            )
        )
        return [dict(r._mapping) for r in rows]


async def test_the_sign_in_story_is_recorded(services: Services, client: httpx.AsyncClient) -> None:
    tenant = await new_tenant(services, client, "events")
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    failed = await client.post(
        "/auth/sign-in",
        json={"tenant": tenant.slug, "email": tenant.email, "password": "wrong password"},
        headers={"x-request-id": request_id},
    )
    assert failed.status_code == 401
    pair = (
        await client.post(
            "/auth/sign-in",
            json={"tenant": tenant.slug, "email": tenant.email, "password": PASSWORD},
        )
    ).json()
    rotated = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert rotated.status_code == 200
    reused = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert reused.status_code == 401

    app = await register(client, tenant, name="Event App")
    tokens = await token_for(client, app, tenant)
    assert (await refresh(client, app, tokens["refresh_token"])).status_code == 200
    await client.post(
        "/oauth/revoke", data={"token": tokens["access_token"], "client_id": app.client_id}
    )

    log = await _log(services, tenant)
    kinds = [e["type"] for e in log]
    for expected in (
        "auth.sign_in_failed",
        "auth.sign_in",
        "token.refreshed",
        "token.reuse_detected",
        "client.created",
        "oauth.consent_granted",
        "token.issued",
        "token.revoked",
    ):
        assert expected in kinds, (expected, kinds)
    failure = next(e for e in log if e["type"] == "auth.sign_in_failed")
    assert failure["outcome"] == "failure"
    assert failure["subject_user_id"] == tenant.user_id
    assert failure["request_id"] == request_id
    assert failure["source_ip"] == "127.0.0.1" and failure["channel"] == "rest"
    assert PASSWORD not in str(log) and "wrong password" not in str(log)
    issued = next(e for e in log if e["type"] == "token.issued")
    assert issued["actor_client_id"] == uuid.UUID(app.id)
    assert issued["details"]["grant_type"] == "authorization_code"
    assert issued["channel"] == "oauth"
    reuse = next(e for e in log if e["type"] == "token.reuse_detected")
    assert reuse["outcome"] == "denied"
    # No token, code or secret ever lands in the log.
    flat = str(log)
    for secret in (pair["refresh_token"], tokens["refresh_token"], tokens["access_token"]):
        assert secret not in flat
