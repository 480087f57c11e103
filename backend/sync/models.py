"""Sync tables: each device's sync state, and the stored outcome of every pushed change (so a
replayed batch returns the same answers and changes nothing)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base


class SyncDevice(Base):
    """One phone (or other client) of one user, as it syncs: what it last pulled and when.
    `device_id` is the client's own name for itself; `id` is ours."""

    __tablename__ = "sync_devices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id", "device_id"),
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    device_id: Mapped[str] = mapped_column(String(128), nullable=False)
    name: Mapped[str | None] = mapped_column(String(200))
    platform: Mapped[str | None] = mapped_column(String(40))
    # The sign-in session (backend/auth/devices.py) the device last synced under.
    session_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    last_cursor: Mapped[str | None] = mapped_column(Text)
    last_pull_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_push_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class SyncOutcome(Base):
    """The answer given for one pushed change (device + client_id), returned again on replay."""

    __tablename__ = "sync_outcomes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "device_pk", "client_id"),
        ForeignKeyConstraint(
            ["tenant_id", "device_pk"],
            ["sync_devices.tenant_id", "sync_devices.id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    device_pk: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    client_id: Mapped[str] = mapped_column(String(128), nullable=False)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
