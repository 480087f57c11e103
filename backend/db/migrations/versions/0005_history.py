"""Change history: append-only, RLS-isolated, one row per changed field.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from backend.db.rls import enable_tenant_rls, grant, make_append_only

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_history",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column(
            "occurred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("record_id", UUID(as_uuid=True), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("field", sa.String(64)),
        sa.Column("old_value", JSONB()),
        sa.Column("new_value", JSONB()),
        sa.Column("value_salt", sa.String(32), nullable=False),
        sa.Column("old_digest", sa.String(64)),
        sa.Column("new_digest", sa.String(64)),
        sa.Column("actor_user_id", UUID(as_uuid=True)),
        sa.Column("actor_client_id", UUID(as_uuid=True)),
        sa.Column("request_id", sa.String(64)),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_record_history"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            ondelete="RESTRICT",
            name="fk_record_history_tenant_id_tenants",
        ),
    )
    op.create_index(
        "ix_record_history_tenant_id_entity_record_id_id",
        "record_history",
        ["tenant_id", "entity", "record_id", "id"],
    )
    op.create_index(
        "ix_record_history_tenant_id_actor_user_id_id",
        "record_history",
        ["tenant_id", "actor_user_id", "id"],
    )
    enable_tenant_rls("record_history")
    grant("record_history", "SELECT, INSERT")
    make_append_only("record_history")


def downgrade() -> None:
    op.drop_table("record_history")
