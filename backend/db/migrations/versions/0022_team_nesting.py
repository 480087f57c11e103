"""Business units: teams may nest (`teams.parent_team_id`); the team scope of a parent team's
members covers the records of its child teams' members.

Revision ID: 0022_team_nesting
Revises: 0017_imports
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0022_team_nesting"
down_revision: str | None = "0017_imports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("teams", sa.Column("parent_team_id", UUID(as_uuid=True), nullable=True))
    op.create_foreign_key(
        "fk_teams_tenant_id_parent_team_id_teams",
        "teams",
        "teams",
        ["tenant_id", "parent_team_id"],
        ["tenant_id", "id"],
        ondelete="SET NULL (parent_team_id)",
    )
    op.create_index("ix_teams_tenant_id_parent_team_id", "teams", ["tenant_id", "parent_team_id"])


def downgrade() -> None:
    op.drop_index("ix_teams_tenant_id_parent_team_id", "teams")
    op.drop_constraint("fk_teams_tenant_id_parent_team_id_teams", "teams", type_="foreignkey")
    op.drop_column("teams", "parent_team_id")
