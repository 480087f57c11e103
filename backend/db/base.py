"""Declarative base and the tenant mixin every tenant table uses.

A tenant table has `tenant_id` first in its primary key `(tenant_id, id)`, so foreign keys and
unique keys can (and must) include it: a row can never point at another tenant's row, and the
schema is ready to be distributed by `tenant_id` (Citus).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import DateTime, ForeignKey, Integer, MetaData, Table, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), sort_order=90
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), sort_order=91
    )


class TenantMixin(TimestampMixin):
    """Columns every tenant-scoped table carries. Row-level security is added by migrations."""

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(
            UUID(as_uuid=True),
            ForeignKey("tenants.id", ondelete="RESTRICT"),
            primary_key=True,
            sort_order=-20,
        )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, sort_order=-10)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1", sort_order=-5)


def table_of(model: type[Any]) -> Table:
    """The Core table behind a declarative model, typed for Core statements."""
    return cast(Table, model.__table__)
