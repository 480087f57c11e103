"""The `custom_fields` table (one row per definition) and the `custom` column of entity tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, TenantMixin


class CustomField(TenantMixin, Base):
    __tablename__ = "custom_fields"
    __table_args__ = (UniqueConstraint("tenant_id", "entity", "key"),)

    entity: Mapped[str] = mapped_column(String(64), nullable=False)
    key: Mapped[str] = mapped_column(String(40), nullable=False)
    label: Mapped[str] = mapped_column(String(200), nullable=False)
    type: Mapped[str] = mapped_column(String(20), nullable=False)
    required: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    choices: Mapped[list[str] | None] = mapped_column(JSONB)
    max_length: Mapped[int | None] = mapped_column(Integer)
    help_text: Mapped[str | None] = mapped_column(Text)
    target: Mapped[str | None] = mapped_column(String(64))  # type "reference": the entity
    # A removed definition is kept (retired): its values stay hidden in the records and its
    # key cannot be reused, so old values never come back under a new meaning.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CustomValuesMixin:
    """The tenant's own field values of a record: {key: JSON value}."""

    custom: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default="{}", sort_order=80
    )


def custom_values_index() -> Index:
    """GIN over the values (jsonb_path_ops): list filters `custom.<key>=` are containment
    tests (`custom @> '{"key": value}'`) this index answers."""
    return Index(
        None, "custom", postgresql_using="gin", postgresql_ops={"custom": "jsonb_path_ops"}
    )
