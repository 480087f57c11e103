"""Everything sign-in keeps: device sessions (refresh-token
families), refresh tokens, OAuth clients and authorization codes, MFA factors, sign-in flows in
progress, signing keys, brute-force counters and revoked access tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, TenantMixin


def _user_fk(column: str = "user_id") -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", column], ["users.tenant_id", "users.id"], ondelete="CASCADE"
    )


def _client_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", "client_id"],
        ["oauth_clients.tenant_id", "oauth_clients.id"],
        ondelete="CASCADE",
    )


class RefreshToken(TenantMixin, Base):
    """One issued refresh token. Only a SHA-256 of the secret is stored. Tokens issued by
    rotation share a family; re-presenting a used token revokes the whole family."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        UniqueConstraint("tenant_id", "token_hash"),
        _user_fk(),
        ForeignKeyConstraint(
            ["tenant_id", "family_id"],
            ["auth_sessions.tenant_id", "auth_sessions.id"],
            ondelete="CASCADE",
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    family_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OAuthClient(TenantMixin, Base):
    """A third-party or first-party app registered by a tenant admin. The public client_id is
    `<tenant-hex>.<id-hex>`, so a lookup can run inside the tenant's RLS transaction."""

    __tablename__ = "oauth_clients"
    __table_args__ = (_user_fk("service_user_id"),)

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    client_type: Mapped[str] = mapped_column(String(16), nullable=False)  # public/confidential
    # SHA-256 of the secret (256 random bits): shown once, never stored in the clear.
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    redirect_uris: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default="{}"
    )
    grant_types: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    allowed_scopes: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default="{}"
    )
    # Client-credentials apps act as this service user, holding `role`.
    service_user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    role: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")


class AuthSession(TenantMixin, Base):
    """A device: one refresh-token family, from a sign-in to its revocation or expiry."""

    __tablename__ = "auth_sessions"
    __table_args__ = (_user_fk(), _client_fk(), Index(None, "tenant_id", "user_id"))

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    # NULL: the first-party app (/auth/sign-in).
    client_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    name: Mapped[str | None] = mapped_column(String(200))
    # Space-separated OAuth scopes; NULL for a first-party session (no scope ceiling).
    scope: Mapped[str | None] = mapped_column(Text)
    # How the user proved who they are: "pwd", "otp", "recovery".
    amr: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    auth_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # The family's absolute end: rotation never extends it.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_used_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    created_ip: Mapped[str | None] = mapped_column(String(64))
    last_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class AuthorizationCode(TenantMixin, Base):
    """An OAuth authorization code: single use, short-lived, bound to client, redirect URI and
    PKCE challenge. Only a SHA-256 of the code is stored."""

    __tablename__ = "authorization_codes"
    __table_args__ = (UniqueConstraint("tenant_id", "code_hash"), _user_fk(), _client_fk())

    code_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    client_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    redirect_uri: Mapped[str] = mapped_column(Text, nullable=False)
    scope: Mapped[str] = mapped_column(Text, nullable=False)
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str] = mapped_column(String(128), nullable=False)
    code_challenge_method: Mapped[str] = mapped_column(String(8), nullable=False)
    amr: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    auth_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The session the code was exchanged for: revoked if the code is replayed.
    session_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class AuthFlow(TenantMixin, Base):
    """A sign-in in progress between two requests: an MFA challenge after the password, or an
    authorization waiting for consent. Identified by a single-use `<tenant-hex>.<secret>`."""

    __tablename__ = "auth_flows"
    __table_args__ = (UniqueConstraint("tenant_id", "token_hash"), _user_fk(), _client_fk())

    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # mfa / consent
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    client_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source_ip: Mapped[str | None] = mapped_column(String(64))


class TotpFactor(TenantMixin, Base):
    """A user's TOTP authenticator. The seed is sealed (see backend/auth/secretbox.py)."""

    __tablename__ = "mfa_totp"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"), _user_fk())

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    secret_sealed: Mapped[str] = mapped_column(Text, nullable=False)
    # NULL until the user proved the authenticator works (enrolment pending).
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last time step accepted: older or equal steps are replays.
    last_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(TenantMixin, Base):
    """Single-use recovery codes (80 random bits each); only a SHA-256 is stored."""

    __tablename__ = "mfa_recovery_codes"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id", "code_hash"), _user_fk())

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SigningKey(Base):
    """The token-signing key ring. GLOBAL, not per tenant: one issuer signs every tenant's tokens
    and publishes one JWKS. The newest active key signs; a new key is published (verifying)
    before it activates, and older ones verify until their tokens expire. The private JWK is
    sealed with the secret key. The app role may read and add keys, never change or delete one
    (grants)."""

    __tablename__ = "signing_keys"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    kid: Mapped[str] = mapped_column(String(128), nullable=False, unique=True)
    algorithm: Mapped[str] = mapped_column(String(16), nullable=False)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    private_jwk_sealed: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    # When it starts signing (every process has seen it by then).
    activates_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ThrottleCounter(Base):
    """Failed sign-in / MFA attempts per account and per source address. GLOBAL: it must count
    attempts against tenants and emails that do not exist (or the answers would differ) and
    per source across all tenants. Keys are SHA-256 hashes; no email or address is stored."""

    __tablename__ = "auth_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TokenRevocation(Base):
    """Access tokens refused before they expire: every token of a revoked device session
    (`session`, keyed by the `sid` claim) or one token (`token`, keyed by its `jti`). GLOBAL,
    not per tenant: each server process keeps the recent rows of every tenant in memory and
    checks each request against them (backend/auth/revocation.py). It holds only opaque random
    ids and times. A row matters for one access-token lifetime after `revoked_at`; the app role
    may read and add rows and delete only day-old ones (a trigger), never change one."""

    __tablename__ = "token_revocations"
    __table_args__ = (Index(None, "revoked_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # session / token
    subject: Mapped[str] = mapped_column(String(64), nullable=False)
    revoked_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
