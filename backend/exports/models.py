"""Tables of the exports capability: exports, each tenant's export rules, the bulk-read budget."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base

STATUSES = ("pending", "ready", "denied", "expired", "failed")


class Export(Base):
    """One export request that passed the rules (ready, or pending an admin's approval).
    Refused attempts leave only an audit event: nothing half-written."""

    __tablename__ = "exports"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "requested_by"], ["users.tenant_id", "users.id"]),
        Index(None, "tenant_id", "requested_by", "created_at"),
        Index(None, "tenant_id", "status"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    requested_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    entity: Mapped[str] = mapped_column(String(64), nullable=False)
    format: Mapped[str] = mapped_column(String(8), nullable=False)
    fields: Mapped[list[str]] = mapped_column(ARRAY(Text()), nullable=False)
    filter: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text())
    row_count: Mapped[int] = mapped_column(Integer, nullable=False)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The file: its per-file AES-256 key sealed under CARAVAN_SECRET_KEY, its size.
    file_key: Mapped[str | None] = mapped_column(Text())
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The one live download link: SHA-256 of its secret, until when, and when it was spent.
    link_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    link_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    link_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    downloads: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class ExportRules(Base):
    """A tenant's export rules as one validated document (see backend/exports/rules.py);
    no row: the safe defaults."""

    __tablename__ = "export_rules"
    __table_args__ = (UniqueConstraint("tenant_id"),)  # one document per tenant

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    rules: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class BulkReadUsage(Base):
    """Rows (and rows x fields) one user read in bulk in the current fixed window, counted in
    slots (one per database connection slot, see backend/exports/budget.py); the user's usage
    is the sum of the slots of the current window."""

    __tablename__ = "bulk_read_usage"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
        UniqueConstraint("tenant_id", "user_id", "slot"),  # one counter per user and slot
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    slot: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    rows: Mapped[int] = mapped_column(BigInteger, nullable=False)
    cells: Mapped[int] = mapped_column(BigInteger, nullable=False)
