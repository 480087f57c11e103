"""The signing-key ring: rotation publishes the new key before it signs, the old key verifies
until its tokens expire and then leaves the JWKS, another server process sees a rotation, the
private keys are sealed at rest and the app role cannot rewrite or delete a key."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from joserfc import jwt

from backend.app import create_app
from backend.context import Principal
from backend.runtime import Services, build_services
from tests.cli.test_cli import _env, run
from tests.conftest import Cluster, TenantUser, make_settings


@pytest.fixture
async def other_process(cluster: Cluster) -> AsyncIterator[Services]:
    """Another server process on the same database, with its own key cache."""
    services = build_services(make_settings(cluster), cluster.urls.app_url)
    await services.keys.load()
    yield services
    await services.db.dispose()


async def _kids(client: httpx.AsyncClient) -> list[str]:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return [k["kid"] for k in response.json()["keys"]]


async def _accepted(client: httpx.AsyncClient, token: str) -> bool:
    response = await client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


async def test_a_rotation_is_published_before_it_signs(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser, other_process: Services
) -> None:
    principal = Principal(user_id=tenant_a.user_id, tenant_id=tenant_a.tenant_id)
    before = services.keys.current.kid
    new_key, activates_at = await other_process.keys.rotate()
    assert new_key.kid != before
    # Published at once (the JWKS re-reads the ring), but not signing yet.
    await services.keys.load()
    assert {before, new_key.kid} <= set(await _kids(client))
    assert services.keys.current.kid == before
    assert other_process.keys.current.kid == before
    assert services.tokens.verify(services.tokens.issue(principal)).user_id == tenant_a.user_id
    # Every process verifies tokens of the new key already (as it will sign them soon).
    early = jwt.encode(
        {"alg": "ES256", "kid": new_key.kid, "typ": "at+jwt"},
        jwt.decode(services.tokens.issue(principal), services.keys.verifying).claims,
        new_key,
        algorithms=["ES256"],
    )
    assert await _accepted(client, early)
    assert activates_at > datetime.now(UTC)


async def test_an_emergency_rotation_reaches_another_process_on_first_use(
    cluster: Cluster,
    services: Services,
    client: httpx.AsyncClient,
    tenant_a: TenantUser,
    other_process: Services,
) -> None:
    principal = Principal(user_id=tenant_a.user_id, tenant_id=tenant_a.tenant_id)
    old_token = services.tokens.issue(principal)
    old_kid = services.keys.current.kid
    # A fresh process that loaded the ring just before the rotation...
    watcher = build_services(make_settings(cluster), cluster.urls.app_url)
    try:
        await watcher.keys.load()
        new_key, _ = await other_process.keys.rotate(now=True)
        assert other_process.keys.current.kid == new_key.kid
        new_token = other_process.tokens.issue(principal)
        # ... knows nothing of the new key yet, and learns it from the first token naming it.
        assert not watcher.keys.knows(str(new_key.kid))
        assert (await watcher.tokens.authenticate(new_token)).user_id == tenant_a.user_id
        # The old key keeps verifying its tokens (until they expire).
        assert (await watcher.tokens.authenticate(old_token)).user_id == tenant_a.user_id
        # (The session's own process may have spent its once-a-second forced reload on the
        # garbage key ids of the forgery tests: let its cache catch up as time would.)
        await services.keys.load()
        assert await _accepted(client, old_token)
        assert await _accepted(client, new_token)
        assert {old_kid, new_key.kid} <= set(await _kids(client))
    finally:
        await watcher.db.dispose()


async def test_a_retired_key_leaves_the_jwks_when_its_tokens_have_expired(
    cluster: Cluster,
) -> None:
    """With 1-second tokens and no leeway, a replaced key verifies for one second more."""
    short = build_services(
        make_settings(cluster, access_token_ttl_seconds=1, token_leeway_seconds=0),
        cluster.urls.app_url,
    )
    transport = httpx.ASGITransport(app=create_app(short))  # type: ignore[arg-type]
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await short.keys.load()
            old = short.keys.current.kid
            new_key, _ = await short.keys.rotate(now=True)
            kids = await _kids(http)
            assert old in kids and new_key.kid in kids
            await asyncio.sleep(1.3)
            await short.keys.load()
            kids = await _kids(http)
            assert new_key.kid in kids and old not in kids
    finally:
        await short.db.dispose()


async def test_private_keys_are_sealed_and_the_app_cannot_rewrite_them(cluster: Cluster) -> None:
    owner = await asyncpg.connect(cluster.urls.owner_url.replace("+asyncpg", "", 1))
    try:
        rows = await owner.fetch("select kid, public_jwk, private_jwk_sealed from signing_keys")
    finally:
        await owner.close()
    assert rows
    for row in rows:
        assert '"d"' not in str(row["public_jwk"])
        assert row["private_jwk_sealed"].count(".") == 4  # a compact JWE
        assert '"d"' not in row["private_jwk_sealed"]
    app = await asyncpg.connect(cluster.urls.app_url.replace("+asyncpg", "", 1))
    try:
        for statement in (
            "update signing_keys set activates_at = now()",
            "delete from signing_keys",
            "truncate signing_keys",
        ):
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                await app.execute(statement)
    finally:
        await app.close()


def test_caravan_keys_rotate_and_list(cluster: Cluster) -> None:
    rotated = run(["keys", "rotate"], _env(cluster))
    assert rotated.returncode == 0, rotated.stderr
    assert "signs from" in rotated.stderr
    keys = json.loads(rotated.stdout)["keys"]
    assert len(keys) >= 2
    newest = keys[0]
    assert newest["retired_at"] is None and newest["verifies_until"] is None
    assert keys[1]["retired_at"] == newest["activates_at"]
    listed = run(["keys", "list"], _env(cluster))
    assert listed.returncode == 0, listed.stderr
    assert [k["kid"] for k in json.loads(listed.stdout)["keys"]][: len(keys)] == [
        k["kid"] for k in keys
    ]
