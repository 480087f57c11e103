"""Security events: an append-only, RLS-isolated log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from backend.db.rls import enable_tenant_rls, grant, make_append_only

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "security_events",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column(
            "occurred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("actor_user_id", UUID(as_uuid=True)),
        sa.Column("actor_client_id", UUID(as_uuid=True)),
        sa.Column("subject_user_id", UUID(as_uuid=True)),
        sa.Column("request_id", sa.String(64)),
        sa.Column("channel", sa.String(16)),
        sa.Column("source_ip", sa.String(64)),
        sa.Column("details", JSONB(), nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_security_events"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            ondelete="RESTRICT",
            name="fk_security_events_tenant_id_tenants",
        ),
    )
    op.create_index(
        "ix_security_events_tenant_id_occurred_at", "security_events", ["tenant_id", "occurred_at"]
    )
    op.create_index("ix_security_events_tenant_id_type", "security_events", ["tenant_id", "type"])
    enable_tenant_rls("security_events")
    grant("security_events", "SELECT, INSERT")
    make_append_only("security_events")


def downgrade() -> None:
    op.drop_table("security_events")
    op.execute("DROP FUNCTION IF EXISTS refuse_change()")
