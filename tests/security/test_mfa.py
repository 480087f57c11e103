"""TOTP MFA: required for admins (a tenant setting, on by default), enrolment during sign-in
and from a signed-in session, verification, single-use codes and recovery codes, removal,
the same rules on the OAuth authorize page, and the seeds sealed at rest."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from backend.auth import totp
from backend.auth.throttle import mfa_keys
from backend.runtime import Services
from backend.tenants.service import create_tenant, create_user
from tests.conftest import PASSWORD, Cluster, TenantUser, gql
from tests.security.oauth_helpers import (
    Pkce,
    authorize_params,
    bearer,
    open_authorize,
    register,
    source_client,
    submit,
    token_for,
)
from tests.security.test_oauth_attacks import events

Json = dict[str, Any]


@dataclass
class Authenticator:
    """An authenticator app: a fresh code for a step later than the last one it gave."""

    key: bytes
    last_step: int = -1
    used: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, secret: str) -> Authenticator:
        return cls(base64.b32decode(secret + "=" * (-len(secret) % 8)))

    def code(self) -> str:
        now = totp.time_step(time.time())
        step = max(self.last_step + 1, now - totp.DRIFT_STEPS)
        assert step <= now + totp.DRIFT_STEPS, "out of fresh codes: too many in 30 seconds"
        self.last_step = step
        return totp.hotp(self.key, step)

    def peek(self) -> str:
        """A currently valid code, without using it up (for attempts that will be refused)."""
        return totp.hotp(self.key, totp.time_step(time.time()) + totp.DRIFT_STEPS)

    def stale(self) -> str:
        """The code of a step already used."""
        return totp.hotp(self.key, self.last_step)


@pytest.fixture(scope="module")
async def web(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with source_client(services, "10.20.0.1") as http:
        yield http


@dataclass
class Admin:
    user: TenantUser
    authenticator: Authenticator
    recovery_codes: list[str]


async def _sign_in(
    http: httpx.AsyncClient, user: TenantUser, password: str = PASSWORD
) -> httpx.Response:
    return await http.post(
        "/auth/sign-in", json={"tenant": user.slug, "email": user.email, "password": password}
    )


@pytest.fixture(scope="module")
async def strict_tenant(services: Services) -> TenantUser:
    """A tenant as `caravan tenant create` makes it by default: admins must use MFA."""
    slug = f"strict-{uuid.uuid4().hex[:8]}"
    email = f"admin@{slug}.example"
    created = await create_tenant(
        services.db, name="Strict Ltd", slug=slug, admin_email=email, admin_password=PASSWORD
    )
    return TenantUser(created.tenant_id, slug, created.admin_user_id, email, "")


@pytest.fixture(scope="module")
async def admin(web: httpx.AsyncClient, strict_tenant: TenantUser) -> Admin:
    """The admin's first sign-in: MFA is required and not set up, so enrol first."""
    answer = await _sign_in(web, strict_tenant)
    assert answer.status_code == 401, answer.text
    body = answer.json()
    assert body["code"] == "mfa_required"
    assert body["mfa_enrollment_required"] is True
    assert "access_token" not in body
    enrolment = await web.post("/auth/mfa/enroll", json={"mfa_token": body["mfa_token"]})
    assert enrolment.status_code == 200, enrolment.text
    secret = enrolment.json()["secret"]
    assert enrolment.json()["provisioning_uri"].startswith("otpauth://totp/")
    authenticator = Authenticator.of(secret)
    # A wrong first code does not turn MFA on.
    wrong = await web.post(
        "/auth/mfa/verify", json={"mfa_token": body["mfa_token"], "code": "000000"}
    )
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_mfa_code"
    done = await web.post(
        "/auth/mfa/verify", json={"mfa_token": body["mfa_token"], "code": authenticator.code()}
    )
    assert done.status_code == 200, done.text
    tokens = done.json()
    assert len(tokens["recovery_codes"]) == 10
    user = TenantUser(
        strict_tenant.tenant_id,
        strict_tenant.slug,
        strict_tenant.user_id,
        strict_tenant.email,
        tokens["access_token"],
    )
    return Admin(user, authenticator, tokens["recovery_codes"])


async def test_an_admin_must_pass_mfa_at_every_sign_in(
    services: Services, web: httpx.AsyncClient, admin: Admin
) -> None:
    challenge = await _sign_in(web, admin.user)
    assert challenge.status_code == 401
    body = challenge.json()
    assert body["code"] == "mfa_required" and body["mfa_enrollment_required"] is False
    assert challenge.headers["content-type"].startswith("application/problem+json")
    token = body["mfa_token"]
    # Enrolling again through a sign-in challenge is not possible once MFA is on.
    assert (await web.post("/auth/mfa/enroll", json={"mfa_token": token})).status_code == 401
    # The last code used is a replay.
    replay = await web.post(
        "/auth/mfa/verify", json={"mfa_token": token, "code": admin.authenticator.stale()}
    )
    assert replay.status_code == 401 and replay.json()["code"] == "invalid_mfa_code"
    ok = await web.post(
        "/auth/mfa/verify", json={"mfa_token": token, "code": admin.authenticator.code()}
    )
    assert ok.status_code == 200, ok.text
    assert "recovery_codes" not in ok.json()
    assert (await web.get("/api/v1/contacts", headers=bearer(ok.json()["access_token"]))).is_success
    # The challenge is single use.
    again = await web.post(
        "/auth/mfa/verify", json={"mfa_token": token, "code": admin.authenticator.peek()}
    )
    assert again.status_code == 401 and again.json()["code"] == "invalid_mfa_token"
    recorded = {e["outcome"] for e in await events(services, admin.user, "auth.mfa_failed")}
    assert recorded == {"failure"}
    assert await events(services, admin.user, "auth.mfa_enrolled")


async def test_a_recovery_code_works_once(web: httpx.AsyncClient, admin: Admin) -> None:
    code = admin.recovery_codes.pop()
    for expected in (200, 401):
        challenge = (await _sign_in(web, admin.user)).json()
        answer = await web.post(
            "/auth/mfa/verify", json={"mfa_token": challenge["mfa_token"], "recovery_code": code}
        )
        assert answer.status_code == expected, answer.text
    status = await web.get("/api/v1/me/mfa", headers=admin.user.headers)
    assert status.json() == {
        "totp_enabled": True,
        "enrollment_pending": False,
        "recovery_codes_left": 9,
        "required": True,
    }


@pytest.mark.parametrize("mfa_token", ["", "garbage", f"{uuid.uuid4().hex}.{'A' * 43}", "x" * 500])
async def test_forged_mfa_tokens_are_refused(web: httpx.AsyncClient, mfa_token: str) -> None:
    for path, body in (
        ("/auth/mfa/verify", {"mfa_token": mfa_token, "code": "123456"}),
        ("/auth/mfa/enroll", {"mfa_token": mfa_token}),
    ):
        answer = await web.post(path, json=body)
        assert answer.status_code == 401
        assert answer.json()["code"] == "invalid_mfa_token"


async def test_a_challenge_dies_after_five_wrong_codes_then_the_account_backs_off(
    services: Services, strict_tenant: TenantUser, admin: Admin
) -> None:
    keys = mfa_keys(f"{strict_tenant.tenant_id.hex}:{strict_tenant.user_id.hex}", None)
    await services.throttle.succeeded(keys)  # start from a clean count
    async with source_client(services, "10.20.0.2") as http:
        challenge = (await _sign_in(http, admin.user)).json()
        answers = [
            await http.post(
                "/auth/mfa/verify", json={"mfa_token": challenge["mfa_token"], "code": "000000"}
            )
            for _ in range(5)
        ]
        assert [a.status_code for a in answers] == [401] * 5
        assert {a.json()["code"] for a in answers} == {"invalid_mfa_code"}
        # The challenge is spent: even the right code is refused now.
        late = await http.post(
            "/auth/mfa/verify",
            json={"mfa_token": challenge["mfa_token"], "code": admin.authenticator.peek()},
        )
        assert late.status_code == 401 and late.json()["code"] == "invalid_mfa_token"
        # One more wrong code on a new challenge, and the account backs off.
        fresh = (await _sign_in(http, admin.user)).json()["mfa_token"]
        sixth = await http.post("/auth/mfa/verify", json={"mfa_token": fresh, "code": "000000"})
        assert sixth.status_code == 401
        held = await http.post(
            "/auth/mfa/verify", json={"mfa_token": fresh, "code": admin.authenticator.peek()}
        )
        assert held.status_code == 429, held.text
        assert held.json()["code"] == "too_many_attempts"
        assert int(held.headers["retry-after"]) >= 1
    await services.throttle.succeeded(keys)  # let the other tests of this admin go on


async def test_a_user_without_admin_rights_signs_in_without_mfa_until_they_enrol(
    services: Services, web: httpx.AsyncClient, strict_tenant: TenantUser
) -> None:
    email = f"rep-{uuid.uuid4().hex[:6]}@{strict_tenant.slug}.example"
    await create_user(services.db, tenant_slug=strict_tenant.slug, email=email, password=PASSWORD)
    rep = TenantUser(strict_tenant.tenant_id, strict_tenant.slug, uuid.uuid4(), email, "")
    plain = await _sign_in(web, rep)
    assert plain.status_code == 200, plain.text
    rep.token = plain.json()["access_token"]

    started = await web.post("/api/v1/me/mfa/totp", headers=rep.headers)
    assert started.status_code == 201
    authenticator = Authenticator.of(started.json()["secret"])
    # Pending enrolment changes nothing yet.
    assert (await _sign_in(web, rep)).status_code == 200
    wrong = await web.post(
        "/api/v1/me/mfa/totp/confirm", json={"code": "123456"}, headers=rep.headers
    )
    assert wrong.status_code == 422 and wrong.json()["field"] == "code"
    confirmed = await web.post(
        "/api/v1/me/mfa/totp/confirm", json={"code": authenticator.code()}, headers=rep.headers
    )
    assert confirmed.status_code == 200
    recovery = confirmed.json()["recovery_codes"]
    # Enrolling twice is a conflict.
    assert (await web.post("/api/v1/me/mfa/totp", headers=rep.headers)).status_code == 409

    challenge = await _sign_in(web, rep)
    assert challenge.json()["code"] == "mfa_required"

    # Removing needs a valid code; a wrong one changes nothing.
    refused = await web.post(
        "/api/v1/me/mfa/totp/remove", json={"code": "000000"}, headers=rep.headers
    )
    assert refused.status_code == 422
    removed = await web.post(
        "/api/v1/me/mfa/totp/remove", json={"recovery_code": recovery[0]}, headers=rep.headers
    )
    assert removed.status_code == 204
    assert (await _sign_in(web, rep)).status_code == 200
    assert await events(services, rep, "auth.mfa_removed")


async def test_an_apps_token_cannot_touch_mfa_or_devices(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    app = await register(client, tenant_a, name="Curious App", scopes=["crm.read", "admin"])
    tokens = await token_for(client, app, tenant_a, scope="crm.read admin")
    headers = bearer(tokens["access_token"])
    for method, path in (
        ("GET", "/api/v1/me/mfa"),
        ("POST", "/api/v1/me/mfa/totp"),
        ("GET", "/api/v1/me/sessions"),
    ):
        answer = await client.request(method, path, headers=headers)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["code"] == "first_party_required"


async def test_the_authorize_page_asks_for_the_code(
    services: Services, web: httpx.AsyncClient, admin: Admin
) -> None:
    app = await register(web, admin.user, name="Admin Tool", scopes=["openid", "crm.read"])
    pkce = Pkce.new()
    # A wrong code re-asks; the right one leads to consent.
    page = await open_authorize(web, authorize_params(app, pkce))
    code_page = await submit(web, page, {"email": admin.user.email, "password": PASSWORD})
    assert "Two-step verification" in code_page.text
    wrong = await submit(web, code_page, {"code": "000000"})
    assert wrong.status_code == 200 and "The code is wrong" in wrong.text
    consent = await submit(web, wrong, {"code": admin.authenticator.code()})
    assert "Allow access?" in consent.text


async def test_an_admin_who_must_enrol_cannot_authorize_apps_first(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    slug = f"fresh-{uuid.uuid4().hex[:8]}"
    created = await create_tenant(
        services.db,
        name="Fresh Ltd",
        slug=slug,
        admin_email=f"admin@{slug}.example",
        admin_password=PASSWORD,
    )
    # Register the app directly through the service layer: the admin holds no token yet.
    from backend.auth.clients import ClientInput, create_client
    from backend.auth.origin import Origin
    from backend.context import Principal, RequestContext

    ctx = RequestContext(
        principal=Principal(user_id=created.admin_user_id, tenant_id=created.tenant_id),
        db=services.db,
        channel="system",
    )
    made = await create_client(
        ctx,
        ClientInput(
            name="Tool",
            client_type="public",
            redirect_uris=["com.example.tool:/cb"],
            grant_types=["authorization_code"],
            allowed_scopes=["crm.read"],
        ),
        Origin(),
    )
    params = {
        "response_type": "code",
        "client_id": made.client.client_id,
        "redirect_uri": "com.example.tool:/cb",
        "scope": "crm.read",
        "code_challenge": Pkce.new().challenge,
        "code_challenge_method": "S256",
    }
    page = await open_authorize(client, params)
    blocked = await submit(client, page, {"email": f"admin@{slug}.example", "password": PASSWORD})
    assert blocked.status_code == 403
    assert "Set up two-step verification first" in blocked.text
    assert "location" not in blocked.headers


async def test_admins_turn_the_rule_off_and_on(
    services: Services, client: httpx.AsyncClient, web: httpx.AsyncClient, admin: Admin
) -> None:
    rule = await web.get("/api/v1/tenant/security", headers=admin.user.headers)
    assert rule.json() == {"require_admin_mfa": True}
    changed = await web.patch(
        "/api/v1/tenant/security", json={"require_admin_mfa": False}, headers=admin.user.headers
    )
    assert changed.json() == {"require_admin_mfa": False}
    back = await gql(
        web,
        admin.user,
        "mutation { updateTenantSecurity(input: {requireAdminMfa: true}) { requireAdminMfa } }",
    )
    assert back["data"]["updateTenantSecurity"]["requireAdminMfa"] is True
    assert len(await events(services, admin.user, "tenant.security_changed")) == 2


async def test_a_non_admin_cannot_change_the_rule(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    email = f"rep-{uuid.uuid4().hex[:6]}@{tenant_a.slug}.example"
    await create_user(services.db, tenant_slug=tenant_a.slug, email=email, password=PASSWORD)
    token = (
        await client.post(
            "/auth/sign-in", json={"tenant": tenant_a.slug, "email": email, "password": PASSWORD}
        )
    ).json()["access_token"]
    refused = await client.patch(
        "/api/v1/tenant/security", json={"require_admin_mfa": False}, headers=bearer(token)
    )
    assert refused.status_code == 403


async def test_mfa_over_graphql(web: httpx.AsyncClient, admin: Admin) -> None:
    status = await gql(
        web, admin.user, "{ myMfa { totpEnabled recoveryCodesLeft required enrollmentPending } }"
    )
    assert status["data"]["myMfa"]["totpEnabled"] is True
    wrong = await gql(
        web,
        admin.user,
        'mutation { regenerateRecoveryCodes(input: {code: "000000"}) '
        "{ recoveryCodes errors { field code } } }",
    )
    payload = wrong["data"]["regenerateRecoveryCodes"]
    assert payload["recoveryCodes"] is None
    assert payload["errors"] == [{"field": "code", "code": "invalid_code"}]
    again = await gql(
        web, admin.user, "mutation { startTotpEnrollment { secret errors { code } } }"
    )
    assert again["data"]["startTotpEnrollment"]["errors"] == [{"code": "mfa_already_enrolled"}]


async def test_seeds_and_recovery_codes_are_not_stored_in_the_clear(
    cluster: Cluster, admin: Admin
) -> None:
    conn = await asyncpg.connect(cluster.urls.owner_url.replace("+asyncpg", "", 1))
    try:
        async with conn.transaction():
            await conn.execute(
                "select set_config('app.tenant_id', $1, true)", str(admin.user.tenant_id)
            )
            sealed = await conn.fetchval(
                "select secret_sealed from mfa_totp where user_id = $1", admin.user.user_id
            )
            hashes = await conn.fetch(
                "select code_hash from mfa_recovery_codes where user_id = $1", admin.user.user_id
            )
    finally:
        await conn.close()
    secret = base64.b32encode(admin.authenticator.key).decode().rstrip("=")
    assert secret not in sealed and admin.authenticator.key.hex() not in sealed
    assert sealed.count(".") == 4  # a compact JWE
    stored = {h["code_hash"] for h in hashes}
    assert not {c.replace("-", "") for c in admin.recovery_codes} & stored
    assert all(len(h) == 64 for h in stored)
