"""GraphQL documents a tenant's clients registered by hash (Apollo's persisted queries), kept in
PostgreSQL so every server process knows what any of them registered."""

from __future__ import annotations

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, TenantMixin


class PersistedQuery(TenantMixin, Base):
    __tablename__ = "persisted_queries"
    __table_args__ = (UniqueConstraint("tenant_id", "sha256"),)

    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    document: Mapped[str] = mapped_column(Text, nullable=False)
