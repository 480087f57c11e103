"""Web self-service and satisfaction: status links of web cases, case replies, and one
satisfaction survey per resolved case.

Revision ID: 0023_self_service
Revises: 0020_knowledge
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from backend.db.rls import enable_tenant_rls, grant

revision = "0023_self_service"
down_revision: str | None = "0020_knowledge"
branch_labels = None
depends_on = None


def _columns(table: str) -> list[sa.Column[object] | sa.Constraint]:
    return [
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("case_id", UUID(as_uuid=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=f"pk_{table}"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], ondelete="RESTRICT", name=f"fk_{table}_tenant_id_tenants"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "case_id"],
            ["cases.tenant_id", "cases.id"],
            ondelete="CASCADE",
            name=f"fk_{table}_tenant_id_case_id_cases",
        ),
    ]


def _set_null(table: str, column: str, target: str) -> sa.Constraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", column],
        [f"{target}.tenant_id", f"{target}.id"],
        ondelete=f"SET NULL ({column})",
        name=f"fk_{table}_tenant_id_{column}_{target}",
    )


def upgrade() -> None:
    op.create_table(
        "case_status_links",
        *_columns("case_status_links"),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("submitter_name", sa.String(200), nullable=False),
        sa.Column("submitter_email", sa.String(254), nullable=False),
        sa.UniqueConstraint("tenant_id", "case_id", name="uq_case_status_links_tenant_id_case_id"),
        sa.UniqueConstraint(
            "tenant_id", "token_hash", name="uq_case_status_links_tenant_id_token_hash"
        ),
    )
    op.create_table(
        "case_replies",
        *_columns("case_replies"),
        sa.Column("author_kind", sa.String(10), nullable=False),
        sa.Column("author_id", UUID(as_uuid=True)),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        _set_null("case_replies", "author_id", "users"),
        sa.CheckConstraint(
            "author_kind IN ('customer', 'agent')", name="ck_case_replies_author_kind_known"
        ),
    )
    op.create_index(
        "ix_case_replies_tenant_id_case_id_created_at",
        "case_replies",
        ["tenant_id", "case_id", "created_at"],
    )
    op.create_table(
        "case_surveys",
        *_columns("case_surveys"),
        sa.Column("contact_id", UUID(as_uuid=True)),
        sa.Column("agent_id", UUID(as_uuid=True)),
        sa.Column("kind", sa.String(4), nullable=False),
        sa.Column("token_hash", sa.String(64)),
        sa.Column("link_issued_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("score", sa.Integer()),
        sa.Column("comment", sa.Text()),
        _set_null("case_surveys", "contact_id", "contacts"),
        _set_null("case_surveys", "agent_id", "users"),
        sa.UniqueConstraint("tenant_id", "case_id", name="uq_case_surveys_tenant_id_case_id"),
        sa.UniqueConstraint("tenant_id", "token_hash", name="uq_case_surveys_tenant_id_token_hash"),
        sa.CheckConstraint("kind IN ('csat', 'nps')", name="ck_case_surveys_kind_known"),
        sa.CheckConstraint(
            "score IS NULL OR (kind = 'csat' AND score BETWEEN 1 AND 5) "
            "OR (kind = 'nps' AND score BETWEEN 0 AND 10)",
            name="ck_case_surveys_score_in_range",
        ),
    )
    op.create_index("ix_case_surveys_tenant_id_agent_id", "case_surveys", ["tenant_id", "agent_id"])
    for table in ("case_status_links", "case_replies", "case_surveys"):
        enable_tenant_rls(table)
    grant("case_status_links", "SELECT, INSERT")
    grant("case_replies", "SELECT, INSERT")
    grant("case_surveys", "SELECT, INSERT, UPDATE")


def downgrade() -> None:
    op.drop_table("case_surveys")
    op.drop_table("case_replies")
    op.drop_table("case_status_links")
