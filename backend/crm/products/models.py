"""Products (the catalog) and price books: the prices a product sells at, one book the default."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.custom_fields.models import CustomValuesMixin, custom_values_index
from backend.db.base import Base, TenantMixin


def owned_by_user() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id", "owner_id"], ["users.tenant_id", "users.id"])


def child_of(column: str, table: str) -> ForeignKeyConstraint:
    """A child row (a line, a price book entry) belongs to its parent: the parent's service
    deletes the children (with their history) in the same transaction, and a parent's create
    writes its children before itself, so the check waits for the commit."""
    return ForeignKeyConstraint(
        ["tenant_id", column],
        [f"{table}.tenant_id", f"{table}.id"],
        deferrable=True,
        initially="DEFERRED",
    )


def link_to(column: str, table: str) -> ForeignKeyConstraint:
    """Deleting the linked record keeps this one and clears only the link."""
    return ForeignKeyConstraint(
        ["tenant_id", column],
        [f"{table}.tenant_id", f"{table}.id"],
        ondelete=f"SET NULL ({column})",
    )


class Product(TenantMixin, CustomValuesMixin, Base):
    __tablename__ = "products"
    __table_args__ = (
        custom_values_index(),
        owned_by_user(),
        Index("uq_products_sku", "tenant_id", "sku", unique=True),
        CheckConstraint("unit_price >= 0 AND unit_cost >= 0", name="money_not_negative"),
        Index(None, "tenant_id", "owner_id"),
        Index(None, "tenant_id", "updated_at"),
    )

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    sku: Mapped[str] = mapped_column(String(64), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    unit_price: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    unit_cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    category: Mapped[str | None] = mapped_column(String(100))
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)


class PriceBook(TenantMixin, CustomValuesMixin, Base):
    __tablename__ = "price_books"
    __table_args__ = (
        custom_values_index(),
        owned_by_user(),
        # One default book per tenant.
        Index(
            "uq_price_books_is_default",
            "tenant_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
        Index(None, "tenant_id", "owner_id"),
        Index(None, "tenant_id", "updated_at"),
    )

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    currency: Mapped[str | None] = mapped_column(String(3))
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    description: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)


class PriceBookEntry(TenantMixin, CustomValuesMixin, Base):
    __tablename__ = "price_book_entries"
    __table_args__ = (
        custom_values_index(),
        owned_by_user(),
        child_of("price_book_id", "price_books"),
        child_of("product_id", "products"),
        CheckConstraint("unit_price >= 0", name="price_not_negative"),
        Index(None, "tenant_id", "price_book_id"),
        Index(None, "tenant_id", "product_id"),
        Index(None, "tenant_id", "owner_id"),
        Index(None, "tenant_id", "updated_at"),
    )

    price_book_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    product_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
