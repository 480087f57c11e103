"""Access tokens (RFC 9068 shape) and OpenID Connect ID tokens: ES256 JWTs signed and checked
with joserfc and the database key ring.

joserfc's decode checks the signature only; everything else is checked here, explicitly:
the size, a header of exactly alg/kid/typ (no `jwk`, `jku`, `x5u`, `x5c`, `crit`...), the
algorithm, the type (`at+jwt`: an ID token is never an access token), the key id (a key of the
ring, looked up in memory only), then iss, aud, exp, nbf, iat and a lifetime no longer than
this server issues.

Claims: `sub` (user), `tenant`, `sid` (the device session), `jti`; OAuth tokens add `scope`
(space-separated) and `client_id`. A first-party token has no `scope` claim: no scope ceiling.

`authenticate` also refuses a token whose session or `jti` has been revoked (see
backend/auth/revocation.py): revocation bites on the next request, not at expiry.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from backend.auth.keyring import KeyRing
from backend.auth.keys import ALGORITHM
from backend.auth.opaque import parse_client_id, public_client_id
from backend.auth.revocation import RevocationList
from backend.context import Principal
from backend.errors import Unauthenticated

TOKEN_TYPE = "at+jwt"  # noqa: S105 - the JWT typ header (RFC 9068)
ID_TOKEN_TYPE = "JWT"  # noqa: S105 - the typ of OpenID Connect ID tokens
MAX_TOKEN_LENGTH = 4096
_HEADER_NAMES = frozenset({"alg", "kid", "typ"})
_MAX_KID_LENGTH = 128
VERIFIED_CACHE_SIZE = 4096  # tokens; each entry is a few hundred bytes


@dataclass(frozen=True)
class TokenSettings:
    issuer: str
    audience: str
    access_ttl_seconds: int
    leeway_seconds: int = 30


def _invalid() -> Unauthenticated:
    return Unauthenticated("the access token is invalid or expired", code="invalid_token")


def unverified_header(token: str) -> dict[str, Any] | None:
    """The JOSE header of a compact JWS, or None when it is not one. Nothing is trusted yet."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        return None
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return None
    return header if isinstance(header, dict) else None


class AccessTokens:
    def __init__(
        self, keys: KeyRing, settings: TokenSettings, revocations: RevocationList | None = None
    ) -> None:
        self.keys = keys
        self.settings = settings
        self.revocations = revocations
        # token -> (kid, claims) of tokens whose signature verified; see _remember.
        self._verified: dict[str, tuple[str, dict[str, Any]]] = {}

    # -- issuing -----------------------------------------------------------------------------
    def issue(self, principal: Principal, *, now: int | None = None) -> str:
        issued = int(time.time()) if now is None else now
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "aud": self.settings.audience,
            "sub": str(principal.user_id),
            "tenant": str(principal.tenant_id),
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.settings.access_ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        if principal.scopes is not None:
            claims["scope"] = " ".join(sorted(principal.scopes))
        if principal.client_id is not None:
            claims["client_id"] = public_client_id(principal.tenant_id, principal.client_id)
        if principal.session_id is not None:
            claims["sid"] = str(principal.session_id)
        return self._sign(TOKEN_TYPE, claims)

    def issue_id_token(
        self,
        *,
        principal: Principal,
        auth_time: int,
        nonce: str | None,
        amr: list[str],
        profile: dict[str, Any],
        now: int | None = None,
    ) -> str:
        """An OpenID Connect ID token for the client in `principal` (its audience)."""
        assert principal.client_id is not None
        issued = int(time.time()) if now is None else now
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "aud": public_client_id(principal.tenant_id, principal.client_id),
            "sub": str(principal.user_id),
            "tenant": str(principal.tenant_id),
            "iat": issued,
            "exp": issued + self.settings.access_ttl_seconds,
            "auth_time": auth_time,
            "amr": amr,
            **profile,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        return self._sign(ID_TOKEN_TYPE, claims)

    def _sign(self, typ: str, claims: dict[str, Any]) -> str:
        key = self.keys.current
        header = {"alg": ALGORITHM, "kid": key.kid, "typ": typ}
        return jwt.encode(header, claims, key, algorithms=[ALGORITHM])

    # -- verifying ---------------------------------------------------------------------------
    async def authenticate(self, token: str) -> Principal:
        """verify(), after making sure the key ring is current for the token's key id, and
        refusing a revoked token."""
        principal, _claims, revoked = await self.inspect(token)
        if revoked:
            raise _invalid()
        return principal

    async def inspect(self, token: str) -> tuple[Principal, dict[str, Any], bool]:
        """The principal and claims of a validly signed, unexpired token, and whether it has
        been revoked (introspection answers for revoked tokens too). Unauthenticated else."""
        header = unverified_header(token)
        kid = header.get("kid") if header else None
        if isinstance(kid, str) and 0 < len(kid) <= _MAX_KID_LENGTH:
            await self.keys.find(kid)
        else:
            await self.keys.fresh()
        claims = self.verified_claims(token)
        principal = self._principal(claims)
        if self.revocations is None:
            return principal, claims, False
        await self.revocations.fresh()
        return principal, claims, self.revocations.refuses(claims)

    def verify(self, token: str, *, now: int | None = None) -> Principal:
        """The principal a valid access token names; Unauthenticated for anything else.
        Signature, times and claims only: `authenticate` also checks revocation."""
        return self._principal(self.verified_claims(token, now=now))

    def _principal(self, claims: dict[str, Any]) -> Principal:
        try:
            tenant_id = uuid.UUID(str(claims["tenant"]))
            scope = claims.get("scope")
            client = claims.get("client_id")
            sid = claims.get("sid")
            if scope is not None and not isinstance(scope, str):
                raise _invalid()
            client_ids = parse_client_id(client) if client is not None else None
            if client is not None and (client_ids is None or client_ids[0] != tenant_id):
                raise _invalid()
            return Principal(
                user_id=uuid.UUID(str(claims["sub"])),
                tenant_id=tenant_id,
                scopes=frozenset(scope.split()) if scope is not None else None,
                client_id=client_ids[1] if client_ids else None,
                session_id=uuid.UUID(str(sid)) if sid is not None else None,
            )
        except (ValueError, TypeError, KeyError):
            raise _invalid() from None

    def verified_claims(self, token: str, *, now: int | None = None) -> dict[str, Any]:
        header = unverified_header(token)
        if (
            header is None
            or set(header) != _HEADER_NAMES
            or header["alg"] != ALGORITHM
            or header["typ"] != TOKEN_TYPE
            or not isinstance(header["kid"], str)
            or not self.keys.knows(header["kid"])
        ):
            raise _invalid()
        at = int(time.time()) if now is None else now
        leeway = self.settings.leeway_seconds
        kid = header["kid"]
        cached = self._verified.get(token)
        if cached is not None and cached[0] == kid:
            # The signature was checked before; everything that can change is checked again.
            claims = dict(cached[1])
            self._check_times(claims, at)
            return claims
        registry = jwt.JWTClaimsRegistry(
            now=at,
            leeway=leeway,
            iss={"essential": True, "value": self.settings.issuer},
            aud={"essential": True, "value": self.settings.audience},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            tenant={"essential": True},
        )
        try:
            decoded = jwt.decode(token, self.keys.verifying, algorithms=[ALGORITHM])
            claims = dict(decoded.claims)
            registry.validate(claims)
        except (JoseError, ValueError, TypeError, KeyError):
            raise _invalid() from None
        exp = claims["exp"]
        if not isinstance(exp, int) or exp > at + self.settings.access_ttl_seconds + leeway:
            raise _invalid()  # longer-lived than anything this server issues
        self._remember(token, kid, claims)
        return claims

    def _check_times(self, claims: dict[str, Any], at: int) -> None:
        """exp, nbf and iat of claims whose signature was verified earlier."""
        leeway = self.settings.leeway_seconds
        try:
            jwt.JWTClaimsRegistry(
                now=at, leeway=leeway, exp={"essential": True}, iat={"essential": True}
            ).validate(claims)
        except (JoseError, ValueError, TypeError):
            raise _invalid() from None
        if claims["exp"] > at + self.settings.access_ttl_seconds + leeway:
            raise _invalid()

    def _remember(self, token: str, kid: str, claims: dict[str, Any]) -> None:
        """A bounded cache of verified signatures (an ES256 check costs ~0.5 ms of CPU, more
        than the rest of a read). Keyed by the whole token; a hit still needs its key in the
        ring (a removed key fails at `knows` above) and checks the times again."""
        while self._verified and len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))  # the oldest entry
        self._verified[token] = (kid, claims)
