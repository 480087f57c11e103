"""The audit chain's table: one seal per sealed history row or security event, per tenant.

`id` is the seal's position in its tenant's chain (1, 2, 3, ...; "seq" in reports). Each seal
holds the previous seal's hash and its own: SHA-256(prev_hash || canonical row encoding), see
backend/history/chain.py. Insert-only for the app role; only the prune path deletes.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, table_of

HISTORY = "history"
EVENT = "event"


class AuditSeal(Base):
    __tablename__ = "audit_seals"
    __table_args__ = (UniqueConstraint("tenant_id", "source", "row_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(8), nullable=False)  # history | event
    row_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    # The sealed row's txid: where the next sealing run starts (not part of the hash).
    row_txid: Mapped[int] = mapped_column(BigInteger, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
    sealed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")
    )


seals = table_of(AuditSeal)
