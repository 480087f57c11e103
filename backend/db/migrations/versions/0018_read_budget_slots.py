"""Read budget counters in slots: one counter row per user and database connection slot, so
concurrent reads by one user no longer queue on one row lock until their commits.

Revision ID: 0018_read_budget_slots
Revises: 0012_custom_fields
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_read_budget_slots"
down_revision: str | None = "0012_custom_fields"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "bulk_read_usage",
        sa.Column("slot", sa.SmallInteger(), nullable=False, server_default="0"),
    )
    op.drop_constraint("uq_bulk_read_usage_tenant_id_user_id", "bulk_read_usage", type_="unique")
    op.create_unique_constraint(
        "uq_bulk_read_usage_tenant_id_user_id_slot",
        "bulk_read_usage",
        ["tenant_id", "user_id", "slot"],
    )


def downgrade() -> None:
    # Fold the slots back into one counter per user before the old constraint returns.
    op.execute(
        """
        DELETE FROM bulk_read_usage AS u USING bulk_read_usage AS v
        WHERE u.tenant_id = v.tenant_id AND u.user_id = v.user_id AND u.slot > v.slot
        """
    )
    op.drop_constraint(
        "uq_bulk_read_usage_tenant_id_user_id_slot", "bulk_read_usage", type_="unique"
    )
    op.create_unique_constraint(
        "uq_bulk_read_usage_tenant_id_user_id", "bulk_read_usage", ["tenant_id", "user_id"]
    )
    op.drop_column("bulk_read_usage", "slot")
