"""The phone-number index: every phone field of a contact or account, normalised to E.164, so
an incoming call is matched by one index hit."""

from __future__ import annotations

import uuid

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, TenantMixin


class PhoneNumber(TenantMixin, Base):
    __tablename__ = "phone_numbers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "entity", "record_id", "field"),
        Index(None, "tenant_id", "e164"),
    )

    entity: Mapped[str] = mapped_column(String(40), nullable=False)  # "contact", "account"
    record_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    field: Mapped[str] = mapped_column(String(63), nullable=False)  # "phone", "mobile_phone"
    e164: Mapped[str] = mapped_column(String(16), nullable=False)
