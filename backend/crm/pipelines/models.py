"""Pipelines: each tenant's sales processes, each an ordered list of stages, and the stage
history of every opportunity (when it entered and left each stage, and who moved it)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, TenantMixin

KINDS = ("open", "won", "lost")
MAX_STAGES = 30
# The default pipeline every tenant starts with: the six stages opportunities always had,
# with the usual default chance of winning at each (DOMAIN.md: weighted pipeline).
DEFAULT_PIPELINE = "Sales"
DEFAULT_STAGES = (
    ("prospecting", 10, "open"),
    ("qualification", 20, "open"),
    ("proposal", 50, "open"),
    ("negotiation", 80, "open"),
    ("closed_won", 100, "won"),
    ("closed_lost", 0, "lost"),
)


class Pipeline(TenantMixin, Base):
    __tablename__ = "pipelines"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        # At most one default pipeline per tenant.
        Index(
            "ix_pipelines_one_default",
            "tenant_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")


class PipelineStage(TenantMixin, Base):
    __tablename__ = "pipeline_stages"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "pipeline_id"],
            ["pipelines.tenant_id", "pipelines.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("tenant_id", "pipeline_id", "name"),
        CheckConstraint("probability BETWEEN 0 AND 100", name="probability_percent"),
        CheckConstraint("kind IN ('open', 'won', 'lost')", name="stage_kind"),
    )

    pipeline_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    position: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    probability: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    kind: Mapped[str] = mapped_column(String(4), nullable=False)


class StageEntry(TenantMixin, Base):
    """One stay of an opportunity in one stage; `left_at` is NULL while it is still there."""

    __tablename__ = "opportunity_stages"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "opportunity_id"],
            ["opportunities.tenant_id", "opportunities.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "stage_id"],
            ["pipeline_stages.tenant_id", "pipeline_stages.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "moved_by"],
            ["users.tenant_id", "users.id"],
            ondelete="SET NULL (moved_by)",
        ),
        Index(None, "tenant_id", "opportunity_id", "entered_at"),
    )

    opportunity_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    stage_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    moved_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
