"""Accounts: the companies a tenant sells to."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKeyConstraint, Index, String, Text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.crm.address import AddressMixin
from backend.custom_fields.models import CustomValuesMixin, custom_values_index
from backend.db.base import Base, TenantMixin


class Account(TenantMixin, AddressMixin, CustomValuesMixin, Base):
    __tablename__ = "accounts"
    __table_args__ = (
        custom_values_index(),
        ForeignKeyConstraint(["tenant_id", "owner_id"], ["users.tenant_id", "users.id"]),
        # Account hierarchy: deleting a parent clears only its children's link.
        ForeignKeyConstraint(
            ["tenant_id", "parent_account_id"],
            ["accounts.tenant_id", "accounts.id"],
            ondelete="SET NULL (parent_account_id)",
        ),
        Index(None, "tenant_id", "owner_id"),
        Index(None, "tenant_id", "parent_account_id"),
        Index(None, "tenant_id", "updated_at"),
    )

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    industry: Mapped[str | None] = mapped_column(String(100))
    website: Mapped[str | None] = mapped_column(String(2048))
    phone: Mapped[str | None] = mapped_column(String(40))
    parent_account_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
