"""First-party sign-in and refresh-token rotation.

A refresh token is `<tenant-id-hex>.<secret>`: the tenant part lets the lookup run inside that
tenant's RLS-scoped transaction; only the SHA-256 of the whole token is stored. Each refresh
marks its token used and issues a successor in the same family, which keeps the family's
absolute expiry. Presenting a used token again revokes the whole family (stolen-token reuse).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select, update

from backend.auth.models import RefreshToken, User
from backend.auth.passwords import MAX_PASSWORD_LENGTH, verify_password
from backend.auth.tokens import AccessTokens
from backend.context import Principal
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import Database
from backend.errors import Unauthenticated
from backend.tenants.lookup import tenant_id_for_slug

_users = table_of(User)
_refresh = table_of(RefreshToken)
_BAD_CREDENTIALS = "the tenant, email or password is wrong"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_refresh_token(tenant_id: uuid.UUID) -> str:
    return f"{tenant_id.hex}.{secrets.token_urlsafe(32)}"


class SessionService:
    def __init__(self, db: Database, tokens: AccessTokens, refresh_ttl_seconds: int) -> None:
        self.db = db
        self.tokens = tokens
        self.refresh_ttl = timedelta(seconds=refresh_ttl_seconds)

    async def sign_in(self, tenant_slug: str, email: str, password: str) -> TokenPair:
        """Every failure (tenant, email, password, inactive user) is the same 401."""
        tenant_id = await tenant_id_for_slug(self.db, tenant_slug)
        row = None
        if tenant_id is not None and len(email) <= 254:
            async with self.db.tenant_transaction(tenant_id) as conn:
                stmt = select(_users.c.id, _users.c.password_hash, _users.c.active).where(
                    _users.c.tenant_id == tenant_id, _users.c.email == email.strip().lower()
                )
                row = (await conn.execute(stmt)).first()
        password_ok = len(password) <= MAX_PASSWORD_LENGTH and await verify_password(
            row.password_hash if row is not None else None, password
        )
        if row is None or tenant_id is None or not password_ok or not row.active:
            raise Unauthenticated(_BAD_CREDENTIALS, code="invalid_credentials")
        principal = Principal(user_id=row.id, tenant_id=tenant_id)
        family_expiry = datetime.now(UTC) + self.refresh_ttl
        refresh = await self._store_refresh(principal, uuid7(), family_expiry)
        return self._pair(principal, refresh)

    async def refresh(self, refresh_token: str) -> TokenPair:
        invalid = Unauthenticated("the refresh token is invalid", code="invalid_refresh_token")
        tenant_hex, _, secret = refresh_token.partition(".")
        try:
            tenant_id = uuid.UUID(hex=tenant_hex)
        except ValueError:
            raise invalid from None
        if not secret or len(refresh_token) > 200:
            raise invalid
        reused = False
        async with self.db.tenant_transaction(tenant_id) as conn:
            stmt = (
                select(_refresh, _users.c.active)
                .join(
                    _users,
                    (_users.c.tenant_id == _refresh.c.tenant_id)
                    & (_users.c.id == _refresh.c.user_id),
                )
                .where(
                    _refresh.c.tenant_id == tenant_id,
                    _refresh.c.token_hash == _hash(refresh_token),
                )
                .with_for_update(of=_refresh)
            )
            row = (await conn.execute(stmt)).first()
            if row is None or row.revoked_at is not None:
                raise invalid
            if row.used_at is not None:
                # Reuse of a rotated token: someone else holds this family. Revoke all of it.
                await conn.execute(
                    update(_refresh)
                    .where(_refresh.c.tenant_id == tenant_id, _refresh.c.family_id == row.family_id)
                    .values(revoked_at=func.now())
                )
                reused = True
            elif row.expires_at <= datetime.now(UTC) or not row.active:
                raise invalid
            else:
                await conn.execute(
                    update(_refresh)
                    .where(_refresh.c.tenant_id == tenant_id, _refresh.c.id == row.id)
                    .values(used_at=func.now())
                )
                principal = Principal(user_id=row.user_id, tenant_id=tenant_id)
                new_token = _new_refresh_token(tenant_id)
                await conn.execute(
                    insert(_refresh).values(
                        self._row(principal, row.family_id, row.expires_at, new_token)
                    )
                )
        if reused:  # raised after the revocation committed
            raise Unauthenticated("the refresh token was already used", code="refresh_token_reused")
        return self._pair(principal, new_token)

    async def _store_refresh(
        self, principal: Principal, family_id: uuid.UUID, expires_at: datetime
    ) -> str:
        token = _new_refresh_token(principal.tenant_id)
        async with self.db.tenant_transaction(principal.tenant_id) as conn:
            await conn.execute(
                insert(_refresh).values(self._row(principal, family_id, expires_at, token))
            )
        return token

    @staticmethod
    def _row(
        principal: Principal, family_id: uuid.UUID, expires_at: datetime, token: str
    ) -> dict[str, object]:
        return {
            "tenant_id": principal.tenant_id,
            "id": uuid7(),
            "user_id": principal.user_id,
            "family_id": family_id,
            "token_hash": _hash(token),
            "expires_at": expires_at,
        }

    def _pair(self, principal: Principal, refresh_token: str) -> TokenPair:
        return TokenPair(
            access_token=self.tokens.issue(principal),
            refresh_token=refresh_token,
            expires_in=self.tokens.settings.access_ttl_seconds,
        )
