"""Activities: the calls, meetings, tasks, emails and notes of the sales work."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.custom_fields.models import CustomValuesMixin, custom_values_index
from backend.db.base import Base, TenantMixin

KINDS = ("call", "meeting", "task", "email", "note")
MAX_REMIND_MINUTES = 40_320  # four weeks


def _link(column: str, table: str) -> ForeignKeyConstraint:
    """Deleting the linked record keeps the activity and clears only the link."""
    return ForeignKeyConstraint(
        ["tenant_id", column],
        [f"{table}.tenant_id", f"{table}.id"],
        ondelete=f"SET NULL ({column})",
    )


class Activity(TenantMixin, CustomValuesMixin, Base):
    __tablename__ = "activities"
    __table_args__ = (
        custom_values_index(),
        ForeignKeyConstraint(["tenant_id", "owner_id"], ["users.tenant_id", "users.id"]),
        _link("account_id", "accounts"),
        _link("contact_id", "contacts"),
        _link("opportunity_id", "opportunities"),
        CheckConstraint(
            f"remind_minutes_before BETWEEN 0 AND {MAX_REMIND_MINUTES}", name="remind_range"
        ),
        Index(None, "tenant_id", "owner_id"),
        Index(None, "tenant_id", "account_id"),
        Index(None, "tenant_id", "contact_id"),
        Index(None, "tenant_id", "opportunity_id"),
        Index(None, "tenant_id", "updated_at"),
    )

    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    subject: Mapped[str] = mapped_column(String(200), nullable=False)
    notes: Mapped[str | None] = mapped_column(Text)
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A reminder this many minutes before the start (meetings, calls) or the due time (tasks).
    remind_minutes_before: Mapped[int | None] = mapped_column(Integer)
    # When it was done; NULL while open.
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    account_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    contact_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    opportunity_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
