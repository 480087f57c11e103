"""Issuing OAuth tokens once a grant has been validated: the async half of the token endpoint.

The scope of every token is cut down, at every issue (refreshes included), to what the client
is allowed *now* and what the user may hold (`admin` only for tenant admins): an admin who
narrows an app, or demotes a user, narrows the next token. A token never carries more.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from backend.auth import codes
from backend.auth.admins import is_tenant_admin
from backend.auth.clients import REFRESH_TOKEN, Client
from backend.auth.origin import Origin
from backend.auth.refresh import NewSession, Rotated, UserInactive, start_session
from backend.auth.tokens import AccessTokens
from backend.context import Principal
from backend.db.base import table_of
from backend.db.session import Database
from backend.history.events import EventType, record_event
from backend.tenants.models import User

_users = table_of(User)
IDENTITY_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})


class GrantRefused(Exception):
    """The user behind the grant can no longer receive tokens (deactivated, gone)."""


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    email: str
    display_name: str | None


def scope_list(scope: str | None) -> list[str]:
    return sorted(set((scope or "").split()))


class OAuthIssuer:
    def __init__(self, db: Database, tokens: AccessTokens, refresh_ttl_seconds: int) -> None:
        self.db = db
        self.tokens = tokens
        self.refresh_ttl = timedelta(seconds=refresh_ttl_seconds)

    async def user_ceiling(
        self, tenant_id: uuid.UUID, user_id: uuid.UUID, scopes: list[str]
    ) -> list[str]:
        """The scopes of `scopes` this user may hold."""
        if "admin" in scopes and not await is_tenant_admin(self.db, tenant_id, user_id):
            return [s for s in scopes if s != "admin"]
        return scopes

    async def for_code(
        self, client: Client, code: codes.IssuedCode, origin: Origin
    ) -> dict[str, Any]:
        await self.tokens.keys.fresh()
        person = await self._person(client.tenant_id, code.user_id)
        scopes = [s for s in scope_list(code.scope) if s in client.allowed_scopes]
        scopes = await self.user_ceiling(client.tenant_id, person.id, scopes)
        with_refresh = REFRESH_TOKEN in client.grant_types
        try:
            async with self.db.tenant_transaction(client.tenant_id) as conn:
                session_id, refresh_token = await start_session(
                    conn,
                    client.tenant_id,
                    NewSession(
                        user_id=person.id,
                        client_id=client.id,
                        scope=" ".join(scopes),
                        name=client.name,
                        amr=code.amr,
                        auth_time=code.auth_time,
                    ),
                    ttl=self.refresh_ttl
                    if with_refresh
                    else timedelta(seconds=self.tokens.settings.access_ttl_seconds),
                    origin=origin,
                    with_refresh_token=with_refresh,
                )
                await codes.link_session(conn, code, session_id)
                await self._issued(
                    conn, client, person.id, scopes, "authorization_code", session_id, origin
                )
        except UserInactive:  # deactivated since the check above
            raise GrantRefused from None
        principal = Principal(
            user_id=person.id,
            tenant_id=client.tenant_id,
            scopes=frozenset(scopes),
            client_id=client.id,
            session_id=session_id,
        )
        return self._response(
            principal, scopes, refresh_token, person, code.nonce, code.amr, code.auth_time
        )

    async def for_refresh(
        self, client: Client, rotated: Rotated, requested: list[str] | None, origin: Origin
    ) -> dict[str, Any]:
        await self.tokens.keys.fresh()
        person = await self._person(client.tenant_id, rotated.user_id)
        granted = requested if requested is not None else scope_list(rotated.scope)
        scopes = [s for s in granted if s in client.allowed_scopes]
        scopes = await self.user_ceiling(client.tenant_id, person.id, scopes)
        principal = Principal(
            user_id=person.id,
            tenant_id=client.tenant_id,
            scopes=frozenset(scopes),
            client_id=client.id,
            session_id=rotated.session_id,
        )
        return self._response(
            principal, scopes, rotated.refresh_token, person, None, rotated.amr, rotated.auth_time
        )

    async def for_client(self, client: Client, scopes: list[str], origin: Origin) -> dict[str, Any]:
        """Client credentials: the app acts as its service user. Each token gets a session of
        its own (no refresh token, the token's lifetime), so that revoking the token at
        /oauth/revoke, deactivating or deleting the app ends it at once like any other."""
        await self.tokens.keys.fresh()
        if client.service_user_id is None:
            raise GrantRefused
        await self._person(client.tenant_id, client.service_user_id, kind="service")
        try:
            async with self.db.tenant_transaction(client.tenant_id) as conn:
                session_id, _ = await start_session(
                    conn,
                    client.tenant_id,
                    NewSession(
                        user_id=client.service_user_id,
                        client_id=client.id,
                        scope=" ".join(scopes),
                        name=client.name,
                        amr=[],
                        auth_time=datetime.now(UTC),
                    ),
                    ttl=timedelta(seconds=self.tokens.settings.access_ttl_seconds),
                    origin=origin,
                    with_refresh_token=False,
                )
                await self._issued(
                    conn,
                    client,
                    client.service_user_id,
                    scopes,
                    "client_credentials",
                    session_id,
                    origin,
                )
        except UserInactive:  # deactivated since the check above
            raise GrantRefused from None
        principal = Principal(
            user_id=client.service_user_id,
            tenant_id=client.tenant_id,
            scopes=frozenset(scopes),
            client_id=client.id,
            session_id=session_id,
        )
        return {
            "access_token": self.tokens.issue(principal),
            "token_type": "Bearer",
            "expires_in": self.tokens.settings.access_ttl_seconds,
            "scope": " ".join(scopes),
        }

    def _response(
        self,
        principal: Principal,
        scopes: list[str],
        refresh_token: str | None,
        person: Person,
        nonce: str | None,
        amr: list[str],
        auth_time: datetime,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.tokens.issue(principal),
            "token_type": "Bearer",
            "expires_in": self.tokens.settings.access_ttl_seconds,
            "scope": " ".join(scopes),
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        if "openid" in scopes:
            profile: dict[str, Any] = {}
            if "email" in scopes:
                profile["email"] = person.email
            if "profile" in scopes and person.display_name:
                profile["name"] = person.display_name
            body["id_token"] = self.tokens.issue_id_token(
                principal=principal,
                auth_time=int(auth_time.timestamp()),
                nonce=nonce,
                amr=amr,
                profile=profile,
            )
        return body

    async def _person(
        self, tenant_id: uuid.UUID, user_id: uuid.UUID, kind: str = "person"
    ) -> Person:
        async with self.db.tenant_transaction(tenant_id) as conn:
            row = (
                await conn.execute(
                    select(_users.c.id, _users.c.email, _users.c.display_name).where(
                        _users.c.id == user_id,
                        _users.c.active.is_(True),
                        _users.c.kind == kind,
                    )
                )
            ).first()
        if row is None:
            raise GrantRefused
        return Person(row.id, row.email, row.display_name)

    async def _issued(
        self,
        conn: Any,
        client: Client,
        user_id: uuid.UUID,
        scopes: list[str],
        grant: str,
        session_id: uuid.UUID | None,
        origin: Origin,
    ) -> None:
        await record_event(
            conn,
            client.tenant_id,
            EventType.TOKEN_ISSUED,
            actor_user_id=user_id,
            actor_client_id=client.id,
            subject_user_id=user_id,
            details={
                "grant_type": grant,
                "scope": " ".join(scopes),
                "session_id": str(session_id) if session_id else None,
                "issued_at": datetime.now(UTC).isoformat(),
            },
            **origin.event_fields(),
        )


async def userinfo(db: Database, principal: Principal) -> dict[str, Any] | None:
    """OpenID Connect userinfo for a token's user, within its scopes; None if the user left."""
    async with db.tenant_transaction(principal.tenant_id) as conn:
        row = (
            await conn.execute(
                select(_users.c.email, _users.c.display_name).where(
                    _users.c.id == principal.user_id, _users.c.active.is_(True)
                )
            )
        ).first()
    if row is None:
        return None
    scopes = principal.scopes
    claims: dict[str, Any] = {"sub": str(principal.user_id), "tenant": str(principal.tenant_id)}
    if scopes is None or "email" in scopes:
        claims["email"] = row.email
    if (scopes is None or "profile" in scopes) and row.display_name:
        claims["name"] = row.display_name
    return claims
