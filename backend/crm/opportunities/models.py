"""Opportunities: the pipeline, one possible sale at a time."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKeyConstraint,
    Index,
    Numeric,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.custom_fields.models import CustomValuesMixin, custom_values_index
from backend.db.base import Base, TenantMixin

STAGES = (
    "prospecting",
    "qualification",
    "proposal",
    "negotiation",
    "closed_won",
    "closed_lost",
)


class Opportunity(TenantMixin, CustomValuesMixin, Base):
    __tablename__ = "opportunities"
    __table_args__ = (
        custom_values_index(),
        ForeignKeyConstraint(["tenant_id", "owner_id"], ["users.tenant_id", "users.id"]),
        # Deleting an account or contact keeps its opportunities and clears only the link.
        ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["accounts.tenant_id", "accounts.id"],
            ondelete="SET NULL (account_id)",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "contact_id"],
            ["contacts.tenant_id", "contacts.id"],
            ondelete="SET NULL (contact_id)",
        ),
        # A pipeline or stage in use cannot be removed.
        ForeignKeyConstraint(["tenant_id", "pipeline_id"], ["pipelines.tenant_id", "pipelines.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "stage_id"], ["pipeline_stages.tenant_id", "pipeline_stages.id"]
        ),
        CheckConstraint("probability BETWEEN 0 AND 100", name="probability_percent"),
        CheckConstraint("pipeline_id IS NOT NULL AND stage_id IS NOT NULL", name="has_stage"),
        Index(None, "tenant_id", "owner_id"),
        Index(None, "tenant_id", "stage_id"),
        Index(None, "tenant_id", "close_date"),
        Index(None, "tenant_id", "account_id"),
        Index(None, "tenant_id", "contact_id"),
        Index(None, "tenant_id", "updated_at"),
    )

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    # `stage` mirrors `stage_id`; a trigger keeps them in step and fills in whichever a write
    # leaves out (migration 0014_pipelines). A new deal named by neither starts prospecting.
    stage: Mapped[str] = mapped_column(String(20), nullable=False, server_default="prospecting")
    # Never NULL once written (the `has_stage` check): the trigger fills them before the check.
    pipeline_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    stage_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    probability: Mapped[int | None] = mapped_column(SmallInteger)
    close_date: Mapped[date] = mapped_column(Date, nullable=False)
    account_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    contact_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    competitor: Mapped[str | None] = mapped_column(String(200))
    budget: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    # What the rep spends to win this customer (DOMAIN.md: marketing instrument costs, MC).
    cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    next_step: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
