"""Contacts: the people at (or apart from) accounts."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKeyConstraint, Index, String, Text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.crm.address import AddressMixin
from backend.custom_fields.models import CustomValuesMixin, custom_values_index
from backend.db.base import Base, TenantMixin


class Contact(TenantMixin, AddressMixin, CustomValuesMixin, Base):
    __tablename__ = "contacts"
    __table_args__ = (
        custom_values_index(),
        ForeignKeyConstraint(["tenant_id", "owner_id"], ["users.tenant_id", "users.id"]),
        # Deleting an account keeps its contacts and clears only account_id (not tenant_id).
        ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["accounts.tenant_id", "accounts.id"],
            ondelete="SET NULL (account_id)",
        ),
        # Organisation chart: deleting a manager clears only their reports' link.
        ForeignKeyConstraint(
            ["tenant_id", "reports_to_id"],
            ["contacts.tenant_id", "contacts.id"],
            ondelete="SET NULL (reports_to_id)",
        ),
        Index(None, "tenant_id", "owner_id"),
        Index(None, "tenant_id", "account_id"),
        Index(None, "tenant_id", "reports_to_id"),
        Index(None, "tenant_id", "updated_at"),
        Index(None, "tenant_id", "email"),
    )

    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100), nullable=False)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    mobile_phone: Mapped[str | None] = mapped_column(String(40))
    title: Mapped[str | None] = mapped_column(String(100))
    account_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    reports_to_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    notes: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
