"""Exports: export requests, each tenant's export rules, and the per-user bulk-read budget.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from backend.db.rls import enable_tenant_rls, grant

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_NEW_ID = sa.text("gen_random_uuid()")


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], ondelete="RESTRICT", name=f"fk_{table}_tenant_id_tenants"
    )


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("requested_by", UUID(as_uuid=True), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("fields", ARRAY(sa.Text()), nullable=False),
        sa.Column("filter", JSONB(), nullable=False, server_default="{}"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("decided_by", UUID(as_uuid=True)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("file_key", sa.Text()),
        sa.Column("file_size", sa.BigInteger()),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("link_hash", sa.LargeBinary(32)),
        sa.Column("link_expires_at", sa.DateTime(timezone=True)),
        sa.Column("link_used_at", sa.DateTime(timezone=True)),
        sa.Column("downloads", sa.Integer(), nullable=False, server_default="0"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_exports"),
        _tenant_fk("exports"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "requested_by"],
            ["users.tenant_id", "users.id"],
            name="fk_exports_tenant_id_requested_by_users",
        ),
    )
    op.create_index(
        "ix_exports_tenant_id_requested_by_created_at",
        "exports",
        ["tenant_id", "requested_by", "created_at"],
    )
    op.create_index("ix_exports_tenant_id_status", "exports", ["tenant_id", "status"])
    op.create_table(
        "export_rules",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=_NEW_ID),
        sa.Column("rules", JSONB(), nullable=False),
        sa.Column("updated_by", UUID(as_uuid=True)),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_export_rules"),
        sa.UniqueConstraint("tenant_id", name="uq_export_rules_tenant_id"),
        _tenant_fk("export_rules"),
    )
    op.create_table(
        "bulk_read_usage",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False, server_default=_NEW_ID),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("cells", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_bulk_read_usage"),
        sa.UniqueConstraint("tenant_id", "user_id", name="uq_bulk_read_usage_tenant_id_user_id"),
        _tenant_fk("bulk_read_usage"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.id"],
            ondelete="CASCADE",
            name="fk_bulk_read_usage_tenant_id_user_id_users",
        ),
    )
    for table in ("exports", "export_rules", "bulk_read_usage"):
        enable_tenant_rls(table)
    grant("exports", "SELECT, INSERT, UPDATE")
    grant("export_rules", "SELECT, INSERT, UPDATE")
    grant("bulk_read_usage", "SELECT, INSERT, UPDATE")


def downgrade() -> None:
    op.drop_table("bulk_read_usage")
    op.drop_table("export_rules")
    op.drop_table("exports")
