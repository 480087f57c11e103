"""JWT forgeries against both skins, each built and sent: `alg: none`, HMAC keyed with the public
key, keys smuggled in through `jwk` / `jku` / `x5u` / `x5c`, unknown and path-like key ids,
expired and not-yet-valid tokens, wrong issuer / audience / type, an ID token passed off as an
access token, an oversized token, headers the server does not know. All are 401."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc.jwk import ECKey

from backend.auth.keys import ALGORITHM, generate_key
from backend.context import Principal
from backend.runtime import Services
from tests.conftest import TenantUser
from tests.security.forgeries import forgeries, forgery
from tests.security.test_auth import PROBES, _claims, _header, _signed, hand_made

Json = dict[str, Any]
Forgery = Callable[[Services, Principal], str]


def _attacker() -> ECKey:
    return generate_key()


def _attacker_signed(services: Services, principal: Principal, **header: Any) -> str:
    """Signed by the attacker's own key, with a header that points the server at that key."""
    attacker = _attacker()
    values = _header(services, kid=attacker.kid, **header)
    return _signed(services, values, _claims(services, principal), attacker)


def _with_attacker_jwk(services: Services, principal: Principal) -> str:
    attacker = _attacker()
    header = _header(services, kid=attacker.kid, jwk=attacker.as_dict(private=False))
    return _signed(services, header, _claims(services, principal), attacker)


def _hmac_public_jwk(services: Services, principal: Principal) -> str:
    """HS256 keyed with the JSON of the published public key (another classic confusion)."""
    public = services.keys.public_jwks()["keys"][0]
    secret = str(public).encode()
    return hand_made(
        _header(services, alg="HS256"),
        _claims(services, principal),
        lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
    )


def _hmac_x_coordinate(services: Services, principal: Principal) -> str:
    public = services.keys.public_jwks()["keys"][0]
    return hand_made(
        _header(services, alg="HS256"),
        _claims(services, principal),
        lambda data: hmac.new(public["x"].encode(), data, hashlib.sha256).digest(),
    )


def _id_token(services: Services, principal: Principal) -> str:
    """A genuine ID token (signed by the server) for an app: not an access token."""
    app_principal = Principal(
        user_id=principal.user_id, tenant_id=principal.tenant_id, client_id=uuid.uuid4()
    )
    return services.tokens.issue_id_token(
        principal=app_principal, auth_time=int(time.time()), nonce=None, amr=["pwd"], profile={}
    )


def _id_token_retyped(services: Services, principal: Principal) -> str:
    """An ID token's claims (audience: an app) in an at+jwt header, signed by the server."""
    claims = _claims(services, principal, aud=f"{principal.tenant_id.hex}.{uuid.uuid4().hex}")
    return _signed(services, _header(services), claims)


def _oversized(services: Services, principal: Principal) -> str:
    return _signed(services, _header(services), _claims(services, principal, pad="x" * 6000))


def _es256(key: ECKey) -> Callable[[bytes], bytes]:
    """Raw ES256 signing, for headers a JOSE library refuses to write."""

    def sign(data: bytes) -> bytes:
        der = key.private_key.sign(data, ec.ECDSA(hashes.SHA256()))  # type: ignore[union-attr]
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return sign


def _real_key_extra_header(name: str, value: Any) -> Forgery:
    """Correctly signed by the server's key, but with a header the server never sends."""
    return lambda s, p: hand_made(
        _header(s, **{name: value}), _claims(s, p), _es256(s.keys.current)
    )


def _kid(kid: Any) -> Forgery:
    return lambda s, p: hand_made(_header(s, kid=kid), _claims(s, p), _es256(_attacker()))


FORGERIES: dict[str, Forgery] = {
    "alg none, no signature": lambda s, p: hand_made(
        _header(s, alg="none"), _claims(s, p), lambda _: b""
    ),
    "alg NONE": lambda s, p: hand_made(_header(s, alg="NONE"), _claims(s, p), lambda _: b""),
    "alg none, no kid": lambda s, p: hand_made(
        {"alg": "none", "typ": "at+jwt"}, _claims(s, p), lambda _: b""
    ),
    "HS256 keyed with the public PEM": lambda s, p: hand_made(
        _header(s, alg="HS256"),
        _claims(s, p),
        lambda data: hmac.new(s.keys.current.as_pem(private=False), data, hashlib.sha256).digest(),
    ),
    "HS256 keyed with the public JWK": _hmac_public_jwk,
    "HS256 keyed with the x coordinate": _hmac_x_coordinate,
    "attacker key in jwk header": _with_attacker_jwk,
    "attacker JWKS in jku header": lambda s, p: _attacker_signed(
        s, p, jku="https://evil.example/jwks.json"
    ),
    "attacker JWKS in jku, same host": lambda s, p: _attacker_signed(
        s, p, jku=f"{s.settings.issuer}/.well-known/jwks.json"
    ),
    "attacker certificate in x5u header": lambda s, p: _attacker_signed(
        s, p, x5u="https://evil.example/cert.pem"
    ),
    "attacker chain in x5c header": lambda s, p: _attacker_signed(s, p, x5c=["MIIBfake"]),
    "unknown kid": _kid("unknown-key-id"),
    "path-like kid": _kid("../../../../../../dev/null"),
    "absolute path kid": _kid("/etc/passwd"),
    "URL kid": _kid("file:///etc/passwd"),
    "SQL kid": _kid("' UNION SELECT 'key' --"),
    "empty kid": _kid(""),
    "numeric kid": _kid(1),
    "huge kid": _kid("k" * 3000),
    "expired": lambda s, p: s.tokens.issue(p, now=int(time.time()) - 3600),
    "expired within one lifetime": lambda s, p: s.tokens.issue(
        p, now=int(time.time()) - s.settings.access_token_ttl_seconds - 120
    ),
    "not yet valid": lambda s, p: _signed(
        s, _header(s), _claims(s, p, nbf=int(time.time()) + 600, iat=int(time.time()))
    ),
    "issued in the future": lambda s, p: _signed(
        s, _header(s), _claims(s, p, iat=int(time.time()) + 600, nbf=None)
    ),
    "lives longer than the server issues": lambda s, p: _signed(
        s, _header(s), _claims(s, p, exp=int(time.time()) + 30 * 24 * 3600)
    ),
    "wrong issuer": lambda s, p: _signed(s, _header(s), _claims(s, p, iss="https://evil.example")),
    "issuer with trailing slash": lambda s, p: _signed(
        s, _header(s), _claims(s, p, iss=s.settings.issuer + "/")
    ),
    "wrong audience": lambda s, p: _signed(s, _header(s), _claims(s, p, aud="other-api")),
    "audience list without us": lambda s, p: _signed(
        s, _header(s), _claims(s, p, aud=["other-api", "another"])
    ),
    "typ JWT": lambda s, p: _signed(s, _header(s, typ="JWT"), _claims(s, p)),
    "typ application/jwt": lambda s, p: _signed(
        s, _header(s, typ="application/jwt"), _claims(s, p)
    ),
    "ID token as access token": _id_token,
    "ID token claims with at+jwt type": _id_token_retyped,
    "oversized": _oversized,
    "real key, extra jku header": _real_key_extra_header("jku", "https://evil.example/jwks"),
    "real key, extra crit header": _real_key_extra_header("crit", ["exp"]),
    "real key, extra x5u header": _real_key_extra_header("x5u", "https://evil.example/c"),
    "real key, b64 false": _real_key_extra_header("b64", False),
    "real key, numeric kid": lambda s, p: hand_made(
        _header(s, kid=7), _claims(s, p), _es256(s.keys.current)
    ),
    "client of another tenant": lambda s, p: _signed(
        s,
        _header(s),
        _claims(s, p, scope="crm.read", client_id=f"{uuid.uuid4().hex}.{uuid.uuid4().hex}"),
    ),
    "scope not a string": lambda s, p: _signed(s, _header(s), _claims(s, p, scope=["admin"])),
    "no issued-at": lambda s, p: _signed(s, _header(s), _claims(s, p, iat=None)),
    "subject not a user id": lambda s, p: _signed(s, _header(s), _claims(s, p, sub="admin")),
}


@pytest.mark.parametrize("skin", sorted(PROBES))
@pytest.mark.parametrize("case", list(FORGERIES))
@forgery
async def test_forged_tokens_are_refused(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser, skin: str, case: str
) -> None:
    principal = Principal(user_id=tenant_a.user_id, tenant_id=tenant_a.tenant_id)
    token = FORGERIES[case](services, principal)
    await PROBES[skin](client, f"Bearer {token}")


@pytest.mark.parametrize("size", [5_000, 100_000])
@forgeries(len(PROBES))
async def test_oversized_authorization_headers_are_refused(
    client: httpx.AsyncClient, size: int
) -> None:
    for probe in PROBES.values():
        await probe(client, "Bearer " + "a" * size)


async def test_the_control_token_is_accepted(
    services: Services, client: httpx.AsyncClient, tenant_a: TenantUser
) -> None:
    """The builders make accepted tokens when nothing is wrong (so each refusal is meaningful)."""
    principal = Principal(user_id=tenant_a.user_id, tenant_id=tenant_a.tenant_id)
    by_library = _signed(services, _header(services), _claims(services, principal))
    by_hand = hand_made(
        _header(services), _claims(services, principal), _es256(services.keys.current)
    )
    assert ALGORITHM == "ES256"
    for token in (by_library, by_hand):
        response = await client.get(
            "/api/v1/contacts", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
