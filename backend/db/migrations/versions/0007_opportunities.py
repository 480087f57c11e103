"""Opportunities: the sales pipeline, on the generic record service, with row-level security.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from backend.db.rls import enable_tenant_rls, grant

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _link(column: str, table: str) -> sa.ForeignKeyConstraint:
    """Deleting the linked record keeps the opportunity and clears only the link."""
    return sa.ForeignKeyConstraint(
        ["tenant_id", column],
        [f"{table}.tenant_id", f"{table}.id"],
        ondelete=f"SET NULL ({column})",
        name=f"fk_opportunities_tenant_id_{column}_{table}",
    )


def upgrade() -> None:
    op.create_table(
        "opportunities",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("amount", sa.Numeric(14, 2)),
        sa.Column("currency", sa.String(3)),
        sa.Column("probability", sa.SmallInteger()),
        sa.Column("close_date", sa.Date(), nullable=False),
        sa.Column("account_id", UUID(as_uuid=True)),
        sa.Column("contact_id", UUID(as_uuid=True)),
        sa.Column("competitor", sa.String(200)),
        sa.Column("budget", sa.Numeric(14, 2)),
        sa.Column("cost", sa.Numeric(14, 2)),
        sa.Column("next_step", sa.String(200)),
        sa.Column("description", sa.Text()),
        sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
        sa.Column("tags", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_opportunities"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            ondelete="RESTRICT",
            name="fk_opportunities_tenant_id_tenants",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "owner_id"],
            ["users.tenant_id", "users.id"],
            name="fk_opportunities_tenant_id_owner_id_users",
        ),
        _link("account_id", "accounts"),
        _link("contact_id", "contacts"),
        sa.CheckConstraint(
            "probability BETWEEN 0 AND 100", name="ck_opportunities_probability_percent"
        ),
    )
    for column in ("owner_id", "account_id", "contact_id", "updated_at"):
        op.create_index(
            f"ix_opportunities_tenant_id_{column}", "opportunities", ["tenant_id", column]
        )
    enable_tenant_rls("opportunities")
    grant("opportunities", "SELECT, INSERT, UPDATE, DELETE")


def downgrade() -> None:
    op.drop_table("opportunities")
