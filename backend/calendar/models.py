"""Per-user secret calendar feeds: only a SHA-256 of the secret is stored."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKeyConstraint, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, TenantMixin


class CalendarFeed(TenantMixin, Base):
    __tablename__ = "calendar_feeds"
    __table_args__ = (
        # One feed per user: regenerating replaces the secret, so the old URL stops working.
        UniqueConstraint("tenant_id", "user_id"),
        UniqueConstraint("tenant_id", "token_hash"),
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
