"""Password guessing meets a backoff per account and per source address, kept in the database
(every server process sees it). A held attempt is 429 with Retry-After, checked before the
password, identical for accounts that exist and accounts that do not; a success clears the
account's count."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from backend.app import create_app
from backend.auth.throttle import ACCOUNT, SOURCE, Key
from backend.runtime import Services, build_services
from tests.conftest import PASSWORD, Cluster, TenantUser, make_settings, new_user
from tests.security.oauth_helpers import (
    Pkce,
    authorize_params,
    open_authorize,
    register,
    source_client,
    submit,
)
from tests.security.test_oauth_attacks import events

Json = dict[str, Any]
PROBLEM_JSON = "application/problem+json"


def _ip() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"


async def _try(http: httpx.AsyncClient, slug: str, email: str, password: str) -> httpx.Response:
    return await http.post(
        "/auth/sign-in", json={"tenant": slug, "email": email, "password": password}
    )


@pytest.fixture(scope="module")
async def target(services: Services, client: httpx.AsyncClient, tenant_a: TenantUser) -> TenantUser:
    return await new_user(services, client, tenant_a, f"bf-{uuid.uuid4().hex[:6]}")


async def test_an_account_backs_off_after_repeated_failures(
    services: Services, cluster: Cluster, target: TenantUser
) -> None:
    # The other server process is built first: building it under load could outlast the hold.
    other = build_services(make_settings(cluster), cluster.urls.app_url)
    other_app = create_app(other)
    async with source_client(services, _ip()) as http:
        wrong = [
            await _try(http, target.slug, target.email, "wrong password!")
            for _ in range(ACCOUNT.free_failures + 1)
        ]
        assert [r.status_code for r in wrong] == [401] * (ACCOUNT.free_failures + 1)
        # Now even the right password waits: the answer does not depend on it.
        held = await _try(http, target.slug, target.email, PASSWORD)
        assert held.status_code == 429, held.text
        assert held.headers["content-type"].startswith(PROBLEM_JSON)
        assert held.json()["code"] == "too_many_attempts"
        assert 1 <= int(held.headers["retry-after"]) <= ACCOUNT.first_delay_seconds
    # From another address too (the account is held, not the address) - and in another server
    # process, since the counters live in the database.
    transport = httpx.ASGITransport(app=other_app, client=(_ip(), 1))  # type: ignore[arg-type]
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            elsewhere = await _try(http, target.slug, target.email, PASSWORD)
            assert elsewhere.status_code == 429
    finally:
        await other.db.dispose()
    throttled = await events(services, target, "auth.sign_in_throttled")
    assert throttled and throttled[-1]["outcome"] == "denied"
    failed = await events(services, target, "auth.sign_in_failed")
    assert len(failed) >= ACCOUNT.free_failures + 1


async def test_unknown_accounts_back_off_exactly_alike(
    services: Services, client: httpx.AsyncClient, target: TenantUser
) -> None:
    """No account enumeration through the backoff: a made-up email behaves the same."""
    known = await new_user(services, client, target, f"known-{uuid.uuid4().hex[:6]}")
    answers: dict[str, list[tuple[int, Json]]] = {}
    for label, email in (("known", known.email), ("unknown", f"ghost-{uuid.uuid4().hex}@x.io")):
        async with source_client(services, _ip()) as http:
            answers[label] = []
            for _ in range(ACCOUNT.free_failures + 2):
                response = await _try(http, target.slug, email, "not the password")
                body = response.json()
                body.pop("detail")  # a 429 names the seconds left, which tick
                answers[label].append((response.status_code, body))
    assert answers["known"] == answers["unknown"]
    assert [status for status, _ in answers["known"]][-1] == 429


async def test_a_source_backs_off_after_many_accounts_fail(
    services: Services, target: TenantUser
) -> None:
    ip = _ip()
    # A password spray: one guess at each of many accounts. The first failures are counted
    # directly (each HTTP one costs an argon2 verification); the last two go over HTTP.
    await services.throttle.failed([Key.of("source", ip, SOURCE)] * (SOURCE.free_failures - 1))
    async with source_client(services, ip) as http:
        for i in range(2):
            response = await _try(http, target.slug, f"spray-{i}@nowhere.example", "Summer2026!")
            assert response.status_code == 401, (i, response.text)
        # A real account with its right password, from the same address: held.
        held = await _try(http, target.slug, target.email, PASSWORD)
        assert held.status_code == 429
    # Another address is not held by that source's failures.
    async with source_client(services, _ip()) as http:
        fine = await _try(http, target.slug, f"nobody-{uuid.uuid4().hex}@x.example", "x")
        assert fine.status_code == 401


async def test_a_success_clears_the_accounts_count(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    user = await new_user(services, client, tenant_a, f"ok-{uuid.uuid4().hex[:6]}")
    # 3 + 3 failures would hold the account (more than 5) if the success between them did
    # not clear the count.
    async with source_client(services, _ip()) as http:
        for _ in range(2):
            for _ in range(3):
                assert (await _try(http, user.slug, user.email, "typo")).status_code == 401
            assert (await _try(http, user.slug, user.email, PASSWORD)).status_code == 200


async def test_the_authorize_page_backs_off_too(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser, target: TenantUser
) -> None:
    app = await register(client, tenant_a, name="Guessing Target")
    victim = await new_user(services, client, tenant_a, f"pg-{uuid.uuid4().hex[:6]}")
    async with source_client(services, _ip()) as http:
        page = await open_authorize(http, authorize_params(app, Pkce.new()))
        for _ in range(ACCOUNT.free_failures + 1):
            page_answer = await submit(http, page, {"email": victim.email, "password": "guess"})
            assert "The email or password is wrong." in page_answer.text
        held = await submit(http, page, {"email": victim.email, "password": PASSWORD})
        assert held.status_code == 429
        assert "Too many failed attempts" in held.text
        assert int(held.headers["retry-after"]) >= 1


async def test_both_doors_count_toward_the_same_account(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    app = await register(client, tenant_a, name="Second Door")
    victim = await new_user(services, client, tenant_a, f"door-{uuid.uuid4().hex[:6]}")
    async with source_client(services, _ip()) as http:
        for _ in range(3):
            assert (await _try(http, victim.slug, victim.email, "guess")).status_code == 401
        page = await open_authorize(http, authorize_params(app, Pkce.new()))
        for _ in range(3):
            await submit(http, page, {"email": victim.email, "password": "guess"})
        held = await _try(http, victim.slug, victim.email, PASSWORD)
        assert held.status_code == 429
