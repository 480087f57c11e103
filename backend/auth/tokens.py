"""Access tokens: short-lived ES256 JWTs (RFC 9068 shape) signed and checked with joserfc.

joserfc's decode checks the signature only; every claim is validated here explicitly.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError

from backend.auth.keys import ALGORITHM, SigningKeys
from backend.context import Principal
from backend.errors import Unauthenticated

TOKEN_TYPE = "at+jwt"  # noqa: S105 - the JWT typ header (RFC 9068)
_LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class TokenSettings:
    issuer: str
    audience: str
    access_ttl_seconds: int


class AccessTokens:
    def __init__(self, keys: SigningKeys, settings: TokenSettings) -> None:
        self.keys = keys
        self.settings = settings
        self._claims = jwt.JWTClaimsRegistry(
            leeway=_LEEWAY_SECONDS,
            iss={"essential": True, "value": settings.issuer},
            aud={"essential": True, "value": settings.audience},
            exp={"essential": True},
            sub={"essential": True},
            tenant={"essential": True},
        )

    def issue(self, principal: Principal, *, now: int | None = None) -> str:
        issued = int(time.time()) if now is None else now
        header = {"alg": ALGORITHM, "kid": self.keys.current.kid, "typ": TOKEN_TYPE}
        claims = {
            "iss": self.settings.issuer,
            "aud": self.settings.audience,
            "sub": str(principal.user_id),
            "tenant": str(principal.tenant_id),
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.settings.access_ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(header, claims, self.keys.current, algorithms=[ALGORITHM])

    def verify(self, token: str) -> Principal:
        """The principal a valid token names; Unauthenticated for anything else."""
        try:
            decoded = jwt.decode(token, self.keys.verifying, algorithms=[ALGORITHM])
            if decoded.header.get("typ") != TOKEN_TYPE:
                raise Unauthenticated("not an access token", code="invalid_token")
            self._claims.validate(decoded.claims)
            return Principal(
                user_id=uuid.UUID(str(decoded.claims["sub"])),
                tenant_id=uuid.UUID(str(decoded.claims["tenant"])),
            )
        except (JoseError, ValueError, TypeError, KeyError):
            raise Unauthenticated(
                "the access token is invalid or expired", code="invalid_token"
            ) from None
