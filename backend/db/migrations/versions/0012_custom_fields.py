"""Tenant custom fields: the `custom_fields` definitions table and a `custom` JSONB column
(with a GIN index for filters) on every entity table.

Revision ID: 0012_custom_fields
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from backend.db.rls import enable_tenant_rls, grant

revision = "0012_custom_fields"
down_revision: str | None = "0011"
branch_labels = None
depends_on = None

# The entity tables as of this revision (named here: a migration is frozen in time).
ENTITY_TABLES = ("accounts", "contacts", "opportunities", "activities")


def upgrade() -> None:
    op.create_table(
        "custom_fields",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("choices", JSONB()),
        sa.Column("max_length", sa.Integer()),
        sa.Column("help_text", sa.Text()),
        sa.Column("target", sa.String(64)),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_custom_fields"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            ondelete="RESTRICT",
            name="fk_custom_fields_tenant_id_tenants",
        ),
        sa.UniqueConstraint(
            "tenant_id", "entity", "key", name="uq_custom_fields_tenant_id_entity_key"
        ),
    )
    enable_tenant_rls("custom_fields")
    grant("custom_fields", "SELECT, INSERT, UPDATE")  # removal retires a row, never deletes it
    for table in ENTITY_TABLES:
        op.add_column(
            table, sa.Column("custom", JSONB(), nullable=False, server_default=sa.text("'{}'"))
        )
        op.create_index(
            f"ix_{table}_custom",
            table,
            ["custom"],
            postgresql_using="gin",
            postgresql_ops={"custom": "jsonb_path_ops"},
        )


def downgrade() -> None:
    for table in ENTITY_TABLES:
        op.drop_index(f"ix_{table}_custom", table_name=table)
        op.drop_column(table, "custom")
    op.drop_table("custom_fields")
