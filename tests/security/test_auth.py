"""Authentication: sign-in failures all look alike; every forged, stale or mis-addressed access
token is refused by both skins; the JWKS publishes no private key; refresh tokens rotate and
their reuse revokes the whole family."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import asyncpg
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from backend.auth.keys import ALGORITHM, generate_key
from backend.context import Principal
from backend.runtime import Services
from tests.conftest import PASSWORD, Cluster, TenantUser, new_tenant, new_user, sign_in
from tests.security.forgeries import forgeries, forgery

PROBLEM_JSON = "application/problem+json"
Json = dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _segment(value: Json) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def hand_made(header: Json, claims: Json, sign: Callable[[bytes], bytes]) -> str:
    """A compact JWS built by hand, so nothing in a JOSE library can refuse to make it."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


# -- sign-in ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
async def signin_tenant(services: Services, client: httpx.AsyncClient) -> TenantUser:
    return await new_tenant(services, client, "signin")


async def _deactivate(cluster: Cluster, user: TenantUser) -> None:
    """As the owner role, which FORCE RLS also holds: the tenant must be set to reach the row."""
    conn = await asyncpg.connect(cluster.urls.owner_url.replace("+asyncpg", "", 1))
    try:
        async with conn.transaction():
            await conn.execute("select set_config('app.tenant_id', $1, true)", str(user.tenant_id))
            status = await conn.execute(
                "update users set active = false where id = $1", user.user_id
            )
    finally:
        await conn.close()
    assert status == "UPDATE 1"


async def _sign_in_raw(
    client: httpx.AsyncClient, tenant: str, email: str, password: str
) -> httpx.Response:
    return await client.post(
        "/auth/sign-in", json={"tenant": tenant, "email": email, "password": password}
    )


async def test_every_sign_in_failure_is_the_same_401(
    cluster: Cluster, services: Services, client: httpx.AsyncClient, signin_tenant: TenantUser
) -> None:
    inactive = await new_user(services, client, signin_tenant, "leaver")
    await _deactivate(cluster, inactive)
    t = signin_tenant
    failures = {
        "wrong password": (t.slug, t.email, PASSWORD + "!"),
        "unknown tenant": (f"nowhere-{uuid.uuid4().hex[:8]}", t.email, PASSWORD),
        "unknown email": (t.slug, f"ghost@{t.slug}.example", PASSWORD),
        "inactive user": (t.slug, inactive.email, PASSWORD),
        "overlong password": (t.slug, t.email, "x" * 5000),
        "empty everything": ("", "", ""),
    }
    answers = {name: await _sign_in_raw(client, *args) for name, args in failures.items()}
    reference = answers["wrong password"]
    assert reference.status_code == 401
    assert reference.headers["content-type"].startswith(PROBLEM_JSON)
    assert reference.headers["www-authenticate"] == "Bearer"
    assert reference.json()["code"] == "invalid_credentials"
    shapes = {
        name: (r.status_code, r.headers["content-type"], r.json()) for name, r in answers.items()
    }
    assert shapes == dict.fromkeys(failures, shapes["wrong password"])
    # The right password still works for the active admin (the failures locked nothing).
    await sign_in(client, t.slug, t.email, PASSWORD)


@forgery
async def test_deactivated_users_refresh_token_stops_working(
    cluster: Cluster, services: Services, client: httpx.AsyncClient, signin_tenant: TenantUser
) -> None:
    user = await new_user(services, client, signin_tenant, "mover")
    pair = await sign_in(client, user.slug, user.email, PASSWORD)
    await _deactivate(cluster, user)
    response = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM_JSON)


# -- access tokens ------------------------------------------------------------------------------
def _claims(services: Services, principal: Principal, **changes: Any) -> Json:
    now = int(time.time())
    claims: Json = {
        "iss": services.settings.issuer,
        "aud": services.settings.audience,
        "sub": str(principal.user_id),
        "tenant": str(principal.tenant_id),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _header(services: Services, **changes: Any) -> Json:
    header: Json = {"alg": ALGORITHM, "kid": services.keys.current.kid, "typ": "at+jwt"}
    header.update(changes)
    return {k: v for k, v in header.items() if v is not None}


def _signed(services: Services, header: Json, claims: Json, key: ECKey | None = None) -> str:
    return jwt.encode(header, claims, key or services.keys.current, algorithms=[ALGORITHM])


def _impostor_key(services: Services) -> ECKey:
    """A different P-256 key that claims the real key's kid."""
    other: dict[str, Any] = {**generate_key().as_dict(private=True)}
    other["kid"] = services.keys.current.kid
    return ECKey.import_key(other)


def _embedded_jwk(services: Services, principal: Principal) -> str:
    """Signed by an attacker's key that the header itself carries (and claims the real kid)."""
    attacker = _impostor_key(services)
    header = _header(services, jwk=attacker.as_dict(private=False))
    return _signed(services, header, _claims(services, principal), attacker)


def _hs256_with_public_key(services: Services, principal: Principal) -> str:
    public_pem = services.keys.current.as_pem(private=False)
    return hand_made(
        _header(services, alg="HS256"),
        _claims(services, principal),
        lambda data: hmac.new(public_pem, data, hashlib.sha256).digest(),
    )


def _tampered(services: Services, principal: Principal) -> str:
    """A genuine token whose payload was edited afterwards (tenant swapped)."""
    header, _, signature = services.tokens.issue(principal).split(".")
    claims = _claims(services, principal, tenant=str(uuid.uuid4()))
    return f"{header}.{_segment(claims)}.{signature}"


TokenMaker = Callable[[Services, Principal], str | None]
BAD_TOKENS: dict[str, TokenMaker] = {
    "missing": lambda s, p: None,
    "empty bearer": lambda s, p: "",
    "malformed": lambda s, p: "not-a-jwt",
    "three garbage segments": lambda s, p: "a.b.c",
    "expired": lambda s, p: s.tokens.issue(p, now=int(time.time()) - 24 * 3600),
    "not yet valid": lambda s, p: _signed(
        s, _header(s), _claims(s, p, nbf=int(time.time()) + 3600, iat=int(time.time()) + 3600)
    ),
    "alg none": lambda s, p: hand_made(_header(s, alg="none"), _claims(s, p), lambda _: b""),
    "alg none with signature": lambda s, p: hand_made(
        _header(s, alg="none"), _claims(s, p), lambda _: b"x" * 64
    ),
    "other key, same kid": lambda s, p: _signed(s, _header(s), _claims(s, p), _impostor_key(s)),
    "wrong audience": lambda s, p: _signed(s, _header(s), _claims(s, p, aud="someone-else")),
    "wrong issuer": lambda s, p: _signed(s, _header(s), _claims(s, p, iss="https://evil.example")),
    "no expiry": lambda s, p: _signed(s, _header(s), _claims(s, p, exp=None)),
    "no tenant": lambda s, p: _signed(s, _header(s), _claims(s, p, tenant=None)),
    "tenant not a uuid": lambda s, p: _signed(s, _header(s), _claims(s, p, tenant="alpha")),
    "typ JWT": lambda s, p: _signed(s, _header(s, typ="JWT"), _claims(s, p)),
    "no typ": lambda s, p: _signed(s, _header(s, typ=None), _claims(s, p)),
    "key embedded in the header": _embedded_jwk,
    "HS256 with the public key": _hs256_with_public_key,
    "payload tampered": _tampered,
}


class Probe(Protocol):
    async def __call__(self, client: httpx.AsyncClient, authorization: str | None) -> None: ...


async def _rest_refuses(client: httpx.AsyncClient, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.get("/api/v1/contacts", headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    # RFC 6750: a refused bearer token is named as such; no token at all gets a bare challenge.
    scheme, _, token = (authorization or "").partition(" ")
    sent = scheme.lower() == "bearer" and token.strip()
    expected = 'Bearer error="invalid_token"' if sent else "Bearer"
    assert response.headers["www-authenticate"] == expected
    body = response.json()
    assert body["status"] == 401
    assert body["code"] in ("unauthenticated", "invalid_token")
    assert "items" not in body


async def _graphql_refuses(client: httpx.AsyncClient, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.post(
        "/graphql", json={"query": "{ contacts { edges { node { id } } } }"}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


PROBES: dict[str, Probe] = {"rest": _rest_refuses, "graphql": _graphql_refuses}


@pytest.mark.parametrize("skin", sorted(PROBES))
@pytest.mark.parametrize("case", list(BAD_TOKENS))
@forgery
async def test_bad_access_tokens_are_refused(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser, skin: str, case: str
) -> None:
    principal = Principal(user_id=tenant_a.user_id, tenant_id=tenant_a.tenant_id)
    token = BAD_TOKENS[case](services, principal)
    authorization = None if token is None else f"Bearer {token}"
    await PROBES[skin](client, authorization)


@pytest.mark.parametrize("skin", sorted(PROBES))
@pytest.mark.parametrize(
    "authorization", ["Basic YWRtaW46YWRtaW4=", "Bearer", "Token abc", "bearer  "]
)
@forgery
async def test_malformed_authorization_headers_are_refused(
    client: httpx.AsyncClient, skin: str, authorization: str
) -> None:
    await PROBES[skin](client, authorization)


@forgeries(len(PROBES))
async def test_refresh_token_is_not_an_access_token(
    client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    pair = await sign_in(client, tenant_a.slug, tenant_a.email, PASSWORD)
    for probe in PROBES.values():
        await probe(client, f"Bearer {pair['refresh_token']}")


async def test_the_hand_made_tokens_are_otherwise_valid(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    """Control: the builders above make accepted tokens when nothing is wrong with them."""
    principal = Principal(user_id=tenant_a.user_id, tenant_id=tenant_a.tenant_id)
    token = _signed(services, _header(services), _claims(services, principal))
    response = await client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text


async def test_jwks_publishes_the_current_public_key_only(
    services: Services, client: httpx.AsyncClient
) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert services.keys.current.kid in [k["kid"] for k in keys]
    for key in keys:
        assert key["kty"] == "EC"
        assert key["alg"] == ALGORITHM
        assert "d" not in key
    current = next(k for k in keys if k["kid"] == services.keys.current.kid)
    # The published key verifies a token the server issued.
    public = ECKey.import_key(current)
    assert not public.is_private
    token = services.tokens.issue(Principal(user_id=uuid.uuid4(), tenant_id=uuid.uuid4()))
    assert jwt.decode(token, public, algorithms=[ALGORITHM]).header["kid"] == current["kid"]


# -- refresh tokens -----------------------------------------------------------------------------
async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": token})


async def _works(client: httpx.AsyncClient, access_token: str) -> bool:
    response = await client.get(
        "/api/v1/contacts", headers={"Authorization": f"Bearer {access_token}"}
    )
    return response.status_code == 200


@pytest.fixture
async def first_pair(client: httpx.AsyncClient, tenant_a: TenantUser) -> AsyncIterator[Json]:
    yield await sign_in(client, tenant_a.slug, tenant_a.email, PASSWORD)


@forgery
async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: httpx.AsyncClient, tenant_a: TenantUser, first_pair: Json
) -> None:
    other_family = await sign_in(client, tenant_a.slug, tenant_a.email, PASSWORD)

    rotated = await _refresh(client, first_pair["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first_pair["refresh_token"]
    assert second["access_token"] != first_pair["access_token"]
    assert await _works(client, second["access_token"])

    # The rotated-away token is spent: presenting it again is reuse.
    reused = await _refresh(client, first_pair["refresh_token"])
    assert reused.status_code == 401
    assert reused.headers["content-type"].startswith(PROBLEM_JSON)
    # ... and reuse revoked the whole family, including the newest token.
    newest = await _refresh(client, second["refresh_token"])
    assert newest.status_code == 401
    assert (await _refresh(client, first_pair["refresh_token"])).status_code == 401

    # Another sign-in's family is untouched.
    unrelated = await _refresh(client, other_family["refresh_token"])
    assert unrelated.status_code == 200, unrelated.text


@forgery
async def test_refresh_token_of_one_tenant_cannot_be_replayed_under_another(
    client: httpx.AsyncClient, tenant_b: TenantUser, first_pair: Json
) -> None:
    _, _, secret = first_pair["refresh_token"].partition(".")
    response = await _refresh(client, f"{tenant_b.tenant_id.hex}.{secret}")
    assert response.status_code == 401
    # The genuine token was not spent by the attempt.
    assert (await _refresh(client, first_pair["refresh_token"])).status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        ".",
        "..",
        "not-hex.secret",
        f"{uuid.uuid4().hex}.",
        f"{uuid.uuid4().hex}.guessed-secret",
        f"{uuid.uuid4()}.guessed-secret",
        "0" * 32 + "." + "A" * 43,
        "a" * 5000,
        f"{uuid.uuid4().hex}." + "b" * 5000,
        "' or 1=1 --.x",
    ],
)
@forgery
async def test_garbage_refresh_tokens_are_refused(client: httpx.AsyncClient, token: str) -> None:
    response = await _refresh(client, token)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == "invalid_refresh_token"


async def test_a_refresh_token_with_nul_is_refused_at_the_door(client: httpx.AsyncClient) -> None:
    """NUL cannot be stored or looked up: refused before the token is (backend/api/boundary.py)."""
    response = await _refresh(client, "\u0000.\u0000")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert (response.json()["code"], response.json()["field"]) == (
        "invalid_characters",
        "refresh_token",
    )


@forgery
async def test_an_access_token_is_not_a_refresh_token(
    client: httpx.AsyncClient, first_pair: Json
) -> None:
    response = await _refresh(client, first_pair["access_token"])
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"
