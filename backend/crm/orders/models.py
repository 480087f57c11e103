"""Orders: what a customer bought, line by line, with the server's totals, cost and margin."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, DateTime, Index, Numeric, String, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.crm.products.models import child_of, link_to, owned_by_user
from backend.custom_fields.models import CustomValuesMixin, custom_values_index
from backend.db.base import Base, TenantMixin

ORDER_STATUSES = ("open", "fulfilled", "cancelled")


class Order(TenantMixin, CustomValuesMixin, Base):
    __tablename__ = "orders"
    __table_args__ = (
        custom_values_index(),
        owned_by_user(),
        link_to("account_id", "accounts"),
        link_to("contact_id", "contacts"),
        link_to("opportunity_id", "opportunities"),
        link_to("quote_id", "quotes"),
        Index(None, "tenant_id", "account_id"),
        Index(None, "tenant_id", "contact_id"),
        Index(None, "tenant_id", "opportunity_id"),
        Index(None, "tenant_id", "quote_id"),
        Index(None, "tenant_id", "owner_id"),
        Index(None, "tenant_id", "updated_at"),
    )

    account_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    contact_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    opportunity_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    quote_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    ordered_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="open")
    currency: Mapped[str | None] = mapped_column(String(3))
    # Computed by the server from the lines (backend/crm/lines.py), never sent by a client.
    total: Mapped[Decimal] = mapped_column(Numeric(16, 2), nullable=False, server_default="0")
    total_cost: Mapped[Decimal] = mapped_column(Numeric(16, 2), nullable=False, server_default="0")
    margin: Mapped[Decimal] = mapped_column(Numeric(16, 2), nullable=False, server_default="0")
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)


class OrderLine(TenantMixin, CustomValuesMixin, Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        custom_values_index(),
        owned_by_user(),
        child_of("order_id", "orders"),
        link_to("product_id", "products"),
        CheckConstraint(
            "quantity >= 0 AND unit_price >= 0 AND unit_cost >= 0"
            " AND discount_percent BETWEEN 0 AND 100",
            name="line_amounts",
        ),
        Index(None, "tenant_id", "order_id"),
        Index(None, "tenant_id", "product_id"),
        Index(None, "tenant_id", "owner_id"),
        Index(None, "tenant_id", "updated_at"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    product_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 3), nullable=False)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)
    unit_cost: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False, server_default="0")
    discount_percent: Mapped[Decimal] = mapped_column(
        Numeric(5, 2), nullable=False, server_default="0"
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
