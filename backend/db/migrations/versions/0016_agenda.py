"""A rep's agenda and reminders: each user's time zone, and the reminders they dismissed.

Revision ID: 0016_agenda
Revises: 0018_read_budget_slots
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from backend.db.rls import enable_tenant_rls, grant

revision = "0016_agenda"
down_revision: str | None = "0018_read_budget_slots"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: the tenant's default (UTC while tenants have no time zone of their own).
    op.add_column("users", sa.Column("time_zone", sa.String(64)))
    op.create_table(
        "reminder_dismissals",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("activity_id", UUID(as_uuid=True), nullable=False),
        sa.Column("remind_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "dismissed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_reminder_dismissals"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            ondelete="RESTRICT",
            name="fk_reminder_dismissals_tenant_id_tenants",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.id"],
            ondelete="CASCADE",
            name="fk_reminder_dismissals_tenant_id_user_id_users",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "activity_id"],
            ["activities.tenant_id", "activities.id"],
            ondelete="CASCADE",
            name="fk_reminder_dismissals_tenant_id_activity_id_activities",
        ),
        sa.UniqueConstraint(
            "tenant_id",
            "user_id",
            "activity_id",
            name="uq_reminder_dismissals_tenant_id_user_id_activity_id",
        ),
    )
    op.create_index(
        "ix_reminder_dismissals_tenant_id_activity_id",
        "reminder_dismissals",
        ["tenant_id", "activity_id"],
    )
    enable_tenant_rls("reminder_dismissals")
    grant("reminder_dismissals", "SELECT, INSERT, UPDATE")


def downgrade() -> None:
    op.drop_table("reminder_dismissals")
    op.drop_column("users", "time_zone")
