"""Sign-in for phones and third-party apps: OAuth clients, authorization codes, device sessions,
MFA, sign-in flows, the signing-key ring and brute-force counters.

Existing refresh-token families become device sessions (backfilled below).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from backend.db.rls import enable_tenant_rls, grant

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_NOW = sa.func.now()


def _tenant_columns(table: str) -> list[sa.Column[object] | sa.Constraint]:
    return [
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=f"pk_{table}"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], ondelete="RESTRICT", name=f"fk_{table}_tenant_id_tenants"
        ),
    ]


def _user_fk(table: str, column: str = "user_id") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", column],
        ["users.tenant_id", "users.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_tenant_id_{column}_users",
    )


def _client_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", "client_id"],
        ["oauth_clients.tenant_id", "oauth_clients.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_tenant_id_client_id_oauth_clients",
    )


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column(
        "tenants",
        sa.Column("require_admin_mfa", sa.Boolean(), nullable=False, server_default="true"),
    )
    op.alter_column("users", "password_hash", nullable=True)
    op.add_column(
        "users", sa.Column("kind", sa.String(16), nullable=False, server_default="person")
    )

    op.create_table(
        "oauth_clients",
        *_tenant_columns("oauth_clients"),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("client_type", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64)),
        sa.Column("redirect_uris", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("grant_types", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("allowed_scopes", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("service_user_id", UUID(as_uuid=True)),
        sa.Column("role", sa.String(100)),
        sa.Column("active", sa.Boolean(), nullable=False, server_default="true"),
        _user_fk("oauth_clients", "service_user_id"),
    )
    op.create_table(
        "auth_sessions",
        *_tenant_columns("auth_sessions"),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("client_id", UUID(as_uuid=True)),
        sa.Column("name", sa.String(200)),
        sa.Column("scope", sa.Text()),
        sa.Column("amr", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        _ts("auth_time", nullable=False),
        _ts("expires_at", nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("created_ip", sa.String(64)),
        sa.Column("last_ip", sa.String(64)),
        sa.Column("user_agent", sa.String(300)),
        _ts("revoked_at"),
        sa.Column("revoked_reason", sa.String(32)),
        _user_fk("auth_sessions"),
        _client_fk("auth_sessions"),
    )
    op.create_index("ix_auth_sessions_tenant_id_user_id", "auth_sessions", ["tenant_id", "user_id"])

    # Every existing refresh-token family becomes a device session. The owner role is subject
    # to FORCEd row-level security too, so it is lifted for this statement only (same
    # transaction: nobody sees the table unforced).
    op.execute("ALTER TABLE refresh_tokens NO FORCE ROW LEVEL SECURITY")
    op.execute(
        """
        INSERT INTO auth_sessions (tenant_id, id, user_id, name, amr, auth_time, expires_at,
                                   last_used_at, revoked_at, revoked_reason, created_at)
        SELECT tenant_id, family_id, min(user_id::text)::uuid, 'Signed in before devices', '{pwd}',
               min(created_at), max(expires_at), max(coalesce(used_at, created_at)),
               CASE WHEN bool_and(revoked_at IS NOT NULL) THEN max(revoked_at) END,
               CASE WHEN bool_and(revoked_at IS NOT NULL) THEN 'migrated' END,
               min(created_at)
        FROM refresh_tokens GROUP BY tenant_id, family_id
        """
    )
    op.execute("ALTER TABLE refresh_tokens FORCE ROW LEVEL SECURITY")
    op.create_foreign_key(
        "fk_refresh_tokens_tenant_id_family_id_auth_sessions",
        "refresh_tokens",
        "auth_sessions",
        ["tenant_id", "family_id"],
        ["tenant_id", "id"],
        ondelete="CASCADE",
    )

    op.create_table(
        "authorization_codes",
        *_tenant_columns("authorization_codes"),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("client_id", UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("nonce", sa.String(255)),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("code_challenge_method", sa.String(8), nullable=False),
        sa.Column("amr", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        _ts("auth_time", nullable=False),
        _ts("expires_at", nullable=False),
        _ts("used_at"),
        sa.Column("session_id", UUID(as_uuid=True)),
        sa.UniqueConstraint(
            "tenant_id", "code_hash", name="uq_authorization_codes_tenant_id_code_hash"
        ),
        _user_fk("authorization_codes"),
        _client_fk("authorization_codes"),
    )
    op.create_table(
        "auth_flows",
        *_tenant_columns("auth_flows"),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("client_id", UUID(as_uuid=True)),
        sa.Column("data", JSONB(), nullable=False, server_default="{}"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        _ts("expires_at", nullable=False),
        _ts("used_at"),
        sa.Column("source_ip", sa.String(64)),
        sa.UniqueConstraint("tenant_id", "token_hash", name="uq_auth_flows_tenant_id_token_hash"),
        _user_fk("auth_flows"),
        _client_fk("auth_flows"),
    )
    op.create_table(
        "mfa_totp",
        *_tenant_columns("mfa_totp"),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        _ts("confirmed_at"),
        sa.Column("last_step", sa.BigInteger()),
        sa.UniqueConstraint("tenant_id", "user_id", name="uq_mfa_totp_tenant_id_user_id"),
        _user_fk("mfa_totp"),
    )
    op.create_table(
        "mfa_recovery_codes",
        *_tenant_columns("mfa_recovery_codes"),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        _ts("used_at"),
        sa.UniqueConstraint(
            "tenant_id",
            "user_id",
            "code_hash",
            name="uq_mfa_recovery_codes_tenant_id_user_id_code_hash",
        ),
        _user_fk("mfa_recovery_codes"),
    )

    # Global tables (see the models for why they are not per tenant).
    op.create_table(
        "signing_keys",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("kid", sa.String(128), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("public_jwk", JSONB(), nullable=False),
        sa.Column("private_jwk_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        _ts("activates_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signing_keys"),
        sa.UniqueConstraint("kid", name="uq_signing_keys_kid"),
    )
    op.create_table(
        "auth_throttle",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        _ts("last_failure_at", nullable=False),
        _ts("blocked_until"),
        sa.PrimaryKeyConstraint("key", name="pk_auth_throttle"),
    )

    for table in (
        "oauth_clients",
        "auth_sessions",
        "authorization_codes",
        "auth_flows",
        "mfa_totp",
        "mfa_recovery_codes",
    ):
        enable_tenant_rls(table)
    grant("oauth_clients", "SELECT, INSERT, UPDATE, DELETE")
    grant("auth_sessions", "SELECT, INSERT, UPDATE")
    grant("authorization_codes", "SELECT, INSERT, UPDATE, DELETE")
    grant("auth_flows", "SELECT, INSERT, UPDATE, DELETE")
    grant("mfa_totp", "SELECT, INSERT, UPDATE, DELETE")
    grant("mfa_recovery_codes", "SELECT, INSERT, UPDATE, DELETE")
    # The app may add a signing key (rotation) but never change or delete one.
    grant("signing_keys", "SELECT, INSERT")
    grant("auth_throttle", "SELECT, INSERT, UPDATE, DELETE")


def downgrade() -> None:
    for table in (
        "auth_throttle",
        "signing_keys",
        "mfa_recovery_codes",
        "mfa_totp",
        "auth_flows",
        "authorization_codes",
    ):
        op.drop_table(table)
    op.drop_constraint(
        "fk_refresh_tokens_tenant_id_family_id_auth_sessions", "refresh_tokens", type_="foreignkey"
    )
    op.drop_table("auth_sessions")
    op.drop_table("oauth_clients")
    op.execute("ALTER TABLE users NO FORCE ROW LEVEL SECURITY")
    op.execute("DELETE FROM users WHERE kind = 'service'")
    op.execute("ALTER TABLE users FORCE ROW LEVEL SECURITY")
    op.drop_column("users", "kind")
    op.alter_column("users", "password_hash", nullable=False)
    op.drop_column("tenants", "require_admin_mfa")
