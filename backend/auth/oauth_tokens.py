"""Token revocation (RFC 7009) and introspection (RFC 7662): finding the token a client names,
and ending the session behind it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from sqlalchemy import select
from sqlalchemy.util import await_only

from backend.auth.models import AuthSession
from backend.auth.oauth_client_auth import ALL_METHODS, SECRET_METHODS, AuthlibClient
from backend.auth.oauth_request import CaravanRequest
from backend.auth.opaque import public_client_id, tenant_of
from backend.auth.origin import Origin
from backend.auth.refresh import find, revoke_session
from backend.auth.revocation import revoke_token
from backend.auth.tokens import AccessTokens
from backend.db.base import table_of
from backend.db.session import Database
from backend.errors import Unauthenticated
from backend.history.events import EventType, record_event

if TYPE_CHECKING:
    from backend.auth.oauth_server import CaravanServer

_sessions = table_of(AuthSession)


@dataclass(frozen=True)
class TokenInfo:
    kind: str  # access_token / refresh_token
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    client_id: uuid.UUID | None
    session_id: uuid.UUID | None
    scope: str | None
    active: bool
    exp: int
    iat: int
    claims: dict[str, Any] = field(default_factory=dict)

    def check_client(self, client: AuthlibClient) -> bool:
        return self.client_id is not None and self.client_id == client.client.id

    def is_expired(self) -> bool:
        return not self.active

    def is_revoked(self) -> bool:
        return not self.active


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ALL_METHODS

    @property
    def caravan(self) -> CaravanServer:
        return cast("CaravanServer", self.server)

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenInfo | None:
        return await_only(self.caravan.find_token(token_string, token_type_hint))

    def revoke_token(self, token: TokenInfo, request: CaravanRequest) -> None:
        await_only(self.caravan.revoke(token, request.http.origin))


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = SECRET_METHODS

    @property
    def caravan(self) -> CaravanServer:
        return cast("CaravanServer", self.server)

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenInfo | None:
        return await_only(self.caravan.find_token(token_string, token_type_hint))

    def check_permission(self, token: TokenInfo, client: AuthlibClient, request: Any) -> bool:
        """An app may introspect only the tokens issued to it."""
        return token.check_client(client)

    def introspect_token(self, token: TokenInfo) -> dict[str, Any]:
        assert token.client_id is not None
        return {
            "active": True,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "scope": token.scope or "",
            "client_id": public_client_id(token.tenant_id, token.client_id),
            "sub": str(token.user_id),
            "tenant": str(token.tenant_id),
            "exp": token.exp,
            "iat": token.iat,
            "iss": self.caravan.tokens.settings.issuer,
            "aud": self.caravan.tokens.settings.audience,
            **({"sid": str(token.session_id)} if token.session_id else {}),
        }


async def find_token(
    db: Database, tokens: AccessTokens, token: str, hint: str | None
) -> TokenInfo | None:
    """The token a client names, access or refresh (`hint` says which to try first)."""
    if hint != "refresh_token":
        found = await _access_token(db, tokens, token)
        if found is not None or hint == "access_token":
            return found
    record = await find(db, token)
    if record is None:
        return None if hint == "refresh_token" else await _access_token(db, tokens, token)
    return TokenInfo(
        kind="refresh_token",
        tenant_id=record.tenant_id,
        user_id=record.user_id,
        client_id=record.client_id,
        session_id=record.session_id,
        scope=record.scope,
        active=record.active,
        exp=int(record.expires_at.timestamp()),
        iat=int(record.created_at.timestamp()),
    )


async def _access_token(db: Database, tokens: AccessTokens, token: str) -> TokenInfo | None:
    if tenant_of(token) is not None:
        return None  # an opaque credential, not a JWT
    try:
        principal, claims, revoked = await tokens.inspect(token)
    except Unauthenticated:
        return None
    active = not revoked
    if active and principal.session_id is not None:
        async with db.tenant_transaction(principal.tenant_id) as conn:
            session = (
                await conn.execute(
                    select(_sessions.c.revoked_at).where(_sessions.c.id == principal.session_id)
                )
            ).first()
        active = session is not None and session.revoked_at is None
    return TokenInfo(
        kind="access_token",
        tenant_id=principal.tenant_id,
        user_id=principal.user_id,
        client_id=principal.client_id,
        session_id=principal.session_id,
        scope=claims.get("scope"),
        active=active,
        exp=int(claims["exp"]),
        iat=int(claims["iat"]),
        claims=claims,
    )


async def revoke(db: Database, token: TokenInfo, origin: Origin) -> None:
    """A refresh token, or an access token of a session: the whole session ends, and its
    access tokens are refused from the next request on. An access token is also revoked by
    its `jti` (one issued without a session, before client-credentials tokens had one)."""
    async with db.tenant_transaction(token.tenant_id) as conn:
        revoked = False
        if token.session_id is not None:
            revoked = await revoke_session(
                conn, token.tenant_id, token.session_id, "client_revoked"
            )
        jti = token.claims.get("jti")
        if token.kind == "access_token" and token.active and isinstance(jti, str):
            await revoke_token(conn, jti)
        await record_event(
            conn,
            token.tenant_id,
            EventType.TOKEN_REVOKED,
            actor_client_id=token.client_id,
            subject_user_id=token.user_id,
            details={
                "token_type": token.kind,
                "session_id": str(token.session_id) if token.session_id else None,
                "session_revoked": revoked,
            },
            **origin.event_fields(),
        )
