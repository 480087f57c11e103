"""Quotes: priced offers for an opportunity, line by line; an accepted quote becomes an order."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, Index, Numeric, String, Text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.crm.products.models import child_of, link_to, owned_by_user
from backend.custom_fields.models import CustomValuesMixin, custom_values_index
from backend.db.base import Base, TenantMixin

QUOTE_STATUSES = ("draft", "sent", "accepted", "rejected")


class Quote(TenantMixin, CustomValuesMixin, Base):
    __tablename__ = "quotes"
    __table_args__ = (
        custom_values_index(),
        owned_by_user(),
        link_to("opportunity_id", "opportunities"),
        Index(None, "tenant_id", "opportunity_id"),
        Index(None, "tenant_id", "owner_id"),
        Index(None, "tenant_id", "updated_at"),
    )

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    opportunity_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="draft")
    currency: Mapped[str | None] = mapped_column(String(3))
    valid_until: Mapped[date | None] = mapped_column(Date)
    total: Mapped[Decimal] = mapped_column(Numeric(16, 2), nullable=False, server_default="0")
    description: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)


class QuoteLine(TenantMixin, CustomValuesMixin, Base):
    __tablename__ = "quote_lines"
    __table_args__ = (
        custom_values_index(),
        owned_by_user(),
        child_of("quote_id", "quotes"),
        link_to("product_id", "products"),
        CheckConstraint(
            "quantity >= 0 AND unit_price >= 0 AND discount_percent BETWEEN 0 AND 100",
            name="line_amounts",
        ),
        Index(None, "tenant_id", "quote_id"),
        Index(None, "tenant_id", "product_id"),
        Index(None, "tenant_id", "owner_id"),
        Index(None, "tenant_id", "updated_at"),
    )

    quote_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    product_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 3), nullable=False)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)
    discount_percent: Mapped[Decimal] = mapped_column(
        Numeric(5, 2), nullable=False, server_default="0"
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
