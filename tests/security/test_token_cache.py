"""The cache of verified token signatures never extends what a token may do: a cached token
still expires, a token signed by a key that left the ring is refused, a token whose body was
changed is refused while the genuine one is cached, and the cache stays bounded."""

from __future__ import annotations

import base64
import json
import time
import uuid

import httpx
import pytest
from joserfc import jwt

from backend.auth import tokens as token_module
from backend.context import Principal
from backend.errors import Unauthenticated
from backend.runtime import Services, build_services
from tests.conftest import Cluster, TenantUser, make_settings
from tests.security.forgeries import forgery


def _principal(user: TenantUser) -> Principal:
    return Principal(user_id=user.user_id, tenant_id=user.tenant_id)


@forgery
async def test_a_cached_token_still_expires(services: Services, tenant_a: TenantUser) -> None:
    token = services.tokens.issue(_principal(tenant_a))
    assert services.tokens.verify(token).user_id == tenant_a.user_id
    assert services.tokens.verify(token).user_id == tenant_a.user_id  # from the cache
    after = int(time.time()) + services.settings.access_token_ttl_seconds + 120
    with pytest.raises(Unauthenticated):
        services.tokens.verify(token, now=after)


@forgery
async def test_a_cached_token_of_a_key_that_left_the_ring_is_refused(
    cluster: Cluster, tenant_a: TenantUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = build_services(make_settings(cluster), cluster.urls.app_url)
    try:
        await services.keys.load()
        token = services.tokens.issue(_principal(tenant_a))
        assert services.tokens.verify(token).user_id == tenant_a.user_id  # cached
        removed = services.keys.current.kid
        # The ring as this process sees it once that key is gone (a compromised key removed).
        knows = type(services.keys).knows
        monkeypatch.setattr(
            type(services.keys), "knows", lambda ring, kid: kid != removed and knows(ring, kid)
        )
        with pytest.raises(Unauthenticated):
            services.tokens.verify(token)
    finally:
        await services.db.dispose()


@forgery
async def test_a_changed_body_is_refused_while_the_genuine_token_is_cached(
    services: Services, tenant_a: TenantUser, client: httpx.AsyncClient
) -> None:
    assert (await client.get("/api/v1/contacts", headers=tenant_a.headers)).status_code == 200
    header, _, signature = tenant_a.token.split(".")
    claims = {**jwt.decode(tenant_a.token, services.keys.verifying).claims}
    claims["sub"] = str(uuid.uuid4())
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{header}.{body}.{signature}"
    refused = await client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {forged}"})
    assert refused.status_code == 401


async def test_the_cache_is_bounded(
    services: Services, tenant_a: TenantUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(token_module, "VERIFIED_CACHE_SIZE", 3)
    issued = [
        services.tokens.issue(_principal(tenant_a), now=int(time.time()) - i) for i in range(6)
    ]
    for token in issued:
        services.tokens.verify(token)
    assert len(services.tokens._verified) <= 3
    assert all(services.tokens.verify(token).user_id == tenant_a.user_id for token in issued)
