"""Leads: people (and their companies) not yet qualified as customers; converted into an
account, a contact and optionally an opportunity."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKeyConstraint, Index, String, Text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.custom_fields.models import CustomValuesMixin, custom_values_index
from backend.db.base import Base, TenantMixin

STATUSES = ("new", "working", "qualified", "disqualified", "converted")
# A rating in words, not 1-5: "hot" reads the same to every rep, a number needs a legend.
RATINGS = ("hot", "warm", "cold")


def _converted(column: str, table: str) -> ForeignKeyConstraint:
    """Deleting what a lead became keeps the lead and clears only that link."""
    return ForeignKeyConstraint(
        ["tenant_id", column],
        [f"{table}.tenant_id", f"{table}.id"],
        ondelete=f"SET NULL ({column})",
    )


class Lead(TenantMixin, CustomValuesMixin, Base):
    __tablename__ = "leads"
    __table_args__ = (
        custom_values_index(),
        ForeignKeyConstraint(["tenant_id", "owner_id"], ["users.tenant_id", "users.id"]),
        _converted("converted_account_id", "accounts"),
        _converted("converted_contact_id", "contacts"),
        _converted("converted_opportunity_id", "opportunities"),
        Index(None, "tenant_id", "owner_id"),
        Index(None, "tenant_id", "updated_at"),
        Index(None, "tenant_id", "campaign_id"),
        Index(None, "tenant_id", "converted_contact_id"),
    )

    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100), nullable=False)
    company: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    source: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="new")
    rating: Mapped[str | None] = mapped_column(String(10))
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    # Campaigns come later: no foreign key yet.
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    notes: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    # Set by conversion only (POST /leads/{id}/convert), never by a client.
    converted_account_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    converted_contact_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    converted_opportunity_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    converted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
