"""Persisted GraphQL queries in PostgreSQL, shared by every server process.

Revision ID: 0021_ops
Revises: 0015_products_orders
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from backend.db.rls import enable_tenant_rls, grant

revision = "0021_ops"
down_revision: str | None = "0015_products_orders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "persisted_queries",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_persisted_queries"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            ondelete="RESTRICT",
            name="fk_persisted_queries_tenant_id_tenants",
        ),
        sa.UniqueConstraint("tenant_id", "sha256", name="uq_persisted_queries_tenant_id_sha256"),
    )
    enable_tenant_rls("persisted_queries")
    grant("persisted_queries", "SELECT, INSERT, DELETE")


def downgrade() -> None:
    op.drop_table("persisted_queries")
