"""Foundation: tenants, users, refresh tokens, accounts, contacts, with row-level security.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from backend.db.rls import app_role, enable_tenant_rls, grant

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tenant_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    ]


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def _address() -> list[sa.Column[object]]:
    return [
        sa.Column("address_line1", sa.String(200)),
        sa.Column("address_line2", sa.String(200)),
        sa.Column("city", sa.String(100)),
        sa.Column("region", sa.String(100)),
        sa.Column("postal_code", sa.String(20)),
        sa.Column("country", sa.String(2)),
    ]


def _tenant_keys(table: str) -> list[sa.Constraint]:
    return [
        sa.PrimaryKeyConstraint("tenant_id", "id", name=f"pk_{table}"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], ondelete="RESTRICT", name=f"fk_{table}_tenant_id_tenants"
        ),
    ]


def _owner_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", "owner_id"],
        ["users.tenant_id", "users.id"],
        name=f"fk_{table}_tenant_id_owner_id_users",
    )


def upgrade() -> None:
    role = app_role()
    op.create_table(
        "tenants",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("slug", sa.String(63), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("slug", name="uq_tenants_slug"),
    )
    # Tenants: RLS enabled but not FORCEd, so that the owner-defined lookup function below can
    # resolve a slug before any tenant is set. The app role sees (and may create) only the
    # tenant its transaction is set to.
    op.execute("ALTER TABLE tenants ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_self ON tenants "
        "USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid) "
        "WITH CHECK (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
    )
    grant("tenants", "SELECT, INSERT, UPDATE")
    op.execute(
        """
        CREATE FUNCTION tenant_id_for_slug(p_slug text) RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
        AS $$ SELECT id FROM tenants WHERE slug = p_slug $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION tenant_id_for_slug(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION tenant_id_for_slug(text) TO {role}")

    op.create_table(
        "users",
        *_tenant_columns(),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("display_name", sa.String(200)),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default="true"),
        *_timestamps(),
        *_tenant_keys("users"),
        sa.UniqueConstraint("tenant_id", "email", name="uq_users_tenant_id_email"),
    )
    op.create_table(
        "refresh_tokens",
        *_tenant_columns(),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("family_id", UUID(as_uuid=True), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        *_tenant_keys("refresh_tokens"),
        sa.UniqueConstraint(
            "tenant_id", "token_hash", name="uq_refresh_tokens_tenant_id_token_hash"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.id"],
            ondelete="CASCADE",
            name="fk_refresh_tokens_tenant_id_user_id_users",
        ),
    )
    op.create_table(
        "accounts",
        *_tenant_columns(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("industry", sa.String(100)),
        sa.Column("website", sa.String(2048)),
        sa.Column("phone", sa.String(40)),
        sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
        sa.Column("tags", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        *_address(),
        *_timestamps(),
        *_tenant_keys("accounts"),
        _owner_fk("accounts"),
    )
    op.create_index("ix_accounts_tenant_id_owner_id", "accounts", ["tenant_id", "owner_id"])
    op.create_index("ix_accounts_tenant_id_updated_at", "accounts", ["tenant_id", "updated_at"])
    op.create_table(
        "contacts",
        *_tenant_columns(),
        sa.Column("first_name", sa.String(100)),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("phone", sa.String(40)),
        sa.Column("mobile_phone", sa.String(40)),
        sa.Column("title", sa.String(100)),
        sa.Column("account_id", UUID(as_uuid=True)),
        sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
        sa.Column("notes", sa.Text()),
        sa.Column("tags", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        *_address(),
        *_timestamps(),
        *_tenant_keys("contacts"),
        _owner_fk("contacts"),
        # Deleting an account keeps its contacts and clears only account_id (not tenant_id).
        sa.ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["accounts.tenant_id", "accounts.id"],
            ondelete="SET NULL (account_id)",
            name="fk_contacts_tenant_id_account_id_accounts",
        ),
    )
    for columns in (["owner_id"], ["account_id"], ["updated_at"], ["email"]):
        op.create_index(f"ix_contacts_tenant_id_{columns[0]}", "contacts", ["tenant_id", *columns])

    for table in ("users", "refresh_tokens", "accounts", "contacts"):
        enable_tenant_rls(table)
    grant("alembic_version", "SELECT")  # for /ready: are migrations current?
    grant("users", "SELECT, INSERT, UPDATE")
    grant("refresh_tokens", "SELECT, INSERT, UPDATE, DELETE")
    grant("accounts", "SELECT, INSERT, UPDATE, DELETE")
    grant("contacts", "SELECT, INSERT, UPDATE, DELETE")


def downgrade() -> None:
    for table in ("contacts", "accounts", "refresh_tokens", "users"):
        op.drop_table(table)
    op.execute("DROP FUNCTION tenant_id_for_slug(text)")
    op.drop_table("tenants")
