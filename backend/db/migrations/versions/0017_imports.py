"""CSV imports: the `imports` table (options, progress and the error report of each import).

Revision ID: 0017_imports
Revises: 0016_agenda
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from backend.db.rls import enable_tenant_rls, grant

revision = "0017_imports"
down_revision: str | None = "0016_agenda"
branch_labels = None
depends_on = None


def _count(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False, server_default="0")


def upgrade() -> None:
    now = sa.func.now()
    op.create_table(
        "imports",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("requested_by", UUID(as_uuid=True), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("filename", sa.Text()),
        sa.Column("mapping", JSONB(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("on_duplicate", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        _count("rows_done"),
        _count("created"),
        _count("updated"),
        _count("skipped"),
        _count("duplicates"),
        sa.Column("errors", JSONB(), nullable=False, server_default="[]"),
        _count("error_count"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_imports"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], ondelete="RESTRICT", name="fk_imports_tenant_id_tenants"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "requested_by"],
            ["users.tenant_id", "users.id"],
            name="fk_imports_tenant_id_requested_by_users",
        ),
    )
    op.create_index(
        "ix_imports_tenant_id_requested_by_created_at",
        "imports",
        ["tenant_id", "requested_by", "created_at"],
    )
    enable_tenant_rls("imports")
    grant("imports", "SELECT, INSERT, UPDATE")


def downgrade() -> None:
    op.drop_table("imports")
